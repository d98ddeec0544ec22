// Package edge is the collector's HTTP front: a fasthttp server that
// authenticates requests by project API key, applies CORS and rate limits,
// decompresses bodies under a hard size cap, decodes and validates events into
// core batches, runs the project's filter chain, hands batches to the storage
// sink and answers with what was durably accepted.
package edge

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/uptimizr/edge/core"
)

// Keys resolves API keys to projects and changes project settings. The
// storage registry implements it; resolving must not touch disk.
type Keys interface {
	Resolve(hash *[32]byte) (core.Project, core.Capability, bool)
	SetChannels(projectID string, ch core.Channels) error
	CreateKey(projectID string, caps core.Capability) (secret, id string, err error)
	RevokeKey(projectID, idOrKey string) (id string, err error)
	KeyInfos(projectID string) []core.KeyInfo
}

// Deps are the collaborators main wires into the server.
type Deps struct {
	Keys   Keys
	Sink   core.Sink
	Filter core.Filter // optional per-project filter chain
	// Capture names the fields the Sink reads from events (optional): the
	// validator locates them, so the Sink need not parse events again.
	Capture *core.Capture
	Ready   func() error // nil when storage can take writes
	// Degraded says why an operator should look at the node ("" when
	// nothing is wrong); /health reports it. Optional.
	Degraded func() string
	Hasher   *core.VisitorHasher
	Logger   *slog.Logger
	Now      func() time.Time // clock; time.Now when nil

	// Read side; an endpoint whose store is nil answers 501.
	Aggregates Aggregates  // aggregate queries (read.go)
	Raw        RawSessions // raw session replay (sessions_raw.go)
	Scenes     SceneStore  // scene representations (scenes.go)

	// Plugin administration; nil answers 501.
	Plugins    PluginAdmin
	Quarantine QuarantineAdmin

	// Fleet reports the fleet's control plane (GET /api/v1/fleet); nil
	// when the node follows none (404).
	Fleet FleetStatus
}

// FleetStatus is the fleet's current revision and its nodes' heartbeats,
// as JSON-ready values.
type FleetStatus interface {
	FleetStatus(ctx context.Context) (any, error)
}

// Server is the collector's HTTP server. It owns the fasthttp server and
// the shutdown, applies what every request goes through (CORS, the origin
// allow-list, the wire caps, the drain), answers the probes, and routes the
// API to its parts (parts.go).
type Server struct {
	base
	cfg          core.Config
	srv          *fasthttp.Server
	cors         corsPolicy
	m            *serverMetrics
	apiLim       *Limiter      // other API requests per client IP (readRoute; the admin part's channels and keys)
	storageReady func() error  // /ready: nil when storage can take writes
	degraded     func() string // /health: why to look at the node ("" when fine)

	ingest ingestAPI
	read   readAPI
	admin  adminAPI
	live   *liveAPI

	draining   atomic.Bool
	drainStart atomic.Int64 // Unix nanoseconds
	tracker    connTracker

	chunked chunkedCaps // the caps of chunked bodies being read (bodylimit.go)
}

// MaxBatchEvents is the most events one request may carry (docs/API.md, "Validation").
const MaxBatchEvents = 1000

// New builds a server from a validated configuration.
func New(cfg *core.Config, d Deps) (*Server, error) {
	if d.Keys == nil || d.Sink == nil || d.Hasher == nil {
		return nil, errors.New("edge: Keys, Sink and Hasher are required")
	}
	tp, err := ParseTrustProxy(cfg.TrustProxy)
	if err != nil {
		return nil, fmt.Errorf("COLLECTOR_TRUST_PROXY: %w", err)
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Degraded == nil {
		d.Degraded = func() string { return "" }
	}
	if d.Ready == nil {
		d.Ready = func() error { return nil }
	}
	b := base{resolver: d.Keys, trust: tp, log: d.Logger, now: d.Now}
	m := newServerMetrics()
	apiLim := NewLimiter(cfg.RateLimitMax, cfg.RateLimitWindow)
	s := &Server{
		base:         b,
		cfg:          *cfg,
		cors:         newCORSPolicy(cfg.CORSOrigins),
		m:            m,
		apiLim:       apiLim,
		storageReady: d.Ready,
		degraded:     d.Degraded,
	}
	s.tracker.conns = map[*trackedConn]struct{}{}
	slots := cfg.MaxConcurrentIngest
	if slots == 0 {
		slots = 2 * runtime.NumCPU()
	}
	perProject := cfg.MaxProjectIngest
	if perProject == 0 {
		perProject = max(1, slots/2)
	}
	s.ingest = ingestAPI{
		base:    b,
		m:       m,
		dec:     NewDecompressor(cfg.BodyLimit),
		ipLim:   NewLimiter(cfg.IngestRateLimitMax, cfg.RateLimitWindow),
		keyLim:  NewLimiter(cfg.KeyIngestRateLimitMax, cfg.RateLimitWindow),
		sink:    d.Sink,
		filter:  d.Filter,
		capture: d.Capture,
		hasher:  d.Hasher,
		ready:   d.Ready,
		scenes:  d.Scenes,
		adm:     newAdmission(slots, min(perProject, slots)),
		pool:    make(chan *ingestCtx, ingestPoolSize),
	}
	s.ingest.sceneDec = newSceneDecompressor(s.ingest.dec)
	s.ingest.sceneSlots = make(chan struct{}, sceneWritesInFlight)
	s.ingest.keyBufs.New = func() any { return new([32]byte) }
	s.admin = adminAPI{
		base:            b,
		apiLim:          apiLim,
		keyAdmin:        d.Keys,
		pluginAdmin:     d.Plugins,
		quarantineAdmin: d.Quarantine,
		fleetManaged:    cfg.FleetManaged(),
		fleet:           d.Fleet,
	}
	metrics.ExposeMetadata(true) // # HELP/# TYPE lines, so histograms are typed
	s.srv = &fasthttp.Server{
		Handler:                      s.handle,
		ErrorHandler:                 s.handleParseError,
		Name:                         "uptimizr-edge",
		MaxRequestBodySize:           max(cfg.MaxWireBody(), cfg.PluginModuleMiB<<20, SceneBodyLimit),
		HeaderReceived:               s.bodyLimit,
		ReadTimeout:                  30 * time.Second,
		WriteTimeout:                 30 * time.Second,
		IdleTimeout:                  90 * time.Second,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		ConnState:                    s.tracker.connState,
		NoDefaultContentType:         true,
		// An idle keep-alive connection gives its buffers back: otherwise
		// each keeps the largest body it has carried, and many idle browser
		// connections hold the heap (docs/RATIONALE.md).
		ReduceMemoryUsage: true,
		Logger:            fasthttpLogger{d.Logger},
	}
	s.read = readAPI{
		base:         b,
		aggregates:   d.Aggregates,
		raw:          d.Raw,
		scenes:       d.Scenes,
		rawRetention: cfg.RawRetention,
		writeTimeout: s.srv.WriteTimeout,
	}
	s.live = newLiveAPI(b, cfg, &d, s.srv.WriteTimeout, m)
	s.ingest.live = s.live.hub
	s.chunked.maxAge = 2 * s.srv.ReadTimeout // no body read lasts longer
	return s, nil
}

// bodyLimit sets each request's wire cap from its path, before the body is
// read: plugin uploads and scene representations may be larger than event
// batches; everything else gets the ingest cap.
func (s *Server) bodyLimit(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	c := wireCapOf(requestPath(h))
	s.chunked.note(h, c)
	return fasthttp.RequestConfig{MaxRequestBodySize: s.capBytes(c)}
}

// Serve answers requests on ln until Shutdown (shutdown.go).
func (s *Server) Serve(ln net.Listener) error {
	tl := &trackingListener{Listener: ln, t: &s.tracker}
	s.tracker.mu.Lock()
	s.tracker.ln = tl
	s.tracker.mu.Unlock()
	return s.srv.Serve(tl)
}

// writeMetrics answers GET /metrics in the Prometheus text format.
func (s *Server) writeMetrics(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	s.m.write(ctx)
}

// fasthttpLogger keeps fasthttp's own messages out of the logs' reach of
// client data: its format strings carry connection addresses, so only the
// format (never the arguments) is logged, at debug level.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, _ ...any) {
	f.l.Debug("http server", "event", strings.TrimSpace(format))
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	path := routePath(ctx) // ctx.Path(), but raw for routes with an id (pathid.go)
	method := ctx.Method()
	origin := ctx.Request.Header.Peek("Origin")
	allowedOrigin := len(origin) > 0 && s.cors.allows(origin)
	if allowedOrigin {
		s.cors.apply(ctx, origin)
	}
	if string(method) == fasthttp.MethodOptions {
		s.preflight(ctx, origin, allowedOrigin)
		s.m.request(routePreflight, ctx.Response.StatusCode())
		return
	}
	if isAPIPath(path) && (!s.checkOrigin(ctx, origin, allowedOrigin) || s.drainRefuse(ctx, path)) {
		r := routeOther
		if isCollectPath(path) {
			r = routeCollect
		}
		s.m.request(r, ctx.Response.StatusCode())
		return
	}
	if s.draining.Load() {
		// Served while draining (in flight when shutdown began, or not on
		// the API): finish it (the store closes only after every request
		// is answered), and close the connection.
		ctx.SetConnectionClose()
	}
	var r route
	switch {
	case string(path) == "/api/v1/collect":
		r = routeCollect
		s.ingest.collect(ctx, nil)
	case len(path) > 3 && string(path[:3]) == "/k/":
		rest := path[3:]
		i := indexByte(rest, '/')
		if i > 0 && string(rest[i:]) == "/api/v1/collect" {
			r = routeCollect
			s.ingest.collect(ctx, rest[:i])
		} else {
			r = routeOther
			s.fail(ctx, fasthttp.StatusNotFound, "not found")
		}
	case string(path) == "/api/v1/channels":
		r = routeChannels
		s.admin.channels(ctx)
	case hasPathPrefix(path, "/api/v1/plugins"):
		r = routePlugins
		s.admin.plugins(ctx, string(path[len("/api/v1/plugins"):]))
	case hasPathPrefix(path, "/api/v1/quarantine"):
		r = routePlugins
		s.admin.quarantine(ctx, string(path[len("/api/v1/quarantine"):]))
	case string(path) == "/api/v1/fleet":
		r = routeKeys
		s.admin.fleetStatus(ctx)
	case string(path) == "/api/v1/keys" || len(path) > 13 && string(path[:13]) == "/api/v1/keys/":
		r = routeKeys
		s.admin.keys(ctx, path[len("/api/v1/keys"):])
	case len(path) > 8 && string(path[:8]) == "/api/v1/":
		r = s.readRoute(ctx, path[8:])
	case string(path) == "/health":
		r = routeHealth
		if !s.isGetOrHead(ctx) {
			break
		}
		ctx.SetContentType("application/json")
		if why := s.degraded(); why != "" {
			// Still 200: the process is alive and serving; the body and
			// uptimizr_degraded tell the operator to look.
			b := append(ctx.Response.Body()[:0], `{"status":"degraded","reason":`...)
			b = core.AppendQuoted(b, why)
			ctx.Response.SetBodyRaw(append(b, '}'))
			break
		}
		ctx.SetBodyString(`{"status":"ok"}`)
	case string(path) == "/ready":
		r = routeReady
		if !s.isGetOrHead(ctx) {
			break
		}
		s.ready(ctx)
	case string(path) == "/metrics":
		r = routeMetrics
		if !s.isGetOrHead(ctx) {
			break
		}
		s.writeMetrics(ctx)
	default:
		r = routeOther
		s.fail(ctx, fasthttp.StatusNotFound, "not found")
	}
	s.m.request(r, ctx.Response.StatusCode())
}

func (s *base) isGetOrHead(ctx *fasthttp.RequestCtx) bool {
	if ctx.IsGet() || ctx.IsHead() {
		return true
	}
	ctx.Response.Header.Set("Allow", "GET, HEAD")
	s.fail(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed: use GET")
	return false
}

func (s *Server) ready(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	if s.draining.Load() {
		s.unavailable(ctx, "shutting down", 5)
		return
	}
	if err := s.storageReady(); err != nil {
		s.unavailable(ctx, err.Error(), 5)
		return
	}
	if why := s.degraded(); why != "" {
		// Ready all the same (it takes and keeps batches: a stream engine
		// that is down, say, leaves them in the log); the body says why
		// to look.
		b := append(ctx.Response.Body()[:0], `{"status":"ready","degraded":`...)
		b = core.AppendQuoted(b, why)
		ctx.Response.SetBodyRaw(append(b, '}'))
		return
	}
	ctx.SetBodyString(`{"status":"ready"}`)
}

// handleParseError answers requests fasthttp could not read: an oversized
// body (413) or a malformed request (400), in the same JSON shape as the rest.
func (s *Server) handleParseError(ctx *fasthttp.RequestCtx, err error) {
	if errors.Is(err, fasthttp.ErrBodyTooLarge) || strings.Contains(err.Error(), "body size exceeds") {
		c := s.refusedCap(ctx)
		s.fail(ctx, fasthttp.StatusRequestEntityTooLarge, s.tooLargeMsg(c))
		s.m.request(capRoute(c), fasthttp.StatusRequestEntityTooLarge)
		return
	}
	s.chunked.take(&ctx.Request.Header)
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		s.fail(ctx, fasthttp.StatusRequestTimeout, "timed out reading the request")
		return
	}
	s.fail(ctx, fasthttp.StatusBadRequest, "malformed HTTP request")
	s.m.request(routeOther, fasthttp.StatusBadRequest)
}

// fail writes a JSON error body {"error": msg}.
func (s *base) fail(ctx *fasthttp.RequestCtx, status int, msg string) {
	ctx.Response.ResetBody()
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	b := ctx.Response.Body()
	b = append(b[:0], `{"error":`...)
	b = core.AppendQuoted(b, msg)
	b = append(b, '}')
	ctx.Response.SetBodyRaw(b)
}

func (s *base) unavailable(ctx *fasthttp.RequestCtx, msg string, retryAfter int) {
	ctx.Response.Header.Set("Retry-After", itoa(retryAfter))
	s.fail(ctx, fasthttp.StatusServiceUnavailable, msg)
}

func (s *base) tooMany(ctx *fasthttp.RequestCtx, retry time.Duration, what string) {
	secs := int((retry + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	ctx.Response.Header.Set("Retry-After", itoa(secs))
	s.fail(ctx, fasthttp.StatusTooManyRequests, "rate limit exceeded for this "+what+": retry after "+itoa(secs)+"s")
}

// clientAddr is the client's address per COLLECTOR_TRUST_PROXY.
func (s *base) clientAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	peer, _ := netip.AddrFromSlice(ctx.RemoteIP())
	peer = peer.Unmap()
	xff := ctx.Request.Header.Peek("X-Forwarded-For")
	return s.trust.ClientIP(peer, xff)
}

// authenticate resolves the API key; on failure it has written the response.
// Keys are read from the x-api-key header, or from where allowed (the ?key=
// parameter and the /k/<key>/ path prefix, for ingest only).
func (s *base) authenticate(ctx *fasthttp.RequestCtx, need core.Capability, pathKey []byte, allowQuery bool, h *[32]byte) (core.Project, bool) {
	key := pathKey
	if len(key) == 0 {
		key = ctx.Request.Header.Peek("x-api-key")
	}
	if len(key) == 0 && allowQuery {
		key = ctx.QueryArgs().Peek("key")
	}
	if len(key) == 0 {
		msg := "missing API key: send it in the x-api-key header"
		if allowQuery {
			msg += " (clients that cannot set headers may use ?key= or a /k/<key>/ base URL)"
		}
		s.fail(ctx, fasthttp.StatusUnauthorized, msg)
		return nil, false
	}
	*h = sha256.Sum256(key)
	p, caps, ok := s.resolver.Resolve(h)
	if !ok {
		s.fail(ctx, fasthttp.StatusUnauthorized, "unknown or revoked API key")
		return nil, false
	}
	if caps&need == 0 {
		s.fail(ctx, fasthttp.StatusForbidden, "this API key lacks the "+need.String()+" capability")
		return nil, false
	}
	return p, true
}

// hasPathPrefix reports whether path is prefix or lies below it.
func hasPathPrefix(path []byte, prefix string) bool {
	return len(path) >= len(prefix) && string(path[:len(prefix)]) == prefix &&
		(len(path) == len(prefix) || path[len(prefix)] == '/')
}

func keyHash64(h *[32]byte) uint64 { return binary.LittleEndian.Uint64(h[:8]) }

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func itoa(n int) string {
	if n >= 0 && n < 100 {
		return smallInts[n]
	}
	return fmt.Sprint(n)
}

var smallInts = func() (a [100]string) {
	for i := range a {
		a[i] = fmt.Sprint(i)
	}
	return
}()
