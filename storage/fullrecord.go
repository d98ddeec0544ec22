package storage

import (
	"encoding/binary"

	"github.com/uptimizr/edge/core"
)

// A node that forwards, and a hub, write version-5 log records: the
// aggregator's part (a version-2 body) first, so that the fold reads only
// what it needs, then what the record holds besides for its other reader.
//
//	byte 0   format version (5)
//	byte 1   flags: bit 0 = the aggregator's part is S2-compressed
//	               bit 1 = an origin follows (a hub's record)
//	               bit 2 = the message follows the aggregator's part
//	               bit 3 = the message's body is a Snappy block
//	[origin] uvarint len + node id, uvarint seq
//	4 bytes  big-endian length of the aggregator's part, then the part: a
//	         version-2 body
//	[message] what the fleet forwarder sends, as it sends it:
//	         uvarint received-at (Unix ms), uvarint len + the first event's
//	         session id, then 4 bytes big-endian length of the body and the
//	         body: the canonical events as NDJSON (fleet.Record), a Snappy
//	         block of it when bit 3 is set
//
// Each part's length is given, so that a record cut short anywhere is
// refused by either reader. The forwarder copies the body into the message
// as it is: nothing is decoded or encoded again between the commit and the
// engine (docs/RATIONALE.md, "What does a forwarding node keep in its log,
// and what does it cost?").
//
// A hub's record carries its origin (origin.go) and no message: the hub
// writes its raw chunks when it commits, as a node does, and forwards
// nothing. A forwarding node's record carries the message and no origin.
//
// Version 4, which the previous release wrote, is read still: the same
// flags but bit 3, bit 0 compressing both parts, and in place of the
// message a version-1 body of the canonical events.
const (
	fullRecordVersion   = 5
	fullRecordVersionV4 = 4
)

const (
	flagOrigin = 1 << 1
	flagEvents = 1 << 2
	flagSnappy = 1 << 3
)

// encodeFullRecord appends the version-5 log record of b to dst: with
// origin when it is not nil, and with the message the forwarder sends when
// message is set (its body always a Snappy block). The aggregator's part is
// S2-compressed when compress is set. m is scratch for events validated
// without Capture; scratch is reused for the uncompressed parts and is
// returned grown.
func encodeFullRecord(dst, scratch []byte, b *core.Batch, m *members, origin *Origin, message, compress bool) (out, scratchOut []byte) {
	var flags byte
	if compress {
		flags |= flagCompressedS
	}
	if origin != nil {
		flags |= flagOrigin
	}
	if message {
		flags |= flagEvents | flagSnappy
	}
	dst = append(dst, fullRecordVersion, flags)
	if origin != nil {
		dst = binary.AppendUvarint(dst, uint64(len(origin.Node)))
		dst = append(dst, origin.Node...)
		dst = binary.AppendUvarint(dst, origin.Seq)
	}
	dst, scratch = appendPart(dst, scratch, compress, func(d []byte) []byte { return appendLogBody(d, b, m) })
	if message {
		dst = binary.AppendUvarint(dst, uint64(b.ReceivedAt))
		var sess []byte
		if len(b.Events) > 0 {
			sess = b.Session(0)
		}
		dst = binary.AppendUvarint(dst, uint64(len(sess)))
		dst = append(dst, sess...)
		dst, scratch = appendPart(dst, scratch, true, func(d []byte) []byte { return appendNDJSON(d, b) })
	}
	return dst, scratch
}

// appendNDJSON appends b's canonical events as NDJSON: each event, then a
// newline (fleet.Record's body).
func appendNDJSON(dst []byte, b *core.Batch) []byte {
	for i := range b.Events {
		dst = append(dst, b.JSON(i)...)
		dst = append(dst, '\n')
	}
	return dst
}

// appendPart appends one part: its 4-byte length, then what body writes,
// compressed (through scratch) when compress is set: a Snappy-compatible
// block, which S2's decoder reads as well as its own.
func appendPart(dst, scratch []byte, compress bool, body func([]byte) []byte) (out, scratchOut []byte) {
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	if compress {
		scratch = body(scratch[:0])
		dst = appendSnappy(dst, scratch)
	} else {
		dst = body(dst)
	}
	binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
	return dst, scratch
}

// fullRecord is a version-5 (or version-4) record cut into its parts; the
// parts alias the record. The aggregator's part is still compressed when
// compressed is set, and so is a version-4 record's events part.
type fullRecord struct {
	version    byte
	compressed bool
	hasOrigin  bool
	node       []byte
	seq        uint64
	agg        []byte
	// hasEvents: the record holds what the forwarder sends. In version 5
	// that is the message (receivedAt, session, body, bodySnappy); in
	// version 4, events, a version-1 body.
	hasEvents  bool
	receivedAt int64
	session    []byte
	body       []byte
	bodySnappy bool
	events     []byte
}

// splitFullRecord cuts a version-5 or version-4 record into its parts; ok
// is false when val is not one or its framing is damaged.
func splitFullRecord(val []byte) (r fullRecord, ok bool) {
	if len(val) < 2 {
		return r, false
	}
	known := byte(flagCompressedS | flagOrigin | flagEvents | flagSnappy)
	switch val[0] {
	case fullRecordVersion:
	case fullRecordVersionV4:
		known &^= flagSnappy
	default:
		return r, false
	}
	flags := val[1]
	if flags&^known != 0 || (flags&flagSnappy != 0 && flags&flagEvents == 0) {
		return r, false
	}
	r.version = val[0]
	r.compressed, r.hasOrigin, r.hasEvents = flags&flagCompressedS != 0, flags&flagOrigin != 0, flags&flagEvents != 0
	r.bodySnappy = flags&flagSnappy != 0
	rd := recordReader{val[2:]}
	if r.hasOrigin {
		var ok1, ok2 bool
		r.node, ok1 = rd.bytes()
		r.seq, ok2 = rd.uvarint()
		if !ok1 || !ok2 || len(r.node) == 0 {
			return r, false
		}
	}
	part := func() ([]byte, bool) {
		if len(rd.b) < 4 {
			return nil, false
		}
		n := uint64(binary.BigEndian.Uint32(rd.b))
		rd.b = rd.b[4:]
		if n > uint64(len(rd.b)) {
			return nil, false
		}
		p := rd.b[:n:n]
		rd.b = rd.b[n:]
		return p, true
	}
	if r.agg, ok = part(); !ok {
		return r, false
	}
	if r.hasEvents && r.version == fullRecordVersionV4 {
		if r.events, ok = part(); !ok {
			return r, false
		}
	} else if r.hasEvents {
		at, ok1 := rd.uvarint()
		sess, ok2 := rd.bytes()
		if !ok1 || !ok2 || at > 1<<62 {
			return r, false
		}
		r.receivedAt, r.session = int64(at), sess
		if r.body, ok = part(); !ok {
			return r, false
		}
	}
	return r, len(rd.b) == 0
}

// part returns one of the record's parts, decompressed into scratch when
// the record is compressed.
func (r *fullRecord) part(p, scratch []byte) (body, scratchOut []byte, err error) {
	if r.compressed {
		return s2Decode(p, scratch)
	}
	return p, scratch, nil
}

// recordOrigin returns the origin of a hub's log record; ok is false for
// a record without one.
func recordOrigin(val []byte) (node []byte, seq uint64, ok bool) {
	r, ok := splitFullRecord(val)
	if !ok || !r.hasOrigin {
		return nil, 0, false
	}
	return r.node, r.seq, true
}

// forwardable reports whether a log record holds the canonical events the
// forwarder sends: version 5 or 4 with them, or version 1.
func forwardable(val []byte) bool {
	if len(val) < 2 {
		return false
	}
	return val[0] == recordVersion || ((val[0] == fullRecordVersion || val[0] == fullRecordVersionV4) && val[1]&flagEvents != 0)
}
