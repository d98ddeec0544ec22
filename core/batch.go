package core

import (
	"context"
	"errors"
)

// Event is one validated event of a Batch. Its canonical JSON and its session id
// live in the Batch's buffer; read them with Batch.JSON and Batch.Session.
type Event struct {
	Type EventType
	TS   int64 // epoch ms, integral, >= 0

	start, end         uint32 // canonical JSON in Batch.Buf
	sessStart, sessEnd uint32 // sessionId (unescaped bytes) in Batch.Buf
	capStart, capEnd   uint32 // captured fields in Batch.Spans
	captured           bool   // validated with a Capture
}

// Batch is the unit that flows from decoding through filters into a Sink: the
// accepted, canonical events of one request for one project. It is reused
// across requests (Reset), so nothing may keep a reference to it or its buffer
// after the request that filled it ends.
type Batch struct {
	ProjectID  string // the key's project: the only project the batch can write to
	ProjectNum uint32 // the project's compact internal number (storage keys)
	ReceivedAt int64  // epoch ms when the request was received

	// Buf holds the canonical JSON of every event, then session ids; Events
	// index into it.
	Buf    []byte
	Events []Event
	// Spans locate the captured fields of events validated with a Capture.
	Spans []Span

	// Info is what the server decided for the request (visitor, coarse
	// browser/os, channels): a filter that rewrites events re-validates them
	// with it, so server-authoritative fields stay the server's.
	Info *RequestInfo

	// Quarantined counts events a filter set apart instead of storing;
	// Filtered counts events filters dropped.
	Quarantined int
	Filtered    int
}

// Reset empties b for reuse, keeping its capacity.
func (b *Batch) Reset() {
	b.ProjectID = ""
	b.ProjectNum = 0
	b.ReceivedAt = 0
	b.Buf = b.Buf[:0]
	b.Events = b.Events[:0]
	b.Spans = b.Spans[:0]
	b.Info = nil
	b.Quarantined = 0
	b.Filtered = 0
}

// Len is the number of events in b.
func (b *Batch) Len() int { return len(b.Events) }

// JSON returns the canonical JSON object of event i. The slice aliases b.Buf.
func (b *Batch) JSON(i int) []byte {
	e := &b.Events[i]
	return b.Buf[e.start:e.end:e.end]
}

// Session returns the session id of event i. The slice aliases b.Buf.
func (b *Batch) Session(i int) []byte {
	e := &b.Events[i]
	return b.Buf[e.sessStart:e.sessEnd:e.sessEnd]
}

// AppendEvent adds an already-canonical event to b: json must be a complete
// canonical JSON object and session its sessionId. It is the way a filter that
// rewrites events rebuilds a batch; the ingest path uses the Processor.
func (b *Batch) AppendEvent(t EventType, ts int64, session, json []byte) {
	start := uint32(len(b.Buf))
	b.Buf = append(b.Buf, json...)
	end := uint32(len(b.Buf))
	b.Buf = append(b.Buf, session...)
	b.Events = append(b.Events, Event{Type: t, TS: ts, start: start, end: end, sessStart: end, sessEnd: uint32(len(b.Buf))})
}

// Filter transforms a batch in place: it may edit or drop events, never add
// events to another session nor change projectId, sessionId, visitorId or ts.
// It is implemented by the plugin host; edge consumes it.
type Filter interface {
	Apply(ctx context.Context, b *Batch) error
}

// Sink durably stores a batch. Commit returns only when every event of b is
// committed (it survives a crash of the process), or with an error, in which
// case nothing of b may be counted as accepted.
type Sink interface {
	Commit(ctx context.Context, b *Batch) error
}

// ErrUnavailable is returned (wrapped) by a Sink that cannot take writes right
// now: shutting down, closed, or short of disk. Callers answer 503 with
// Retry-After.
var ErrUnavailable = errors.New("storage unavailable")

// Captured returns the spans of event i's captured fields, in schema order,
// and whether the event was validated with a Capture at all. When ok is
// false nothing was located and a consumer must read the event's JSON; when
// it is true, a captured field without a span is absent from the event.
func (b *Batch) Captured(i int) (spans []Span, ok bool) {
	e := &b.Events[i]
	return b.Spans[e.capStart:e.capEnd:e.capEnd], e.captured
}

// Value returns the canonical JSON token a span of b locates. The slice
// aliases b.Buf.
func (b *Batch) Value(s Span) []byte { return b.Buf[s.start:s.end:s.end] }

// AppendEventFrom appends event i of src to b, with its captured spans.
func (b *Batch) AppendEventFrom(src *Batch, i int) {
	e := &src.Events[i]
	b.AppendEvent(e.Type, e.TS, src.Session(i), src.JSON(i))
	if !e.captured {
		return
	}
	ne := &b.Events[len(b.Events)-1]
	ne.captured = true
	ne.capStart = uint32(len(b.Spans))
	shift := ne.start - e.start // the JSON moved by this much (mod 2^32)
	for _, s := range src.Spans[e.capStart:e.capEnd] {
		b.Spans = append(b.Spans, Span{Field: s.Field, start: s.start + shift, end: s.end + shift})
	}
	ne.capEnd = uint32(len(b.Spans))
}
