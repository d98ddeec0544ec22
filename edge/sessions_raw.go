package edge

import (
	"bufio"
	"bytes"
	"errors"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/uptimizr/edge/core"
)

// RawSessions reads raw per-session streams (retention on). The storage
// package's *storage.Raw implements it.
type RawSessions interface {
	// HasSession reports whether the project holds any raw event of the
	// session.
	HasSession(projectNum uint32, sessionID []byte) (bool, error)
	// SessionEvents calls fn with the canonical JSON of each event of the
	// session whose ts is in [since, until], in stored order: by ts, equal ts
	// in arrival order. The slice is valid only during the call. The read
	// stops at the first error fn returns, and returns it.
	SessionEvents(projectNum uint32, sessionID []byte, since, until int64, fn func(ts int64, event []byte) error) error
}

// Raw replay bounds.
const (
	// maxRawLimit is the largest accepted ?limit=; without limit the whole
	// session (within since/until) is returned.
	maxRawLimit = 100_000
	// maxTS is the largest ts an event may carry (2^53).
	maxTS = 1 << 53
	// maxSessionIDBytes is the longest a valid sessionId (128 UTF-16 code
	// units) can be in UTF-8; a longer id cannot name a stored session.
	maxSessionIDBytes = 128 * 3
	// deadlineEvery is how many events are written between extensions of
	// the connection's write deadline.
	deadlineEvery = 512
)

var (
	errRawLimit      = errors.New("limit reached")
	errRawClientGone = errors.New("client connection closed")
)

// sessionEvents is GET /api/v1/sessions/:id/events: the session's raw events
// in stored order, as a JSON array or NDJSON, streamed from one storage
// snapshot with memory bounded by the chunks that overlap in time, not by
// the session's length.
func (s *readAPI) sessionEvents(ctx *fasthttp.RequestCtx, sessionID []byte) {
	if !s.isGetOrHead(ctx) {
		return
	}
	var kh [32]byte
	p, ok := s.authenticate(ctx, core.CapQuery, nil, false, &kh)
	if !ok {
		return
	}
	if !retainsRaw(p, s.rawRetention) {
		s.fail(ctx, fasthttp.StatusForbidden, "raw session retention is disabled")
		return
	}
	if s.raw == nil {
		s.notImplemented(ctx)
		return
	}
	q, msg := parseRawQuery(ctx)
	if msg != "" {
		s.fail(ctx, fasthttp.StatusBadRequest, msg)
		return
	}
	pnum := p.ProjectNum()
	if len(sessionID) > maxSessionIDBytes {
		s.fail(ctx, fasthttp.StatusNotFound, "session not found")
		return
	}
	found, err := s.raw.HasSession(pnum, sessionID)
	if err != nil {
		s.log.Error("raw session lookup failed", "err", err)
		s.unavailable(ctx, "storage unavailable", 5)
		return
	}
	if !found {
		s.fail(ctx, fasthttp.StatusNotFound, "session not found")
		return
	}
	if q.ndjson {
		ctx.SetContentType("application/x-ndjson")
	} else {
		ctx.SetContentType("application/json")
	}
	ctx.Response.Header.Set("Cache-Control", "no-store")
	if ctx.IsHead() {
		return
	}
	sess := bytes.Clone(sessionID)
	wt := s.writeTimeout
	if wt > 0 {
		// The stream may outlast one write timeout: its deadline is moved
		// forward as it makes progress, so only a stalled client times out.
		ctx.SetWriteDeadline(time.Now().Add(wt))
	}
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		s.streamSession(ctx, w, pnum, sess, q, wt)
	})
}

// rawQuery is the parsed query string of a replay request.
type rawQuery struct {
	ndjson       bool
	since, until int64
	limit        int // 0 = no limit
}

// parseRawQuery reads format (or Accept), since, until and limit; msg is the
// 400 message when one is invalid.
func parseRawQuery(ctx *fasthttp.RequestCtx) (q rawQuery, msg string) {
	args := ctx.QueryArgs()
	q.until = maxTS
	switch f := args.Peek("format"); {
	case f == nil:
		acc := ctx.Request.Header.Peek("Accept")
		q.ndjson = bytes.Contains(acc, []byte("application/x-ndjson")) || bytes.Contains(acc, []byte("application/ndjson"))
	case string(f) == "ndjson":
		q.ndjson = true
	case string(f) == "json":
	default:
		return q, "format: must be json or ndjson"
	}
	var ok bool
	if v := args.Peek("since"); v != nil {
		if q.since, ok = parseBoundedInt(v, 0, maxTS); !ok {
			return q, "since: must be an integer epoch in milliseconds, 0 to 9007199254740992"
		}
	}
	if v := args.Peek("until"); v != nil {
		if q.until, ok = parseBoundedInt(v, 0, maxTS); !ok {
			return q, "until: must be an integer epoch in milliseconds, 0 to 9007199254740992"
		}
	}
	if q.since > q.until {
		return q, "since: must not be after until"
	}
	if v := args.Peek("limit"); v != nil {
		n, ok := parseBoundedInt(v, 1, maxRawLimit)
		if !ok {
			return q, "limit: must be an integer from 1 to 100000"
		}
		q.limit = int(n)
	}
	return q, ""
}

// parseBoundedInt parses a plain decimal integer in [lo, hi].
func parseBoundedInt(b []byte, lo, hi int64) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, false
	}
	return n, true
}

// streamSession writes the session's events to w. It runs in fasthttp's
// body-stream goroutine after the handler has returned, so the storage
// snapshot lives exactly as long as the stream. The status line is already
// on its way: a storage failure now can only cut the response short, and
// it does so by aborting the connection, so that a client sees a read
// error (an unterminated chunked body), never a short but well-formed
// answer.
func (s *readAPI) streamSession(ctx *fasthttp.RequestCtx, w *bufio.Writer, pnum uint32, sess []byte, q rawQuery, wt time.Duration) {
	n := 0
	if !q.ndjson {
		w.WriteByte('[')
	}
	err := s.raw.SessionEvents(pnum, sess, q.since, q.until, func(_ int64, ev []byte) error {
		if q.limit > 0 && n == q.limit {
			return errRawLimit
		}
		if !q.ndjson && n > 0 {
			w.WriteByte(',')
		}
		w.Write(ev)
		if q.ndjson {
			w.WriteByte('\n')
		}
		n++
		if n%deadlineEvery == 0 {
			if w.Flush() != nil {
				return errRawClientGone
			}
			if wt > 0 {
				ctx.SetWriteDeadline(time.Now().Add(wt))
			}
		}
		return nil
	})
	switch {
	case err == nil, errors.Is(err, errRawLimit):
	case errors.Is(err, errRawClientGone):
		return
	default:
		s.log.Error("raw session stream failed: connection aborted", "err", err, "events_sent", n)
		if c := ctx.Conn(); c != nil {
			c.Close()
		}
		return
	}
	if !q.ndjson {
		w.WriteByte(']')
	}
	w.Flush()
}

// RawRetainer is a project with its own raw-retention choice (a fleet
// bundle's rawRetention); set false means the node's applies.
type RawRetainer interface {
	RawRetention() (on, set bool)
}

// retainsRaw is whether p's raw per-session stream is kept: its own
// choice, else the node's (ENABLE_RAW_SESSION_RETENTION).
func retainsRaw(p core.Project, node bool) bool {
	if r, ok := p.(RawRetainer); ok {
		if on, set := r.RawRetention(); set {
			return on
		}
	}
	return node
}
