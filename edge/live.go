package edge

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/uptimizr/edge/core"
)

// liveAPI serves the live routes below /api/v1/live (docs/API.md, "Live"):
// a short-lived token for browsers that cannot set headers on an
// EventSource, and three Server-Sent Event streams fed by the live hub:
// presence, every committed event of the project, and one session's tail.
type liveAPI struct {
	base
	hub          *liveHub
	keys         Keys        // a token's key is checked to be live at each heartbeat
	raw          RawSessions // session tails: backfill and existence (nil: presence only)
	rawRetention bool
	tokenTTL     time.Duration
	writeTimeout time.Duration
	// heartbeat is COLLECTOR_LIVE_HEARTBEAT; presenceEvery is how often a
	// presence stream gets a snapshot; checkEvery how often a stream looks
	// whether its client has gone (tests shorten them).
	heartbeat, presenceEvery, checkEvery atomicDuration
	// closeGrace is how long a stream ended by the shutdown may take to
	// write its last bytes.
	closeGrace time.Duration

	secret [32]byte // signs live tokens; made at start, never stored

	// projects are those this process has issued tokens for, by number: a
	// token names its project by number, and its key is looked up by the
	// project's id.
	idMu     sync.RWMutex
	projects map[uint32]core.Project
}

// Live route defaults that are not settings.
const (
	livePresenceEvery = 2 * time.Second
	liveCheckEvery    = time.Second
	liveCloseGrace    = time.Second
	liveRosterMax     = 1000 // presence ?limit=
	liveTypesMaxLen   = 512  // stream ?types=
	liveBackfillMax   = 200  // events a session tail starts with
)

func newLiveAPI(b base, cfg *core.Config, d *Deps, writeTimeout time.Duration, m *serverMetrics) *liveAPI {
	a := &liveAPI{
		base:         b,
		hub:          newLiveHub(cfg, b.now, m.set),
		keys:         d.Keys,
		raw:          d.Raw,
		rawRetention: cfg.RawRetention,
		tokenTTL:     cfg.LiveTokenTTL,
		writeTimeout: writeTimeout,
		closeGrace:   liveCloseGrace,
		projects:     map[uint32]core.Project{},
	}
	a.heartbeat.set(cfg.LiveHeartbeat)
	a.presenceEvery.set(livePresenceEvery)
	a.checkEvery.set(liveCheckEvery)
	if _, err := rand.Read(a.secret[:]); err != nil {
		panic("edge: no randomness for the live token secret: " + err.Error())
	}
	return a
}

// ObserveBatch hands a batch committed outside this server's ingest (the
// fleet hub's, from the nodes' stream) to live presence and the live
// streams, as the server's own ingest does with every batch it commits.
// Nothing of b is kept after it returns.
func (s *Server) ObserveBatch(b *core.Batch) { s.live.hub.observe(b) }

// route serves /api/v1/live…; ok is false for another path.
func (s *liveAPI) route(ctx *fasthttp.RequestCtx, rest []byte) (r route, ok bool) {
	if !hasPathPrefix(rest, "live") {
		return 0, false
	}
	switch string(rest) {
	case "live/token":
		s.mintToken(ctx)
		return routeLive, true
	case "live/presence":
		s.presence(ctx)
		return routeLive, true
	case "live/stream":
		s.stream(ctx)
		return routeLive, true
	}
	if id, _, hasTail, ok := routeID(ctx, "/api/v1/live/sessions/", rest, "live/sessions/"); ok && len(id) > 0 && !hasTail {
		s.sessionTail(ctx, id)
		return routeLive, true
	}
	s.fail(ctx, fasthttp.StatusNotFound, "not found")
	return routeOther, true
}

// Tokens. A token is base64url(payload ‖ HMAC-SHA256(secret, payload)), the
// payload being a version byte, the project number, the expiry (epoch ms)
// and the public id of the key it was issued for (the first 6 bytes of the
// key's SHA-256). The secret is random per process: a token is good only on
// the process that issued it, and only until it expires or its key is
// revoked. It names no project but its own, and holds no secret.
const (
	liveTokenVersion = 1
	liveTokenPayload = 1 + 4 + 8 + 6
	liveTokenLen     = liveTokenPayload + sha256.Size
)

func (s *liveAPI) sign(num uint32, exp int64, keyID []byte) string {
	var raw [liveTokenLen]byte
	raw[0] = liveTokenVersion
	binary.BigEndian.PutUint32(raw[1:], num)
	binary.BigEndian.PutUint64(raw[5:], uint64(exp))
	copy(raw[13:liveTokenPayload], keyID)
	m := hmac.New(sha256.New, s.secret[:])
	m.Write(raw[:liveTokenPayload])
	m.Sum(raw[:liveTokenPayload])
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// liveAuth is what a stream was opened with; it is checked again at every
// heartbeat, so a stream ends soon after its key is revoked.
type liveAuth struct {
	num       uint32
	byToken   bool
	keyHash   [32]byte // the x-api-key's hash (header)
	projectID string   // the token's project
	project   core.Project
	keyID     string // the token's key, public id
}

// verify checks a token; msg is the 401 message when it is not good.
func (s *liveAPI) verify(tok []byte, now time.Time) (a liveAuth, msg string) {
	var raw [liveTokenLen]byte
	if len(tok) != base64.RawURLEncoding.EncodedLen(liveTokenLen) {
		return a, "invalid live token: mint one with POST /api/v1/live/token"
	}
	if n, err := base64.RawURLEncoding.Decode(raw[:], tok); err != nil || n != liveTokenLen || raw[0] != liveTokenVersion {
		return a, "invalid live token: mint one with POST /api/v1/live/token"
	}
	m := hmac.New(sha256.New, s.secret[:])
	m.Write(raw[:liveTokenPayload])
	if !hmac.Equal(m.Sum(nil), raw[liveTokenPayload:liveTokenLen]) {
		return a, "invalid live token: mint one with POST /api/v1/live/token"
	}
	if exp := int64(binary.BigEndian.Uint64(raw[5:])); now.UnixMilli() >= exp {
		return a, "expired live token: mint a new one with POST /api/v1/live/token"
	}
	a.num = binary.BigEndian.Uint32(raw[1:])
	a.byToken = true
	a.keyID = hex.EncodeToString(raw[13:liveTokenPayload])
	s.idMu.RLock()
	a.project = s.projects[a.num]
	s.idMu.RUnlock()
	if a.project != nil {
		a.projectID = a.project.ProjectID()
	}
	if a.projectID == "" || !s.stillValid(&a) {
		return a, "the API key this live token was issued for is revoked"
	}
	return a, ""
}

// stillValid reports whether the key a stream was opened with is still live
// with the query capability, for the same project.
func (s *liveAPI) stillValid(a *liveAuth) bool {
	if !a.byToken {
		p, caps, ok := s.resolver.Resolve(&a.keyHash)
		return ok && caps&core.CapQuery != 0 && p.ProjectNum() == a.num
	}
	if s.keys == nil {
		return false
	}
	for _, k := range s.keys.KeyInfos(a.projectID) {
		if k.ID == a.keyID {
			return k.Caps&core.CapQuery != 0
		}
	}
	return false
}

// mintToken is POST /api/v1/live/token.
func (s *liveAPI) mintToken(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() {
		ctx.Response.Header.Set("Allow", "POST, OPTIONS")
		s.fail(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed: POST with the x-api-key header")
		return
	}
	var kh [32]byte
	p, ok := s.authenticate(ctx, core.CapQuery, nil, false, &kh)
	if !ok {
		return
	}
	num := p.ProjectNum()
	s.idMu.Lock()
	s.projects[num] = p
	s.idMu.Unlock()
	exp := s.now().Add(s.tokenTTL).UnixMilli()
	b := append(ctx.Response.Body()[:0], `{"token":"`...)
	b = append(b, s.sign(num, exp, kh[:6])...)
	b = append(b, `","expiresAt":`...)
	b = strconv.AppendInt(b, exp, 10)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.SetBodyRaw(append(b, '}'))
}

// authStream authenticates a live stream: by the x-api-key header (query
// capability) when there is one, else by ?token=. On failure it has
// written the answer.
func (s *liveAPI) authStream(ctx *fasthttp.RequestCtx) (liveAuth, bool) {
	var a liveAuth
	args := ctx.QueryArgs()
	if len(ctx.Request.Header.Peek("x-api-key")) > 0 || !args.Has("token") {
		if len(ctx.Request.Header.Peek("x-api-key")) == 0 {
			s.fail(ctx, fasthttp.StatusUnauthorized, "missing API key: send it in the x-api-key header, or a live token as ?token= (POST /api/v1/live/token)")
			return a, false
		}
		p, ok := s.authenticate(ctx, core.CapQuery, nil, false, &a.keyHash)
		if !ok {
			return a, false
		}
		a.num, a.project = p.ProjectNum(), p
		return a, true
	}
	a, msg := s.verify(args.Peek("token"), s.now())
	if msg != "" {
		s.fail(ctx, fasthttp.StatusUnauthorized, msg)
		return a, false
	}
	return a, true
}

// streamMethod accepts GET (and HEAD, which answers the headers only).
func (s *liveAPI) streamMethod(ctx *fasthttp.RequestCtx) bool {
	if ctx.IsGet() || ctx.IsHead() {
		return true
	}
	ctx.Response.Header.Set("Allow", "GET, HEAD, OPTIONS")
	s.fail(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed: use GET (an EventSource)")
	return false
}

// open takes a stream's place within the limits, or answers why not.
func (s *liveAPI) open(ctx *fasthttp.RequestCtx, sub *liveSub) bool {
	switch err := s.hub.subscribe(sub); err {
	case nil:
		return true
	case errLiveClosed:
		ctx.SetConnectionClose()
		s.unavailable(ctx, "shutting down: retry on another node or in a moment", 1)
	case errLiveNodeFull:
		s.unavailable(ctx, "this node has "+strconv.Itoa(s.hub.maxStreams)+" live streams open, the limit set by COLLECTOR_LIVE_MAX_STREAMS: retry later", 5)
	default:
		ctx.Response.Header.Set("Retry-After", "5")
		s.fail(ctx, fasthttp.StatusTooManyRequests, "this project has "+strconv.Itoa(s.hub.maxSubs)+
			" live streams open on this node, the limit set by COLLECTOR_LIVE_MAX_SUBSCRIBERS: close one, or retry later")
	}
	return false
}

// sseHeaders starts a text/event-stream answer. The connection is closed
// after the stream, so a stream never shares it with a later request.
func (s *liveAPI) sseHeaders(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/event-stream; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", "no-cache, no-transform")
	ctx.Response.Header.Set("X-Accel-Buffering", "no")
	ctx.SetConnectionClose()
}

// presence is GET /api/v1/live/presence: who is in which scene now. It is
// a stream of "presence" events, one at once and then one every two
// seconds; with Accept: application/json (and not text/event-stream) it is
// one snapshot as JSON.
func (s *liveAPI) presence(ctx *fasthttp.RequestCtx) {
	if !s.streamMethod(ctx) {
		return
	}
	a, ok := s.authStream(ctx)
	if !ok {
		return
	}
	args := ctx.QueryArgs()
	scene := args.Peek("scene")
	if scene != nil && !core.ValidSceneID(scene) {
		s.fail(ctx, fasthttp.StatusBadRequest, "scene must match ^[A-Za-z0-9._:-]{1,64}$")
		return
	}
	limit := liveRosterMax
	if v := args.Peek("limit"); v != nil {
		n, ok := parseBoundedInt(v, 1, liveRosterMax)
		if !ok {
			s.fail(ctx, fasthttp.StatusBadRequest, "limit must be an integer from 1 to 1000")
			return
		}
		limit = int(n)
	}
	scene = bytes.Clone(scene)
	accept := ctx.Request.Header.Peek("Accept")
	if bytes.Contains(accept, []byte("application/json")) && !bytes.Contains(accept, []byte("text/event-stream")) {
		ctx.SetContentType("application/json")
		ctx.Response.Header.Set("Cache-Control", "no-store")
		if !ctx.IsHead() {
			ctx.Response.SetBodyRaw(s.hub.appendSnapshot(ctx.Response.Body()[:0], a.num, scene, limit))
		}
		return
	}
	if ctx.IsHead() {
		s.sseHeaders(ctx)
		return
	}
	sub := newLiveSub(a.num, false, ctx.Conn())
	if !s.open(ctx, sub) {
		return
	}
	s.sseHeaders(ctx)
	s.setDeadline(ctx)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		s.runPresence(w, sub, &a, scene, limit)
	})
}

// stream is GET /api/v1/live/stream: every event the project commits on
// this node, as "event" events, with heartbeats.
func (s *liveAPI) stream(ctx *fasthttp.RequestCtx) {
	if !s.streamMethod(ctx) {
		return
	}
	a, ok := s.authStream(ctx)
	if !ok {
		return
	}
	f := liveFilter{full: retainsRaw(a.project, s.rawRetention)}
	args := ctx.QueryArgs()
	if v := args.Peek("types"); v != nil {
		if len(v) > liveTypesMaxLen {
			s.fail(ctx, fasthttp.StatusBadRequest, "types: at most 512 characters")
			return
		}
		for name := range bytes.SplitSeq(v, []byte(",")) {
			name = bytes.TrimSpace(name)
			if len(name) == 0 {
				continue
			}
			t, known := core.ParseEventType(name)
			if !known {
				s.fail(ctx, fasthttp.StatusBadRequest, "types: unknown event type "+strconvQuote(name))
				return
			}
			f.types |= 1 << t
		}
	}
	if v := args.Peek("scene"); v != nil {
		if !core.ValidSceneID(v) {
			s.fail(ctx, fasthttp.StatusBadRequest, "scene must match ^[A-Za-z0-9._:-]{1,64}$")
			return
		}
		f.scene = bytes.Clone(v)
	}
	if ctx.IsHead() {
		s.sseHeaders(ctx)
		return
	}
	sub := newLiveSub(a.num, true, ctx.Conn())
	if !s.open(ctx, sub) {
		return
	}
	s.sseHeaders(ctx)
	s.setDeadline(ctx)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		s.runEvents(w, sub, &a, &f, nil)
	})
}

// sessionTail is GET /api/v1/live/sessions/:id: one session's events as it
// sends them, with its last events first. Gated by raw retention, as replay
// is.
func (s *liveAPI) sessionTail(ctx *fasthttp.RequestCtx, id []byte) {
	if !s.streamMethod(ctx) {
		return
	}
	a, ok := s.authStream(ctx)
	if !ok {
		return
	}
	if !retainsRaw(a.project, s.rawRetention) {
		s.fail(ctx, fasthttp.StatusForbidden, "raw session retention is disabled")
		return
	}
	if n := utf16Units(id); n == 0 || n > 128 || !utf8.Valid(id) {
		s.fail(ctx, fasthttp.StatusBadRequest, "session id: 1–128 characters of valid UTF-8, percent-encoded in the path")
		return
	}
	lastTS, live := s.hub.present(a.num, id)
	if !live {
		found := false
		if s.raw != nil {
			var err error
			if found, err = s.raw.HasSession(a.num, id); err != nil {
				s.log.Error("raw session lookup failed", "err", err)
				s.unavailable(ctx, "storage unavailable", 5)
				return
			}
		}
		if !found {
			s.fail(ctx, fasthttp.StatusNotFound, "session not found")
			return
		}
	}
	if ctx.IsHead() {
		s.sseHeaders(ctx)
		return
	}
	sess := bytes.Clone(id)
	f := liveFilter{full: true, session: sess}
	sub := newLiveSub(a.num, true, ctx.Conn())
	// The stream is subscribed before the backfill is read, so no event
	// committed meanwhile is missed; one committed in between may come twice
	// (its ts tells).
	if !s.open(ctx, sub) {
		return
	}
	var backfill func(w *bufio.Writer) bool
	if live && s.raw != nil {
		backfill = func(w *bufio.Writer) bool { return s.backfill(w, a.num, sess, lastTS-s.hub.window) }
	}
	s.sseHeaders(ctx)
	s.setDeadline(ctx)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		s.runEvents(w, sub, &a, &f, backfill)
	})
}

// setDeadline sets the first write deadline; a stream moves it forward as it
// writes, so only a stalled reader times out.
func (s *liveAPI) setDeadline(ctx *fasthttp.RequestCtx) {
	if s.writeTimeout > 0 {
		ctx.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	}
}

// backfill writes the session's stored events from since on, at most the
// last liveBackfillMax of them.
func (s *liveAPI) backfill(w *bufio.Writer, num uint32, sess []byte, since int64) bool {
	ring := make([][]byte, 0, liveBackfillMax)
	next := 0
	err := s.raw.SessionEvents(num, sess, max(since, 0), maxTS, func(_ int64, ev []byte) error {
		if len(ring) < liveBackfillMax {
			ring = append(ring, bytes.Clone(ev))
		} else {
			ring[next] = append(ring[next][:0], ev...)
			next = (next + 1) % liveBackfillMax
		}
		return nil
	})
	if err != nil {
		s.log.Error("live session backfill failed", "err", err)
		return true
	}
	for i := range ring {
		writeSSE(w, "event", ring[(next+i)%len(ring)])
	}
	return true
}

// utf16Units is the length of s in UTF-16 code units, as the SDKs count.
func utf16Units(s []byte) int {
	n := 0
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		s = s[size:]
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// atomicDuration is a time.Duration read and set from any goroutine.
type atomicDuration struct{ v atomic.Int64 }

func (d *atomicDuration) get() time.Duration  { return time.Duration(d.v.Load()) }
func (d *atomicDuration) set(v time.Duration) { d.v.Store(int64(v)) }
