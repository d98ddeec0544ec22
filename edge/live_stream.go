package edge

import (
	"bufio"
	"bytes"
	"strconv"
	"time"

	"github.com/uptimizr/edge/core"
)

// The stream loops run in fasthttp's body-stream goroutine, after the
// handler has returned: the connection stays counted by the server (its
// limits and its drain see it) for as long as the stream lasts. A loop ends
// when its client goes (a write fails, or the connection is found closed),
// when the node ends it (too far behind, or shutting down), or when its key
// is no longer live; it then gives its place back.

// liveFilter is what an event stream sends of each batch.
type liveFilter struct {
	full    bool   // the canonical events as stored (raw retention on), else their envelope
	types   uint64 // bit per core.EventType; 0 = every type
	scene   []byte // nil = every scene
	session []byte // nil = every session (the tail of one session otherwise)
}

// writeSSE writes one Server-Sent Event. data is one line of JSON.
func writeSSE(w *bufio.Writer, event string, data []byte) {
	w.WriteString("event: ")
	w.WriteString(event)
	w.WriteString("\ndata: ")
	w.Write(data)
	w.WriteString("\n\n")
}

// runEvents streams the batches offered to sub.
func (s *liveAPI) runEvents(w *bufio.Writer, sub *liveSub, a *liveAuth, f *liveFilter, backfill func(*bufio.Writer) bool) {
	defer s.hub.unsubscribe(sub)
	if !sub.extend(s.writeTimeout) {
		return
	}
	w.WriteString(": connected\n\n")
	if backfill != nil && !backfill(w) {
		return
	}
	if w.Flush() != nil {
		return
	}
	hb := time.NewTicker(s.heartbeat.get())
	defer hb.Stop()
	chk := time.NewTicker(s.checkEvery.get())
	defer chk.Stop()
	var line []byte
	for {
		select {
		case <-sub.gone:
			s.ended(w, sub)
			return
		case lb := <-sub.ch:
			if !sub.extend(s.writeTimeout) {
				s.ended(w, sub)
				return
			}
			line = s.writeBatch(w, lb, f, line)
			sub.queued.Add(-int64(len(lb.buf)))
			if w.Flush() != nil {
				return
			}
		case <-hb.C:
			if !s.stillValid(a) {
				s.revoked(w)
				return
			}
			if !sub.extend(s.writeTimeout) {
				s.ended(w, sub)
				return
			}
			w.WriteString(": ping\n\n")
			if w.Flush() != nil {
				return
			}
		case <-chk.C:
			if peerClosed(sub.conn) {
				return
			}
		}
	}
}

// writeBatch writes the events of lb that f lets through.
func (s *liveAPI) writeBatch(w *bufio.Writer, lb *liveBatch, f *liveFilter, line []byte) []byte {
	for i := range lb.ev {
		e := &lb.ev[i]
		if f.types != 0 && f.types&(1<<e.typ) == 0 {
			continue
		}
		if f.session != nil && !bytes.Equal(lb.session(i), f.session) {
			continue
		}
		ev := lb.json(i)
		if f.full && f.scene == nil {
			writeSSE(w, "event", ev)
			continue
		}
		env, ok := scanEnvelope(ev)
		if f.scene != nil && (!ok || !bytes.Equal(unquoteToken(env.scene), f.scene)) {
			continue
		}
		if f.full {
			writeSSE(w, "event", ev)
			continue
		}
		line = appendEnvelopeEvent(line[:0], e, lb.session(i), &env, ok)
		writeSSE(w, "event", line)
	}
	return line
}

// appendEnvelopeEvent is what the event stream sends of an event while raw
// retention is off: its envelope, without the visitor id or any payload,
// so that the stream shows no more than the aggregates do.
func appendEnvelopeEvent(dst []byte, e *liveEvent, session []byte, env *envelope, ok bool) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, e.typ.String()...)
	dst = append(dst, '"')
	if ok {
		dst = append(dst, `,"projectId":`...)
		dst = append(dst, env.project...)
		dst = append(dst, `,"sessionId":`...)
		dst = append(dst, env.session...)
	} else {
		dst = append(dst, `,"sessionId":`...)
		dst = core.AppendQuoted(dst, session)
	}
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, e.ts, 10)
	if ok {
		dst = append(dst, `,"sceneId":`...)
		dst = append(dst, env.scene...)
	}
	return append(dst, '}')
}

// runPresence streams presence snapshots.
func (s *liveAPI) runPresence(w *bufio.Writer, sub *liveSub, a *liveAuth, scene []byte, limit int) {
	defer s.hub.unsubscribe(sub)
	var buf []byte
	push := func() bool {
		if !sub.extend(s.writeTimeout) {
			s.ended(w, sub)
			return false
		}
		buf = s.hub.appendSnapshot(buf[:0], a.num, scene, limit)
		writeSSE(w, "presence", buf)
		return w.Flush() == nil
	}
	w.WriteString(": connected\n\n")
	if !push() {
		return
	}
	tick := time.NewTicker(s.presenceEvery.get())
	defer tick.Stop()
	hb := time.NewTicker(s.heartbeat.get())
	defer hb.Stop()
	chk := time.NewTicker(s.checkEvery.get())
	defer chk.Stop()
	for {
		select {
		case <-sub.gone:
			s.ended(w, sub)
			return
		case <-tick.C:
			if !push() {
				return
			}
		case <-hb.C:
			if !s.stillValid(a) {
				s.revoked(w)
				return
			}
		case <-chk.C:
			if peerClosed(sub.conn) {
				return
			}
		}
	}
}

// ended writes why the node ended the stream, when the reader may still
// read it (a stream dropped for being too slow is cut without a word).
func (s *liveAPI) ended(w *bufio.Writer, sub *liveSub) {
	if sub.endedWhy() == liveEndShutdown {
		w.WriteString(": the node is shutting down; reconnect\n\n")
		w.Flush()
	}
}

// revoked ends a stream whose key is no longer live.
func (s *liveAPI) revoked(w *bufio.Writer) {
	writeSSE(w, "error", []byte(`{"error":"the API key of this stream is revoked or lacks the query capability"}`))
	w.Flush()
}
