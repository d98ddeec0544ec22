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
	if !compress {
		dst = append(dst, recordVersion, 0)
		return appendRecordBody(dst, b, idx), scratch
	}
	scratch = appendRecordBody(scratch[:0], b, idx)
	dst = append(dst, recordVersion, flagCompressedS)
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

// DecodeRecord calls fn for each event of a stored record in stored order and
// returns the record's receivedAt. scratch is reused for decompression and
// returned grown.
func DecodeRecord(val, scratch []byte, fn func(RecordEvent) error) (receivedAt int64, scratchOut []byte, err error) {
	if len(val) < 2 || val[0] != recordVersion {
		return 0, scratch, ErrCorruptRecord
	}
	body := val[2:]
	if val[1]&flagCompressedS != 0 {
		var err error
		if body, scratch, err = s2Decode(body, scratch); err != nil {
			return 0, scratch, err
		}
	}
	rd := body
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(rd)
		if n <= 0 {
			return 0, false
		}
		rd = rd[n:]
		return v, true
	}
	bytesN := func() ([]byte, bool) {
		l, ok := uv()
		if !ok || l > uint64(len(rd)) {
			return nil, false
		}
		b := rd[:l:l]
		rd = rd[l:]
		return b, true
	}
	ra, ok1 := uv()
	n, ok2 := uv()
	if !ok1 || !ok2 || n > uint64(len(rd)) {
		return 0, scratch, ErrCorruptRecord
	}
	for i := uint64(0); i < n; i++ {
		if len(rd) == 0 {
			return 0, scratch, ErrCorruptRecord
		}
		var ev RecordEvent
		ev.Type = core.EventType(rd[0])
		rd = rd[1:]
		ts, ok := uv()
		if !ok || ev.Type == core.TypeInvalid || ev.Type >= core.NumEventTypes {
			return 0, scratch, ErrCorruptRecord
		}
		ev.TS = int64(ts)
		if ev.Session, ok = bytesN(); !ok {
			return 0, scratch, ErrCorruptRecord
		}
		if ev.JSON, ok = bytesN(); !ok {
			return 0, scratch, ErrCorruptRecord
		}
		if err := fn(ev); err != nil {
			return int64(ra), scratch, err
		}
	}
	if len(rd) != 0 {
		return 0, scratch, ErrCorruptRecord
	}
	return int64(ra), scratch, nil
}
