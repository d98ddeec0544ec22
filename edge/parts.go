package edge

import (
	"log/slog"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/uptimizr/edge/core"
)

// The server's handlers are in three parts, each holding only what its
// routes use; the Server routes requests to them (server.go, routes.go),
// answers the probes and owns the listener and the shutdown:
//
//   - ingestAPI, the write side: event batches (ingest.go) and scene
//     representation uploads (scenes.go), decoded under their caps and
//     committed to storage;
//   - readAPI, the read side: the aggregates (read.go), raw session replay
//     (sessions_raw.go) and the scene registry's reads (scenes.go);
//   - adminAPI, a project's administration: channels (channels.go), keys
//     (keys.go), plugins and quarantine (plugins.go).
//
// What they share, the Server included, is a base: key resolution, the
// client's address, the log, the clock, and the JSON error answers.

// keyResolver resolves an API key hash to its project (Keys.Resolve): all the
// parts need of the key registry to authenticate a request.
type keyResolver interface {
	Resolve(hash *[32]byte) (core.Project, core.Capability, bool)
}

// base is what every part's handlers, and the Server's own, share. Its
// methods are in server.go (authenticate, clientAddr, fail, …).
type base struct {
	resolver keyResolver
	trust    TrustProxy // COLLECTOR_TRUST_PROXY
	log      *slog.Logger
	now      func() time.Time
}

// ingestAPI serves POST /api/v1/collect (and /k/<key>/api/v1/collect):
// authentication, rate limits, admission, decompression, decoding and
// validation, the filter chain and the commit; and PUT of a scene
// representation, which is decoded and stored the same way.
type ingestAPI struct {
	base
	m      *serverMetrics
	dec    *Decompressor // COLLECTOR_BODY_LIMIT
	ipLim  *Limiter      // ingest requests per client IP
	keyLim *Limiter      // ingest requests per API key
	// projLims holds, per project number, the limiter of a project with
	// its own limit per key (a fleet bundle's rateLimit).
	projLimMu sync.RWMutex
	projLims  map[uint32]*projectLimiter
	sink      core.Sink
	filter    core.Filter   // nil: no filter chain
	capture   *core.Capture // the fields the Sink reads (optional)
	hasher    *core.VisitorHasher
	ready     func() error // returns nil when storage can take writes
	scenes    SceneStore   // nil answers 501
	// sceneDec decodes representation bodies: dec itself when its limit is
	// at least SceneBodyLimit (scenes.go).
	sceneDec *Decompressor
	// sceneSlots bounds the representation PUTs decoded at once, so a
	// burst of large proxies cannot take more than a few bodies' worth of
	// memory.
	sceneSlots chan struct{}

	// adm admits ingest requests a few at a time, in arrival order, for
	// their whole processing (decode, validate, filter, commit), at most
	// a share of the slots per project; a request takes its context only
	// once admitted (collect).
	adm *admission
	// pool holds idle ingest contexts. It is a bounded free list, not a
	// sync.Pool: a sync.Pool is emptied by every garbage collection, and a
	// context's worth is its warm buffers (the JSON parser's value cache,
	// the batch arena), which would then be grown again from nothing.
	pool chan *ingestCtx
	// keyBufs holds the API key hashes of requests being authenticated.
	keyBufs sync.Pool
	// live takes every committed batch: presence and the live streams
	// (live_hub.go); it never waits.
	live *liveHub
}

// readAPI serves the read API: the aggregate endpoints, session metadata,
// raw session replay and the scene registry's GETs. The Server applies the
// per-address rate limit before it routes here (readRoute).
type readAPI struct {
	base
	aggregates   Aggregates  // nil answers 501
	raw          RawSessions // nil answers 501
	scenes       SceneStore  // nil answers 501
	rawRetention bool        // COLLECTOR_RAW_RETENTION
	// writeTimeout is the server's; a replay stream moves its write
	// deadline forward by it as it makes progress.
	writeTimeout time.Duration
}

// adminAPI serves a project's administration: channel settings, API keys,
// plugins and the quarantine.
type adminAPI struct {
	base
	apiLim          *Limiter // non-ingest requests per client IP, shared with readRoute
	keyAdmin        Keys
	pluginAdmin     PluginAdmin     // nil answers 501
	quarantineAdmin QuarantineAdmin // nil answers 501
	// fleetManaged: the node follows a fleet bundle (COLLECTOR_CONTROL_URL
	// or COLLECTOR_BUNDLE), which owns its keys, channels and plugins.
	fleetManaged bool
	fleet        FleetStatus // nil: the node follows none
}

// errFleetOwned is the answer to a local change of what the fleet bundle
// owns, on a node that follows a control plane.
const errFleetOwned = "this node follows a fleet bundle (its control plane, or COLLECTOR_BUNDLE), which owns its keys, channels and plugins: change the bundle (docs/FLEET.md)"

// fleetOwned answers 409 and returns true for a change (any method but
// GET and HEAD) on a fleet-managed node.
func (s *adminAPI) fleetOwned(ctx *fasthttp.RequestCtx) bool {
	if !s.fleetManaged || ctx.IsGet() || ctx.IsHead() {
		return false
	}
	s.fail(ctx, fasthttp.StatusConflict, errFleetOwned)
	return true
}
