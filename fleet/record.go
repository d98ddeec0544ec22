package fleet

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/klauspost/compress/s2"

	"github.com/uptimizr/edge/core"
)

// A forwarded record is one message: the canonical events of one accepted
// batch (docs/API.md, "Stored form"), as its node's ingest log committed
// them, after validation, gating and the plugin chain. Never a raw IP or
// User-Agent, never unredacted events.
//
// The body is NDJSON: one canonical event per line, each line a JSON
// object (canonical JSON escapes every control character, so a line holds
// exactly one event). A consumer that reads JSON rows, such as ClickHouse's
// Kafka engine with JSONEachRow, reads it as it is. On JetStream the body is
// by default a Snappy block of that NDJSON (raw Snappy, not framed: any
// Snappy library decodes it), which the header Uptimizr-Encoding says; on
// Kafka it is always the NDJSON itself, which the protocol's batches
// compress. The headers say whose it is:
//
//	Uptimizr-Node         the node id (COLLECTOR_NODE_ID)
//	Uptimizr-Project      the project id
//	Uptimizr-Seq          the record's sequence number in its project's log on that node
//	Uptimizr-Received-At  when the node accepted the batch, Unix milliseconds
//	Uptimizr-Format       "ndjson-1"
//	Uptimizr-Encoding     "snappy" when the body is a Snappy block; absent otherwise
//
// A record's sequence numbers are per project on each node, so its
// deduplication id is node, project and sequence together (MsgID).
const (
	HeaderNode       = "Uptimizr-Node"
	HeaderProject    = "Uptimizr-Project"
	HeaderSeq        = "Uptimizr-Seq"
	HeaderReceivedAt = "Uptimizr-Received-At"
	HeaderFormat     = "Uptimizr-Format"
	HeaderEncoding   = "Uptimizr-Encoding"
	FormatNDJSON     = "ndjson-1"
	EncodingSnappy   = "snappy"
)

// MaxMessageBytes bounds a message's body, compressed or not: far over
// what one accepted batch encodes to (a batch is at most the node's body
// limit, 1 MiB by default, of which the canonical form is no larger), it
// keeps a hostile message from asking for more.
const MaxMessageBytes = 16 << 20

// MaxEvents bounds the events of one message, as the edge bounds a batch.
const MaxEvents = 1000

// ErrBadMessage marks a message that is not a forwarded record: a hub sends
// it to the dead letters.
var ErrBadMessage = errors.New("fleet: not a forwarded record")

// Record is one forwarded record.
type Record struct {
	Node       string
	Project    string
	Seq        uint64
	ReceivedAt int64 // Unix milliseconds
	// Body is the NDJSON of the canonical events, one per line; a Snappy
	// block of it when Snappy is set.
	Body   []byte
	Snappy bool
	// Session is the first event's session id: the partition key of
	// engines that partition (Kafka), so that a session's records stay in
	// one partition, in order (a browser's batch holds one session). It is
	// not in the message: a consumer reads it from the events.
	Session []byte
	// Events are the body's lines, one canonical JSON object each, as
	// ParseRecord cuts them; they alias the message's body or the
	// Record's own buffer. Publishers read Body, not Events.
	Events [][]byte

	plain []byte // ParseRecord's decompressed body
}

// MsgID returns the record's deduplication id, "<node>:<project>:<seq>"
// (JetStream's Nats-Msg-Id): the same record sent twice (a node that
// crashed between the engine's acknowledgement and its checkpoint) has the
// same id.
func (r *Record) MsgID() string {
	return r.Node + ":" + r.Project + ":" + strconv.FormatUint(r.Seq, 10)
}

// AppendNDJSON appends events as an NDJSON body: each event, then a
// newline.
func AppendNDJSON(dst []byte, events [][]byte) []byte {
	for _, e := range events {
		dst = append(dst, e...)
		dst = append(dst, '\n')
	}
	return dst
}

// AppendPlain appends the record's NDJSON body to dst, decompressing it
// when it is a Snappy block.
func (r *Record) AppendPlain(dst []byte) ([]byte, error) {
	if !r.Snappy {
		return append(dst, r.Body...), nil
	}
	n, err := s2.DecodedLen(r.Body)
	if err != nil {
		return dst, fmt.Errorf("fleet: record %s: its body is not a Snappy block: %w", r.MsgID(), err)
	}
	if n > MaxMessageBytes {
		return dst, fmt.Errorf("fleet: record %s: its body decompresses to %d bytes, over %d", r.MsgID(), n, MaxMessageBytes)
	}
	at := len(dst)
	dst = append(dst, make([]byte, n)...)
	if _, err := s2.Decode(dst[at:], r.Body); err != nil {
		return dst[:at], fmt.Errorf("fleet: record %s: its body is not a Snappy block: %w", r.MsgID(), err)
	}
	return dst, nil
}

// AppendSnappy appends the record's body as a Snappy block to dst,
// compressing it unless it is one.
func (r *Record) AppendSnappy(dst []byte) []byte {
	if r.Snappy {
		return append(dst, r.Body...)
	}
	at := len(dst)
	dst = append(dst, make([]byte, s2.MaxEncodedLen(len(r.Body)))...)
	return dst[:at+len(s2.EncodeSnappy(dst[at:], r.Body))]
}

// Headers returns the record's headers, in the order above: with
// Uptimizr-Encoding when the body sent is a Snappy block (snappy).
func (r *Record) Headers(snappy bool) [][2]string {
	h := [][2]string{
		{HeaderNode, r.Node},
		{HeaderProject, r.Project},
		{HeaderSeq, strconv.FormatUint(r.Seq, 10)},
		{HeaderReceivedAt, strconv.FormatInt(r.ReceivedAt, 10)},
		{HeaderFormat, FormatNDJSON},
	}
	if snappy {
		h = append(h, [2]string{HeaderEncoding, EncodingSnappy})
	}
	return h
}

// ParseRecord reads a message into r: header returns a header's value
// ("" when absent). The events alias body, or r's buffer when the body is
// a Snappy block. Any fault is an error wrapping ErrBadMessage that names
// it: a body that is not a Snappy block when the header says so, or that
// decompresses to more than MaxMessageBytes, among others. The events are
// split, not validated: the hub validates them as the edge does before it
// keeps them.
func ParseRecord(header func(name string) string, body []byte, r *Record) error {
	*r = Record{Events: r.Events[:0], plain: r.plain[:0]}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadMessage, fmt.Sprintf(format, args...))
	}
	if f := header(HeaderFormat); f != FormatNDJSON {
		return bad("format %q, want %q", f, FormatNDJSON)
	}
	r.Node = header(HeaderNode)
	if !ValidNodeID(r.Node) {
		return bad("invalid node id %q", r.Node)
	}
	r.Project = header(HeaderProject)
	if !core.ValidProjectID(r.Project) {
		return bad("invalid project id %q", r.Project)
	}
	seq, err := strconv.ParseUint(header(HeaderSeq), 10, 64)
	if err != nil {
		return bad("invalid sequence %q", header(HeaderSeq))
	}
	r.Seq = seq
	at, err := strconv.ParseInt(header(HeaderReceivedAt), 10, 64)
	if err != nil || at < 0 {
		return bad("invalid received-at %q", header(HeaderReceivedAt))
	}
	r.ReceivedAt = at
	if len(body) > MaxMessageBytes {
		return bad("body of %d bytes exceeds %d", len(body), MaxMessageBytes)
	}
	r.Body = body
	switch enc := header(HeaderEncoding); enc {
	case "":
	case EncodingSnappy:
		r.Snappy = true
		if r.plain, err = r.AppendPlain(r.plain); err != nil {
			return fmt.Errorf("%w: %w", ErrBadMessage, err)
		}
		body = r.plain
	default:
		return bad("encoding %q, want %q or none", enc, EncodingSnappy)
	}
	for len(body) > 0 {
		i := bytes.IndexByte(body, '\n')
		if i < 0 {
			return bad("body does not end in a newline")
		}
		line := body[:i:i]
		body = body[i+1:]
		if len(line) < 2 || line[0] != '{' || line[len(line)-1] != '}' {
			return bad("event %d is not a JSON object", len(r.Events))
		}
		if len(r.Events) == MaxEvents {
			return bad("more than %d events", MaxEvents)
		}
		r.Events = append(r.Events, line)
	}
	if len(r.Events) == 0 {
		return bad("no events")
	}
	return nil
}

// ValidNodeID reports whether id is a valid node id (core.ValidNodeID).
func ValidNodeID(id string) bool { return core.ValidNodeID(id) }

// SubjectPrefix is the subject every forwarded record is published under,
// followed by its project's token (Subject).
const SubjectPrefix = "uptimizr.events."

// Subject returns the JetStream subject of a project's records,
// "uptimizr.events.<project token>". A subject's tokens are separated by
// dots, which project ids may hold, so the token is the project id with
// every "." written "%2E" ("%" is not allowed in project ids): one project
// is always one token, and a hub shards by project with a filter such as
// "uptimizr.events.shop".
func Subject(project string) string {
	return SubjectPrefix + strings.ReplaceAll(project, ".", "%2E")
}

// ProjectOfSubject is Subject's inverse; ok is false for a subject that is
// not one.
func ProjectOfSubject(subject string) (project string, ok bool) {
	tok, found := strings.CutPrefix(subject, SubjectPrefix)
	if !found || tok == "" || strings.Contains(tok, ".") {
		return "", false
	}
	project = strings.ReplaceAll(tok, "%2E", ".")
	return project, core.ValidProjectID(project)
}
