package storage

import (
	"encoding/binary"
	"errors"

	"github.com/uptimizr/edge/core"
)

// Ingest-log and raw-chunk values share one record format:
//
//	byte 0   format version (1)
//	byte 1   flags: bit 0 = body is S2-compressed
//	body     uvarint receivedAt (epoch ms), uvarint n, then n times:
//	         byte type, uvarint ts, uvarint len + sessionId, uvarint len + canonical JSON
const (
	recordVersion   = 1
	flagCompressedS = 1 << 0
)

// ErrCorruptRecord is returned when a stored record cannot be decoded.
var ErrCorruptRecord = errors.New("storage: corrupt record")

// appendRecordBody appends the uncompressed body for the events idx of b
// (all events when idx is nil).
func appendRecordBody(dst []byte, b *core.Batch, idx []int32) []byte {
	n := len(b.Events)
	if idx != nil {
		n = len(idx)
	}
	dst = binary.AppendUvarint(dst, uint64(b.ReceivedAt))
	dst = binary.AppendUvarint(dst, uint64(n))
	for j := 0; j < n; j++ {
		i := j
		if idx != nil {
			i = int(idx[j])
		}
		e := &b.Events[i]
		dst = append(dst, byte(e.Type))
		dst = binary.AppendUvarint(dst, uint64(e.TS))
		s := b.Session(i)
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
		js := b.JSON(i)
		dst = binary.AppendUvarint(dst, uint64(len(js)))
		dst = append(dst, js...)
	}
	return dst
}

// encodeRecord appends a complete record to dst. scratch is reused for the
// uncompressed body when compressing and is returned grown.
func encodeRecord(dst, scratch []byte, b *core.Batch, idx []int32, compress bool) (out, scratchOut []byte) {
	return frameRecord(dst, scratch, recordVersion, compress, func(d []byte) []byte { return appendRecordBody(d, b, idx) })
}

// frameRecord appends a record of the given version to dst: the version and
// flags bytes, then the body appendBody writes, S2-compressed when compress
// is set. scratch is reused for the uncompressed body when compressing and
// is returned grown.
func frameRecord(dst, scratch []byte, version byte, compress bool, appendBody func([]byte) []byte) (out, scratchOut []byte) {
	if !compress {
		dst = append(dst, version, 0)
		return appendBody(dst), scratch
	}
	scratch = appendBody(scratch[:0])
	dst = append(dst, version, flagCompressedS)
	return appendS2(dst, scratch), scratch
}

// RecordEvent is one event read back from a record. Session and JSON alias
// the decoder's buffers and are valid only during the callback.
type RecordEvent struct {
	Type    core.EventType
	TS      int64
	Session []byte
	JSON    []byte
}

// DecodeRecord calls fn for each event of a stored record (version 1, or a
// version-4 log record with its events) in stored order and returns the
// record's receivedAt. scratch is reused for decompression and
// returned grown. A version-5 record's events are its message (Forward
// reads it), not a version-1 body: it is refused.
func DecodeRecord(val, scratch []byte, fn func(RecordEvent) error) (receivedAt int64, scratchOut []byte, err error) {
	var body []byte
	if len(val) >= 1 && val[0] == fullRecordVersionV4 {
		// A forwarding node's record of the previous release: its events
		// part is a version-1 body.
		r, ok := splitFullRecord(val)
		if !ok || !r.hasEvents {
			return 0, scratch, ErrCorruptRecord
		}
		body, scratch, err = r.part(r.events, scratch)
	} else {
		body, scratch, err = recordBody(val, scratch, recordVersion)
	}
	if err != nil {
		return 0, scratch, err
	}
	rd := recordReader{body}
	ra, ok1 := rd.uvarint()
	n, ok2 := rd.uvarint()
	if !ok1 || !ok2 || n > uint64(len(rd.b)) {
		return 0, scratch, ErrCorruptRecord
	}
	for i := uint64(0); i < n; i++ {
		var ev RecordEvent
		var ok bool
		if ev.Type, ev.TS, ok = rd.head(); !ok {
			return 0, scratch, ErrCorruptRecord
		}
		if ev.Session, ok = rd.bytes(); !ok {
			return 0, scratch, ErrCorruptRecord
		}
		if ev.JSON, ok = rd.bytes(); !ok {
			return 0, scratch, ErrCorruptRecord
		}
		if err := fn(ev); err != nil {
			return int64(ra), scratch, err
		}
	}
	if len(rd.b) != 0 {
		return 0, scratch, ErrCorruptRecord
	}
	return int64(ra), scratch, nil
}

// recordBody checks a record's version byte and returns its body,
// decompressed into scratch when its flags say so.
func recordBody(val, scratch []byte, version byte) (body, scratchOut []byte, err error) {
	if len(val) < 2 || val[0] != version {
		return nil, scratch, ErrCorruptRecord
	}
	body = val[2:]
	if val[1]&flagCompressedS != 0 {
		return s2Decode(body, scratch)
	}
	return body, scratch, nil
}

// recordReader reads the fields of a record body; each read reports false
// when the body is too short or malformed.
type recordReader struct{ b []byte }

func (r *recordReader) uvarint() (uint64, bool) {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		return 0, false
	}
	r.b = r.b[n:]
	return v, true
}

// bytes reads a uvarint length and that many bytes (capped slice).
func (r *recordReader) bytes() ([]byte, bool) {
	l, ok := r.uvarint()
	if !ok || l > uint64(len(r.b)) {
		return nil, false
	}
	b := r.b[:l:l]
	r.b = r.b[l:]
	return b, true
}

// head reads an event's type byte and ts, refusing an unknown type.
func (r *recordReader) head() (core.EventType, int64, bool) {
	if len(r.b) == 0 {
		return 0, 0, false
	}
	t := core.EventType(r.b[0])
	r.b = r.b[1:]
	ts, ok := r.uvarint()
	if !ok || t == core.TypeInvalid || t >= core.NumEventTypes {
		return 0, 0, false
	}
	return t, int64(ts), true
}
