// Package gen generates realistic Uptimizr SDK batches for the load
// benchmarks: whole POST /api/v1/collect bodies shaped like the sample
// fixtures (testdata/fixtures is made by it), from a seed, so that a benchmark run can be
// repeated byte for byte.
//
// A Generator models a few browser clients at once, each running one 3D
// session after another: session_start (device, graphics, scene, user,
// connector, pageMeta), asset loads, then the scene's stream of camera
// samples, pointer moves, frame stats, mesh picks and the rarer event types,
// sometimes a scene_change, until session_end. Each body is one client's
// next BatchSize events, as a browser SDK sends them; the clients take turns.
// Every event is valid under the collector's validation (docs/API.md, "Validation"), and every one of the 27 event types
// turns up in a run of a few thousand events. A configurable fraction of the
// free-text fields carries PII-looking content (emails, phone numbers, IP
// addresses, card numbers, bearer tokens, API keys) for redaction filters to
// find.
package gen

import (
	"strconv"

	"github.com/uptimizr/edge/core"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultBatchSize        = 200
	DefaultProjectID        = "768d1583-bec1-43a1-b54d-91d04a1a6453" // the fixtures' project
	DefaultPIIRate          = 0.05
	DefaultSessionsInFlight = 8
	DefaultStartTS          = 1795892600000 // epoch ms, the fixtures' era
)

// NoPII, as Config.PIIRate, turns PII off (a zero PIIRate means the default).
const NoPII = -1

// Config shapes a Generator. The zero value of each field means its default.
type Config struct {
	// Seed selects the sequence of bodies: the same Config gives the same
	// bytes.
	Seed int64
	// BatchSize is the number of events in each body (default 200). The
	// collector takes at most 1000 a batch; larger values make bodies it
	// rejects as a whole.
	BatchSize int
	// ProjectID is written in every event's projectId (the collector
	// overwrites it with the API key's project).
	ProjectID string
	// PIIRate is the fraction of free-text fields carrying PII-looking
	// content (default 0.05; NoPII or any negative value for none).
	PIIRate float64
	// SessionsInFlight is the number of concurrent clients (default 8).
	SessionsInFlight int
	// StartTS is the epoch ms at which the clients start (default
	// DefaultStartTS; a fixed value, so that bodies do not depend on the
	// clock).
	StartTS int64
}

func (c Config) withDefaults() Config {
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.ProjectID == "" {
		c.ProjectID = DefaultProjectID
	}
	switch {
	case c.PIIRate == 0:
		c.PIIRate = DefaultPIIRate
	case c.PIIRate < 0:
		c.PIIRate = 0
	case c.PIIRate > 1:
		c.PIIRate = 1
	}
	if c.SessionsInFlight <= 0 {
		c.SessionsInFlight = DefaultSessionsInFlight
	}
	if c.StartTS <= 0 {
		c.StartTS = DefaultStartTS
	}
	return c
}

// Generator produces request bodies. It is not safe for concurrent use; give
// each goroutine its own (with its own Seed).
type Generator struct {
	cfg     Config
	r       rng
	clients []session
	turn    int    // the client whose batch is next
	tmp     []byte // scratch for strings built before quoting
}

// New returns a Generator for cfg (zero fields take their defaults).
func New(cfg Config) *Generator {
	cfg = cfg.withDefaults()
	g := &Generator{cfg: cfg, r: newRNG(cfg.Seed), clients: make([]session, cfg.SessionsInFlight)}
	for i := range g.clients {
		// Clients arrive within the first few seconds.
		g.clients[i].ts = cfg.StartTS + int64(g.r.intn(5000))
	}
	return g
}

// Next appends one whole request body, {"events":[…],"schemaVersion":"1.0"}
// with exactly BatchSize events of one client, to dst and returns it.
func (g *Generator) Next(dst []byte) []byte {
	s := &g.clients[g.turn]
	g.turn = (g.turn + 1) % len(g.clients)
	dst = append(dst, `{"events":[`...)
	for i := 0; i < g.cfg.BatchSize; i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = g.event(dst, s)
	}
	return append(dst, `],"schemaVersion":"1.0"}`...)
}

// step is an event a session has scheduled for itself: the parts of its life
// cycle and the second half of paired events.
type step uint8

const (
	stepAssetLoad step = iota + 1
	stepCompileStall
	stepPointerUp
	stepPointerClick
	stepContextRestored
	stepVisible
	stepFocused
	stepHidden
	stepEnd
)

// session is one client's current session.
type session struct {
	live    bool
	id      [32]byte
	ts      int64 // ts of the last event
	started int64
	left    int // ordinary events before the session winds down
	ending  bool

	site  *site
	scene int
	dev   *device
	input string // primary input source
	vw    int    // viewport
	vh    int
	fps   float64
	scale float64 // renderScale
	user  bool
	lang  string

	cam    camera
	px, py float64 // pointer position on screen
	assets int     // asset_load events so far

	queue [8]step
	qn    int
	end   string // session_end reason once chosen

	// env holds `","projectId":"…","sessionId":"…","ts":` then
	// `,"sdkVersion":"…","sceneId":"…"`; split at envTS.
	env   []byte
	envTS int
}

func (s *session) push(st step) {
	if s.qn < len(s.queue) {
		s.queue[s.qn] = st
		s.qn++
	}
}

func (s *session) pop() step {
	st := s.queue[0]
	copy(s.queue[:], s.queue[1:s.qn])
	s.qn--
	return st
}

func (s *session) sceneInfo() *scene { return &s.site.scenes[s.scene] }

// rebuildEnv rewrites the envelope pieces after a start or a scene change.
func (g *Generator) rebuildEnv(s *session) {
	e := append(s.env[:0], `","projectId":`...)
	e = quote(e, g.cfg.ProjectID)
	e = append(e, `,"sessionId":"`...)
	e = append(e, s.id[:]...)
	e = append(e, `","ts":`...)
	s.envTS = len(e)
	e = append(e, `,"sdkVersion":`...)
	e = quote(e, s.site.sdkVersion)
	e = append(e, `,"sceneId":`...)
	e = quote(e, s.sceneInfo().id)
	s.env = e
}

// head appends the envelope of an event of type t at time s.ts, leaving the
// object open for the payload.
func (g *Generator) head(dst []byte, s *session, t core.EventType) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, t.String()...)
	dst = append(dst, s.env[:s.envTS]...)
	dst = strconv.AppendInt(dst, s.ts, 10)
	return append(dst, s.env[s.envTS:]...)
}

// mix is the share, in 1/10000, of each type among a session's ordinary
// events (session_start and session_end come from the life cycle, as do some
// of the asset loads, compile stalls and paired events).
var mix = []struct {
	t core.EventType
	w int
}{
	{core.TypeCameraSample, 3950},
	{core.TypePointerMove, 2450},
	{core.TypeFramePerf, 1000},
	{core.TypeMeshInteraction, 800},
	{core.TypeMeshVisibility, 500},
	{core.TypeHoverDwell, 400},
	{core.TypeCustom, 300},
	{core.TypePointerClick, 170},
	{core.TypeSceneChange, 50},
	{core.TypeCameraGesture, 50},
	{core.TypeNodeTransform, 40},
	{core.TypeResourceSample, 40},
	{core.TypeInputAction, 40},
	{core.TypePointerDown, 30},
	{core.TypeViewportResize, 20},
	{core.TypeVisibilityChange, 20},
	{core.TypeFocusChange, 20},
	{core.TypeCapabilityChange, 20},
	{core.TypeAssetLoad, 20},
	{core.TypeCompileStall, 20},
	{core.TypeContextLost, 20},
	{core.TypeGraphicsDiagnostic, 20},
	{core.TypeRuntimeError, 20},
}

// mixTable maps a draw in [0, 10000) to a type.
var mixTable = func() (t [10000]core.EventType) {
	i := 0
	for _, m := range mix {
		for range m.w {
			t[i] = m.t
			i++
		}
	}
	if i != len(t) {
		panic("gen: event mix does not add up to 10000")
	}
	return t
}()

// event appends the next event of client s.
func (g *Generator) event(dst []byte, s *session) []byte {
	r := &g.r
	if !s.live {
		g.begin(s)
		return g.sessionStart(dst, s)
	}
	if s.qn == 0 && s.left <= 0 && !s.ending {
		s.ending = true
		s.end = pick(r, endReasons)
		if s.end == "hidden" {
			s.push(stepHidden)
		}
		s.push(stepEnd)
	}
	if s.qn > 0 {
		return g.scheduled(dst, s, s.pop())
	}
	s.left--
	s.ts += int64(12 + r.intn(200))
	s.moveCamera(r)
	switch t := mixTable[r.intn(len(mixTable))]; t {
	case core.TypeCameraSample:
		return g.cameraSample(dst, s)
	case core.TypePointerMove:
		return g.pointerMove(dst, s)
	case core.TypeFramePerf:
		return g.framePerf(dst, s)
	case core.TypeMeshInteraction:
		return g.meshInteraction(dst, s)
	case core.TypeMeshVisibility:
		return g.meshVisibility(dst, s)
	case core.TypeHoverDwell:
		return g.hoverDwell(dst, s)
	case core.TypeCustom:
		return g.custom(dst, s)
	case core.TypePointerClick, core.TypePointerDown:
		if t == core.TypePointerDown {
			s.push(stepPointerUp)
			if r.chance(0.6) {
				s.push(stepPointerClick)
			}
		}
		return g.pointerButton(dst, s, t)
	case core.TypeSceneChange:
		return g.sceneChange(dst, s)
	case core.TypeCameraGesture:
		return g.cameraGesture(dst, s)
	case core.TypeNodeTransform:
		return g.nodeTransform(dst, s)
	case core.TypeResourceSample:
		return g.resourceSample(dst, s)
	case core.TypeInputAction:
		return g.inputAction(dst, s)
	case core.TypeViewportResize:
		return g.viewportResize(dst, s)
	case core.TypeVisibilityChange:
		s.push(stepVisible)
		return g.visibility(dst, s, "hidden")
	case core.TypeFocusChange:
		s.push(stepFocused)
		return g.focus(dst, s, false)
	case core.TypeCapabilityChange:
		return g.capabilityChange(dst, s)
	case core.TypeAssetLoad:
		return g.assetLoad(dst, s)
	case core.TypeCompileStall:
		return g.compileStall(dst, s)
	case core.TypeContextLost:
		s.push(stepContextRestored)
		return g.contextLost(dst, s)
	case core.TypeGraphicsDiagnostic:
		return g.graphicsDiagnostic(dst, s)
	default: // core.TypeRuntimeError
		return g.runtimeError(dst, s)
	}
}

// scheduled appends an event the session scheduled earlier, after the delay
// that separates it from its cause.
func (g *Generator) scheduled(dst []byte, s *session, st step) []byte {
	r := &g.r
	switch st {
	case stepAssetLoad:
		s.ts += int64(5 + r.intn(120))
		return g.assetLoad(dst, s)
	case stepCompileStall:
		s.ts += int64(1 + r.intn(30))
		return g.compileStall(dst, s)
	case stepPointerUp:
		s.ts += int64(60 + r.intn(400))
		return g.pointerButton(dst, s, core.TypePointerUp)
	case stepPointerClick:
		s.ts += int64(r.intn(3))
		return g.pointerButton(dst, s, core.TypePointerClick)
	case stepContextRestored:
		s.ts += int64(150 + r.intn(2500))
		return append(g.head(dst, s, core.TypeContextRestored), '}')
	case stepVisible:
		s.ts += int64(2000 + r.intn(90000)) // the tab was in the background
		return g.visibility(dst, s, "visible")
	case stepFocused:
		s.ts += int64(500 + r.intn(20000))
		return g.focus(dst, s, true)
	case stepHidden:
		s.ts += int64(12 + r.intn(200))
		return g.visibility(dst, s, "hidden")
	default: // stepEnd
		s.ts += int64(5 + r.intn(100))
		dst = g.sessionEnd(dst, s)
		s.live = false
		s.ts += int64(1000 + r.intn(30000)) // the client's next visitor arrives
		return dst
	}
}

// begin starts a new session on client s.
func (g *Generator) begin(s *session) {
	r := &g.r
	hexID(s.id[:0], r)
	s.live, s.ending, s.end, s.qn, s.assets = true, false, "", 0, 0
	s.ts += int64(r.intn(50))
	s.started = s.ts
	s.left = r.between(40, 600)
	s.site = &sites[r.intn(len(sites))]
	s.scene = 0
	if r.chance(0.3) {
		s.scene = r.intn(len(s.site.scenes)) // deep link
	}
	w := r.intn(deviceWeightTotal)
	for i := range devices {
		if w < devices[i].weight {
			s.dev = &devices[i]
			break
		}
		w -= devices[i].weight
	}
	s.input = s.dev.source
	if s.input == "mouse" {
		s.input = pick(r, desktopInputs)
	}
	if s.dev.xr && r.chance(0.3) {
		s.input = "hand"
	}
	s.vw, s.vh = s.dev.width, s.dev.height
	s.fps = s.dev.fps * r.uniform(0.8, 1.02)
	s.scale = 1
	if s.dev.mobile && r.chance(0.4) {
		s.scale = 0.75
	}
	s.user = r.chance(0.55)
	s.lang = pick(r, languages)
	s.px, s.py = r.uniform(0.3, 0.7), r.uniform(0.3, 0.7)
	s.cam.reset(s.sceneInfo(), r, float64(s.vw)/float64(s.vh))
	for n := r.between(1, 3); n > 0; n-- {
		s.push(stepAssetLoad)
	}
	if r.chance(0.4) {
		s.push(stepCompileStall)
	}
	g.rebuildEnv(s)
}
