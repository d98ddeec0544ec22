package storage

import (
	"encoding/binary"

	"github.com/uptimizr/edge/core"
)

// A node that forwards, and a hub, write version-4 log records: the
// aggregator's part (a version-2 body) first, so that the fold reads only
// what it needs, then what the record holds besides for its other reader.
//
//	byte 0   format version (4)
//	byte 1   flags: bit 0 = each part is S2-compressed
//	               bit 1 = an origin follows (a hub's record)
//	               bit 2 = the events part follows the aggregator's part
//	[origin] uvarint len + node id, uvarint seq
//	4 bytes  big-endian length of the aggregator's part, then the part: a
//	         version-2 body
//	[events] 4 bytes big-endian length of the events part, then the part:
//	         a version-1 body (the canonical events), which the fleet
//	         forwarder sends
//
// Each part's length is given, so that a record cut short anywhere is
// refused by either reader.
//
// A hub's record carries its origin (origin.go) and no events: the hub
// writes its raw chunks when it commits, as a node does, and forwards
// nothing. A forwarding node's record carries the events and no origin.
const fullRecordVersion = 4

const (
	flagOrigin = 1 << 1
	flagEvents = 1 << 2
)

// encodeFullRecord appends the version-4 log record of b to dst: with
// origin when it is not nil, and with the canonical events when events is
// set. m is scratch for events validated without Capture; scratch is reused
// for the uncompressed parts when compressing and is returned grown.
func encodeFullRecord(dst, scratch []byte, b *core.Batch, m *members, origin *Origin, events, compress bool) (out, scratchOut []byte) {
	var flags byte
	if compress {
		flags |= flagCompressedS
	}
	if origin != nil {
		flags |= flagOrigin
	}
	if events {
		flags |= flagEvents
	}
	dst = append(dst, fullRecordVersion, flags)
	if origin != nil {
		dst = binary.AppendUvarint(dst, uint64(len(origin.Node)))
		dst = append(dst, origin.Node...)
		dst = binary.AppendUvarint(dst, origin.Seq)
	}
	dst, scratch = appendPart(dst, scratch, compress, func(d []byte) []byte { return appendLogBody(d, b, m) })
	if events {
		dst, scratch = appendPart(dst, scratch, compress, func(d []byte) []byte { return appendRecordBody(d, b, nil) })
	}
	return dst, scratch
}

// appendPart appends one part: its 4-byte length, then what body writes,
// S2-compressed (through scratch) when compress is set.
func appendPart(dst, scratch []byte, compress bool, body func([]byte) []byte) (out, scratchOut []byte) {
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	if compress {
		scratch = body(scratch[:0])
		dst = appendS2(dst, scratch)
	} else {
		dst = body(dst)
	}
	binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
	return dst, scratch
}

// fullRecord is a version-4 record cut into its parts; the parts alias the
// record and are still compressed when compressed is set.
type fullRecord struct {
	compressed bool
	hasOrigin  bool
	node       []byte
	seq        uint64
	agg        []byte
	hasEvents  bool
	events     []byte
}

// splitFullRecord cuts a version-4 record into its parts; ok is false when
// val is not one or its framing is damaged.
func splitFullRecord(val []byte) (r fullRecord, ok bool) {
	if len(val) < 2 || val[0] != fullRecordVersion || val[1]&^(flagCompressedS|flagOrigin|flagEvents) != 0 {
		return r, false
	}
	flags := val[1]
	r.compressed, r.hasOrigin, r.hasEvents = flags&flagCompressedS != 0, flags&flagOrigin != 0, flags&flagEvents != 0
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
	if r.hasEvents {
		if r.events, ok = part(); !ok {
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
// forwarder sends: version 4 with its events part, or version 1.
func forwardable(val []byte) bool {
	if len(val) < 2 {
		return false
	}
	return val[0] == recordVersion || (val[0] == fullRecordVersion && val[1]&flagEvents != 0)
}
