package edge

import (
	"bytes"
	"cmp"
	"errors"
	"hash/maphash"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/uptimizr/edge/core"
)

// The live hub is the node's view of what is happening now (docs/API.md,
// "Live"): which sessions are present in which scene, fed by every batch the
// node commits, and the open live streams, each offered those batches.
//
// Ingest never waits for a stream: a committed batch is copied once (only
// when its project has a stream open) and offered to each stream with a
// non-blocking send. A stream that has more than COLLECTOR_LIVE_BUFFER bytes
// of batches it has not written yet, or whose queue is full, is dropped: its
// connection's write deadline is moved to now, so a reader that stopped
// reading is cut at once, and its queue is never grown.

// liveQueueLen is how many batches a stream's queue holds; the byte budget
// (COLLECTOR_LIVE_BUFFER) is the bound that matters, this one keeps a flood
// of tiny batches bounded too.
const liveQueueLen = 64

// Activity buckets of a present session, by the age of its last batch (the
// reference dashboard colours them).
const (
	liveActiveMs = 3_000
	liveRecentMs = 15_000
)

// Reasons a stream cannot be opened.
var (
	errLiveClosed      = errors.New("live streams are closed: the node is shutting down")
	errLiveNodeFull    = errors.New("node stream limit")
	errLiveProjectFull = errors.New("project stream limit")
)

// liveHub holds the presence of every project and the open streams.
type liveHub struct {
	window      int64 // COLLECTOR_LIVE_WINDOW, ms
	maxSessions int   // COLLECTOR_LIVE_MAX_SESSIONS
	maxSubs     int   // COLLECTOR_LIVE_MAX_SUBSCRIBERS
	maxStreams  int   // COLLECTOR_LIVE_MAX_STREAMS
	buffer      int64 // COLLECTOR_LIVE_BUFFER
	now         func() time.Time
	seed        maphash.Seed // visitor ids are kept as hashes, only to count them

	mu       sync.RWMutex
	projects map[uint32]*liveProject
	all      map[*liveSub]struct{} // every open stream (presence ones too)
	closed   bool

	nextSweep atomic.Int64 // unix ms
	sweeping  atomic.Bool

	sessions atomic.Int64 // present sessions, every project's
	// dropped counts streams dropped for falling behind; refused, streams
	// refused at the project's and at the node's limit.
	dropped *metrics.Counter
	refused [2]*metrics.Counter
}

// liveProject is one project's presence and streams.
type liveProject struct {
	// subs are the streams that take batches (event stream, session
	// tails): replaced, never changed in place, under liveHub.mu, so that
	// ingest reads it without a lock.
	subs    atomic.Pointer[[]*liveSub]
	streams int // open streams of any kind, under liveHub.mu

	mu       sync.Mutex
	dead     bool // removed from the hub by a sweep: look the project up again
	sessions map[string]*presence
	// head is the most recently seen session, tail the least: entries are
	// moved to the head when seen, so expiry and eviction take from the tail.
	head, tail *presence
}

// presence is a session seen recently. It keeps no IP, User-Agent or
// visitor id: the visitor is a keyed hash, used only to count visitors.
type presence struct {
	session    string
	scene      string
	visitor    uint64
	startedAt  int64 // server ms of the first batch seen
	lastSeen   int64 // server ms of the last batch
	lastTS     int64 // largest event ts (the client's clock) seen
	prev, next *presence
}

func newLiveHub(cfg *core.Config, now func() time.Time, set *metrics.Set) *liveHub {
	h := &liveHub{
		window:      cfg.LiveWindow.Milliseconds(),
		maxSessions: cfg.LiveMaxSessions,
		maxSubs:     cfg.LiveMaxSubscribers,
		maxStreams:  cfg.LiveMaxStreams,
		buffer:      cfg.LiveBuffer,
		now:         now,
		seed:        maphash.MakeSeed(),
		projects:    map[uint32]*liveProject{},
		all:         map[*liveSub]struct{}{},
		dropped:     set.NewCounter(`uptimizr_live_dropped_total`),
	}
	h.refused[0] = set.NewCounter(`uptimizr_live_refused_total{limit="project"}`)
	h.refused[1] = set.NewCounter(`uptimizr_live_refused_total{limit="node"}`)
	set.NewGauge(`uptimizr_live_streams`, func() float64 { return float64(h.streamCount()) })
	set.NewGauge(`uptimizr_live_sessions`, func() float64 { return float64(h.sessions.Load()) })
	return h
}

// project returns the project's state, made when create is set.
func (h *liveHub) project(num uint32, create bool) *liveProject {
	h.mu.RLock()
	p := h.projects[num]
	h.mu.RUnlock()
	if p != nil || !create {
		return p
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if p = h.projects[num]; p == nil {
		p = &liveProject{sessions: map[string]*presence{}}
		h.projects[num] = p
	}
	return p
}

// lockProject returns the project's state locked (made if need be).
func (h *liveHub) lockProject(num uint32) *liveProject {
	for {
		p := h.project(num, true)
		p.mu.Lock()
		if !p.dead {
			return p
		}
		p.mu.Unlock()
	}
}

// observe takes a batch the node has committed: it updates presence, then
// offers the batch to the project's streams. It never blocks on a stream,
// and keeps nothing of b (the batch is reused after the request).
func (h *liveHub) observe(b *core.Batch) {
	n := len(b.Events)
	if n == 0 {
		return
	}
	p := h.lockProject(b.ProjectNum)
	now := h.now().UnixMilli()
	p.expire(h, now)
	// One presence update per run of events of one session (a request
	// carries one session, as a rule): the run's last event decides the
	// scene, and a session_end ends the session.
	for i := 0; i < n; {
		sess := b.Session(i)
		maxTS := b.Events[i].TS
		j := i + 1
		for ; j < n && bytes.Equal(b.Session(j), sess); j++ {
			maxTS = max(maxTS, b.Events[j].TS)
		}
		last := j - 1
		if b.Events[last].Type == core.TypeSessionEnd {
			if e := p.sessions[string(sess)]; e != nil {
				p.remove(h, e)
			}
		} else {
			p.touch(h, sess, b.JSON(last), now, maxTS)
		}
		i = j
	}
	p.mu.Unlock()

	if subs := p.subs.Load(); subs != nil && len(*subs) > 0 {
		lb := copyLiveBatch(b)
		for _, s := range *subs {
			h.offer(s, lb)
		}
	}
	if now >= h.nextSweep.Load() && h.sweeping.CompareAndSwap(false, true) {
		h.nextSweep.Store(now + max(h.window, 1000))
		go h.sweep()
	}
}

// touch records that session sess sent a batch whose last event is ev.
func (p *liveProject) touch(h *liveHub, sess, ev []byte, now, maxTS int64) {
	env, ok := scanEnvelope(ev)
	scene := []byte("default")
	var visitor uint64
	if ok {
		scene = unquoteToken(env.scene)
		visitor = maphash.Bytes(h.seed, env.visitor)
	} else {
		visitor = maphash.Bytes(h.seed, sess)
	}
	e := p.sessions[string(sess)]
	if e == nil {
		if len(p.sessions) >= h.maxSessions && p.tail != nil {
			p.remove(h, p.tail)
		}
		e = &presence{session: string(sess), scene: string(scene), startedAt: now, lastTS: maxTS}
		p.sessions[e.session] = e
		h.sessions.Add(1)
	} else {
		if string(scene) != e.scene {
			e.scene = string(scene)
		}
		p.unlink(e)
	}
	e.visitor = visitor
	e.lastSeen = now
	e.lastTS = max(e.lastTS, maxTS)
	p.pushFront(e)
}

// expire forgets the sessions not seen within the window.
func (p *liveProject) expire(h *liveHub, now int64) {
	for p.tail != nil && now-p.tail.lastSeen > h.window {
		p.remove(h, p.tail)
	}
}

func (p *liveProject) remove(h *liveHub, e *presence) {
	p.unlink(e)
	delete(p.sessions, e.session)
	h.sessions.Add(-1)
}

func (p *liveProject) unlink(e *presence) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		p.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		p.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (p *liveProject) pushFront(e *presence) {
	e.next = p.head
	if p.head != nil {
		p.head.prev = e
	}
	p.head = e
	if p.tail == nil {
		p.tail = e
	}
}

// sweep forgets expired sessions of every project, and the projects with
// nothing present and no stream, so that memory follows what is live now.
func (h *liveHub) sweep() {
	defer h.sweeping.Store(false)
	now := h.now().UnixMilli()
	h.mu.RLock()
	ps := make([]*liveProject, 0, len(h.projects))
	for _, p := range h.projects {
		ps = append(ps, p)
	}
	h.mu.RUnlock()
	empty := false
	for _, p := range ps {
		p.mu.Lock()
		p.expire(h, now)
		empty = empty || len(p.sessions) == 0
		p.mu.Unlock()
	}
	if !empty {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for num, p := range h.projects {
		if p.streams > 0 {
			continue
		}
		p.mu.Lock()
		if len(p.sessions) == 0 {
			p.dead = true
			delete(h.projects, num)
		}
		p.mu.Unlock()
	}
}

// present reports whether the session is present, and the largest ts seen
// of it.
func (h *liveHub) present(num uint32, sess []byte) (lastTS int64, ok bool) {
	p := h.project(num, false)
	if p == nil {
		return 0, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire(h, h.now().UnixMilli())
	if e := p.sessions[string(sess)]; e != nil {
		return e.lastTS, true
	}
	return 0, false
}

// appendSnapshot appends the project's presence as JSON: counts over every
// present session (of scene, when given), the roster of the limit most
// recently seen, and the sessions per scene. The project is locked only to
// copy what is needed; the encoding is done after.
func (h *liveHub) appendSnapshot(dst []byte, num uint32, scene []byte, limit int) []byte {
	type sceneCount struct {
		scene string
		n     int
	}
	now := h.now().UnixMilli()
	sessions := 0
	visitors := map[uint64]struct{}{}
	scenes := map[string]int{}
	var roster []presence
	if p := h.project(num, false); p != nil {
		p.mu.Lock()
		p.expire(h, now)
		roster = make([]presence, 0, min(limit, len(p.sessions)))
		for e := p.head; e != nil; e = e.next {
			if scene != nil && e.scene != string(scene) {
				continue
			}
			sessions++
			visitors[e.visitor] = struct{}{}
			scenes[e.scene]++
			if len(roster) < limit {
				roster = append(roster, presence{session: e.session, scene: e.scene, startedAt: e.startedAt, lastSeen: e.lastSeen})
			}
		}
		p.mu.Unlock()
	}
	dst = append(dst, `{"activeSessions":`...)
	dst = strconv.AppendInt(dst, int64(sessions), 10)
	dst = append(dst, `,"activeVisitors":`...)
	dst = strconv.AppendInt(dst, int64(len(visitors)), 10)
	dst = append(dst, `,"sessions":[`...)
	for i := range roster {
		e := &roster[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"sessionId":`...)
		dst = core.AppendQuoted(dst, e.session)
		dst = append(dst, `,"sceneId":`...)
		dst = core.AppendQuoted(dst, e.scene)
		dst = append(dst, `,"startedAt":`...)
		dst = strconv.AppendInt(dst, e.startedAt, 10)
		dst = append(dst, `,"lastSeen":`...)
		dst = strconv.AppendInt(dst, e.lastSeen, 10)
		dst = append(dst, `,"activity":`...)
		switch age := now - e.lastSeen; {
		case age <= liveActiveMs:
			dst = append(dst, `"active"}`...)
		case age <= liveRecentMs:
			dst = append(dst, `"recent"}`...)
		default:
			dst = append(dst, `"idle"}`...)
		}
	}
	dst = append(dst, `],"scenes":[`...)
	counts := make([]sceneCount, 0, len(scenes))
	for s, n := range scenes {
		counts = append(counts, sceneCount{s, n})
	}
	slices.SortFunc(counts, func(a, b sceneCount) int {
		if c := cmp.Compare(b.n, a.n); c != 0 {
			return c
		}
		return cmp.Compare(a.scene, b.scene)
	})
	for i, c := range counts {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"sceneId":`...)
		dst = core.AppendQuoted(dst, c.scene)
		dst = append(dst, `,"sessions":`...)
		dst = strconv.AppendInt(dst, int64(c.n), 10)
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

// liveSub is one open live stream.
type liveSub struct {
	num    uint32
	events bool // takes batches (event stream, session tail); false for presence
	ch     chan *liveBatch
	queued atomic.Int64 // bytes of batches offered and not written yet
	ended  atomic.Bool
	conn   net.Conn

	mu   sync.Mutex // orders the end against moving the write deadline
	gone chan struct{}
	why  liveEnd
}

// liveEnd is why a stream was ended by the node.
type liveEnd uint8

const (
	liveEndNone     liveEnd = iota
	liveEndSlow             // dropped: fell COLLECTOR_LIVE_BUFFER behind
	liveEndShutdown         // the node is shutting down
)

func newLiveSub(num uint32, events bool, conn net.Conn) *liveSub {
	s := &liveSub{num: num, events: events, conn: conn, gone: make(chan struct{})}
	if events {
		s.ch = make(chan *liveBatch, liveQueueLen)
	}
	return s
}

// extend moves the write deadline d ahead, unless the stream was ended.
func (s *liveSub) extend(d time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended.Load() {
		return false
	}
	if d > 0 && s.conn != nil {
		s.conn.SetWriteDeadline(time.Now().Add(d))
	}
	return true
}

// end ends the stream. Its writes must then be done by deadline (the zero
// time leaves the deadline as it is). It reports whether this call ended it.
func (s *liveSub) end(why liveEnd, deadline time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended.Load() {
		return false
	}
	s.ended.Store(true)
	s.why = why
	close(s.gone)
	if !deadline.IsZero() && s.conn != nil {
		s.conn.SetWriteDeadline(deadline)
	}
	return true
}

// endedWhy is why the node ended the stream (liveEndNone if it did not).
func (s *liveSub) endedWhy() liveEnd {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.why
}

// subscribe opens a stream of project num, within the node's and the
// project's limits.
func (h *liveHub) subscribe(s *liveSub) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errLiveClosed
	}
	if len(h.all) >= h.maxStreams {
		h.refused[1].Inc()
		return errLiveNodeFull
	}
	p := h.projects[s.num]
	if p == nil {
		p = &liveProject{sessions: map[string]*presence{}}
		h.projects[s.num] = p
	}
	if p.streams >= h.maxSubs {
		h.refused[0].Inc()
		return errLiveProjectFull
	}
	p.streams++
	h.all[s] = struct{}{}
	if s.events {
		var subs []*liveSub
		if old := p.subs.Load(); old != nil {
			subs = append(subs, *old...)
		}
		subs = append(subs, s)
		p.subs.Store(&subs)
	}
	return nil
}

// unsubscribe closes a stream's place; it is called once, by the stream.
func (h *liveHub) unsubscribe(s *liveSub) {
	s.end(liveEndNone, time.Time{})
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.all[s]; !ok {
		return
	}
	delete(h.all, s)
	p := h.projects[s.num]
	if p == nil {
		return
	}
	p.streams--
	if s.events {
		if old := p.subs.Load(); old != nil {
			subs := make([]*liveSub, 0, len(*old))
			for _, o := range *old {
				if o != s {
					subs = append(subs, o)
				}
			}
			p.subs.Store(&subs)
		}
	}
}

// close ends every stream (the drain of a shutdown), letting each write
// what it holds within grace, and refuses new ones.
func (h *liveHub) close(grace time.Duration) {
	h.mu.Lock()
	h.closed = true
	subs := make([]*liveSub, 0, len(h.all))
	for s := range h.all {
		subs = append(subs, s)
	}
	h.mu.Unlock()
	deadline := time.Now().Add(grace)
	for _, s := range subs {
		s.end(liveEndShutdown, deadline)
	}
}

// streamCount is the number of open streams.
func (h *liveHub) streamCount() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.all)
}

// offer hands lb to s without waiting: a stream that is too far behind is
// dropped instead.
func (h *liveHub) offer(s *liveSub, lb *liveBatch) {
	if s.ended.Load() {
		return
	}
	n := int64(len(lb.buf))
	// A stream with nothing queued takes any batch; one already holding
	// something takes no more than its budget.
	if q := s.queued.Add(n); q > n && q > h.buffer {
		h.drop(s)
		return
	}
	select {
	case s.ch <- lb:
	default:
		h.drop(s)
	}
}

func (h *liveHub) drop(s *liveSub) {
	// The reader is cut at once: a write it does not read blocks no more.
	if s.end(liveEndSlow, time.Now()) {
		h.dropped.Inc()
	}
}

// liveBatch is a committed batch as the streams read it: a copy of each
// event's canonical JSON and session id, shared by every stream it is
// offered to and never changed.
type liveBatch struct {
	buf []byte
	ev  []liveEvent
}

type liveEvent struct {
	typ                core.EventType
	ts                 int64
	start, end, sesEnd uint32 // JSON in buf[start:end], session in buf[end:sesEnd]
}

func copyLiveBatch(b *core.Batch) *liveBatch {
	lb := &liveBatch{buf: make([]byte, 0, len(b.Buf)), ev: make([]liveEvent, len(b.Events))}
	for i := range b.Events {
		start := uint32(len(lb.buf))
		lb.buf = append(lb.buf, b.JSON(i)...)
		end := uint32(len(lb.buf))
		lb.buf = append(lb.buf, b.Session(i)...)
		lb.ev[i] = liveEvent{typ: b.Events[i].Type, ts: b.Events[i].TS, start: start, end: end, sesEnd: uint32(len(lb.buf))}
	}
	return lb
}

func (lb *liveBatch) json(i int) []byte    { e := &lb.ev[i]; return lb.buf[e.start:e.end:e.end] }
func (lb *liveBatch) session(i int) []byte { e := &lb.ev[i]; return lb.buf[e.end:e.sesEnd:e.sesEnd] }

// envelope holds the JSON tokens of an event's envelope fields.
type envelope struct {
	typ, project, session, visitor, ts, scene []byte
}

// scanEnvelope reads the envelope of a canonical event, which always starts
// {"type":…,"projectId":…,"sessionId":…,"visitorId":…,"ts":…,
// "sdkVersion":…,"sceneId":… (docs/API.md, "Server-authoritative fields"):
// a few dozen bytes are looked at, nothing is parsed.
func scanEnvelope(ev []byte) (e envelope, ok bool) {
	p := ev
	field := func(name string) bool {
		if len(p) < len(name)+4 || p[0] != ',' && p[0] != '{' || p[1] != '"' ||
			string(p[2:2+len(name)]) != name || p[2+len(name)] != '"' || p[3+len(name)] != ':' {
			return false
		}
		p = p[4+len(name):]
		return true
	}
	str := func() []byte {
		if len(p) == 0 || p[0] != '"' {
			return nil
		}
		for i := 1; i < len(p); i++ {
			switch p[i] {
			case '\\':
				i++
			case '"':
				t := p[:i+1]
				p = p[i+1:]
				return t
			}
		}
		return nil
	}
	num := func() []byte {
		i := 0
		for i < len(p) && p[i] >= '0' && p[i] <= '9' {
			i++
		}
		t := p[:i]
		p = p[i:]
		return t
	}
	if !field("type") {
		return e, false
	}
	if e.typ = str(); e.typ == nil || !field("projectId") {
		return e, false
	}
	if e.project = str(); e.project == nil || !field("sessionId") {
		return e, false
	}
	if e.session = str(); e.session == nil || !field("visitorId") {
		return e, false
	}
	if e.visitor = str(); e.visitor == nil || !field("ts") {
		return e, false
	}
	if e.ts = num(); len(e.ts) == 0 || !field("sdkVersion") || str() == nil || !field("sceneId") {
		return e, false
	}
	e.scene = str()
	return e, e.scene != nil
}

// unquoteToken strips the quotes of a JSON string token that holds no
// escapes (a scene id: its alphabet needs none).
func unquoteToken(t []byte) []byte {
	if len(t) >= 2 {
		return t[1 : len(t)-1]
	}
	return t
}
