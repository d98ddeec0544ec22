package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/s2"

	"github.com/uptimizr/edge/core"
)

// The ingest log holds, per accepted batch, what the aggregator needs and no
// more: a version-2 record. Raw chunks and quarantine entries keep whole
// events (version 1, record.go), which the aggregator also still reads, so
// that a log written before version 2 is folded as it was.
//
//	byte 0   format version (2)
//	byte 1   flags: bit 0 = body is S2-compressed
//	body     uvarint receivedAt (epoch ms), uvarint n, then n times:
//	         byte type, uvarint ts,
//	         uvarint len+1 + sessionId (0: the previous event's),
//	         byte k, then k times: byte field, uvarint len + the field's
//	         canonical JSON token (len 0: this field's previous token)
//
// A field byte is a position in aggFields plus one; a token is the value as
// core's encoder wrote it (a quoted string, a number, an array, an object).
const logRecordVersion = 2

// Numbers of the fields the aggregator reads (positions in aggFields + 1).
// They are stored in log records: append only, never renumber.
const (
	fSceneID = iota + 1
	fVisitorID
	fDevice
	fScene
	fUser
	fConnector
	fGraphics
	fFPS
	fJSHeapBytes
	fTriangles
	fVertices
	fTextureBytes
	fGeometryBytes
	fMesh
	fVisibleMs
	fCenteredMs
	fMaxScreenFraction
	fDwellMs
	fScreen
	fHitPoint
	fDirection
	fSource
	fKind
	fHitMesh
	fAction
	fDurationMs
	fFrameTimeMs
	fFrameTimeP95Ms
	fLongFrames
	fRenderScale
	fPhase
	fSeverity
	fCategory
	fBackend
	fCount
	fPosition
	fFrom
	fTo
	fRay
	fFOV
	fAspect
	fNear
	numAggFields = iota
)

// aggFields names the fields above, in number order.
var aggFields = [numAggFields]string{
	"sceneId", "visitorId", "device", "scene", "user", "connector", "graphics",
	"fps", "jsHeapBytes", "triangles", "vertices", "textureBytes", "geometryBytes",
	"mesh", "visibleMs", "centeredMs", "maxScreenFraction", "dwellMs",
	"screen", "hitPoint", "direction",
	"source", "kind", "hitMesh", "action", "durationMs",
	"frameTimeMs", "frameTimeP95Ms", "longFrames", "renderScale", "phase",
	"severity", "category", "backend", "count",
	"position", "from", "to", "ray", "fov", "aspect", "near",
}

// sessionMetaFields are the session_start fields kept in a session's record.
var sessionMetaFields = [...]uint8{fDevice, fScene, fUser, fConnector, fGraphics}

// resourceFields are the fields of ResourceMetrics, in the same order.
var resourceFields = [...]uint8{fJSHeapBytes, fTriangles, fVertices, fTextureBytes, fGeometryBytes}

// aggWants[t] has bit f set when the aggregator reads field f of type t.
var aggWants = func() (w [core.NumEventTypes]uint64) {
	bit := func(fs ...uint8) (m uint64) {
		for _, f := range fs {
			m |= 1 << f
		}
		return m
	}
	for t := range w {
		w[t] = bit(fSceneID, fVisitorID)
	}
	w[core.TypeSessionStart] |= bit(sessionMetaFields[:]...)
	w[core.TypeFramePerf] |= bit(fFPS)
	w[core.TypeResourceSample] |= bit(resourceFields[:]...)
	w[core.TypeMeshInteraction] |= bit(fMesh)
	w[core.TypeMeshVisibility] |= bit(fMesh, fVisibleMs, fCenteredMs, fMaxScreenFraction)
	w[core.TypeHoverDwell] |= bit(fMesh, fDwellMs)
	w[core.TypePointerMove] |= bit(fScreen, fHitPoint)
	w[core.TypePointerClick] |= bit(fScreen, fHitMesh, fHitPoint, fRay)
	w[core.TypeCameraSample] |= bit(fHitPoint, fDirection, fPosition, fFOV, fAspect, fNear)
	// The interaction aggregates (agginteract.go).
	for _, t := range inputTypes {
		w[t] |= bit(fSource)
	}
	w[core.TypeMeshInteraction] |= bit(fKind)
	w[core.TypeCameraGesture] |= bit(fKind, fDurationMs)
	w[core.TypeInputAction] |= bit(fAction)
	// The performance aggregates (aggperf.go).
	w[core.TypeFramePerf] |= bit(fFrameTimeMs, fFrameTimeP95Ms, fLongFrames, fRenderScale)
	w[core.TypeCompileStall] |= bit(fPhase, fDurationMs)
	w[core.TypeGraphicsDiagnostic] |= bit(fSeverity, fCategory, fBackend, fCount)
	w[core.TypeCapabilityChange] |= bit(fKind, fFrom, fTo)
	return w
}()

var aggCapture = func() *core.Capture {
	c, err := core.NewCapture(aggFields[:]...)
	if err != nil {
		panic(err)
	}
	return c
}()

// Capture returns the fields the aggregator reads, for the Processors that
// fill the batches committed to this store (core.Processor.SetCapture).
// Batches whose events were validated without it are committed all the
// same; their fields are then found by scanning each event's JSON.
func Capture() *core.Capture { return aggCapture }

// logEvent is one event of a log record. Session and the tokens alias the
// decoder's buffers and are valid only during the callback.
type logEvent struct {
	Type    core.EventType
	TS      int64
	Session []byte
	f       [numAggFields + 1][]byte // tokens by field number; nil: absent
}

// encodeLogRecord appends the log record of batch b to dst. m is scratch for
// events that were validated without Capture; scratch is reused for the
// uncompressed body when compressing and is returned grown.
func encodeLogRecord(dst, scratch []byte, b *core.Batch, m *members, compress bool) (out, scratchOut []byte) {
	return frameRecord(dst, scratch, logRecordVersion, compress, func(d []byte) []byte { return appendLogBody(d, b, m) })
}

// appendS2 appends the S2 block encoding of src to dst.
func appendS2(dst, src []byte) []byte { return appendBlock(dst, src, s2.Encode) }

// appendSnappy appends the Snappy-compatible block encoding of src to dst:
// as fast as S2's own and about as small (docs/RATIONALE.md), S2's decoder
// reads it, and so does any Snappy library, as a consumer of the forwarded
// messages must.
func appendSnappy(dst, src []byte) []byte { return appendBlock(dst, src, s2.EncodeSnappy) }

func appendBlock(dst, src []byte, encode func(dst, src []byte) []byte) []byte {
	need := s2.MaxEncodedLen(len(src))
	start := len(dst)
	if cap(dst)-start < need {
		grown := make([]byte, start, start+need)
		copy(grown, dst)
		dst = grown
	}
	enc := encode(dst[start:start+need], src)
	return dst[:start+len(enc)]
}

func appendLogBody(dst []byte, b *core.Batch, m *members) []byte {
	dst = binary.AppendUvarint(dst, uint64(b.ReceivedAt))
	dst = binary.AppendUvarint(dst, uint64(len(b.Events)))
	var last [numAggFields + 1][]byte
	var lastSess []byte
	for i := range b.Events {
		e := &b.Events[i]
		dst = append(dst, byte(e.Type))
		dst = binary.AppendUvarint(dst, uint64(e.TS))
		s := b.Session(i)
		if i > 0 && bytes.Equal(s, lastSess) {
			dst = append(dst, 0)
		} else {
			dst = binary.AppendUvarint(dst, uint64(len(s))+1)
			dst = append(dst, s...)
			lastSess = s
		}
		want := aggWants[e.Type]
		kpos := len(dst)
		dst = append(dst, 0)
		k := byte(0)
		put := func(f uint8, tok []byte) {
			if len(tok) == 0 {
				return
			}
			k++
			dst = append(dst, f)
			if bytes.Equal(tok, last[f]) {
				dst = append(dst, 0)
				return
			}
			dst = binary.AppendUvarint(dst, uint64(len(tok)))
			dst = append(dst, tok...)
			last[f] = tok
		}
		if spans, ok := b.Captured(i); ok {
			for _, sp := range spans {
				if want&(1<<sp.Field) != 0 {
					put(sp.Field, b.Value(sp))
				}
			}
		} else if m.index(b.JSON(i)) == nil {
			for f := uint8(1); f <= numAggFields; f++ {
				if want&(1<<f) != 0 {
					if tok := m.raw(aggFields[f-1]); len(tok) > 0 {
						put(f, tok)
					}
				}
			}
		}
		dst[kpos] = k
	}
	return dst
}

// decodeLogRecord calls fn for each event of a log record, of any version
// (1, 2, 4 or 5), in stored order. m is scratch for version-1 records, whose events
// that are not JSON objects are skipped and counted; scratch is reused for
// decompression and returned grown.
func decodeLogRecord(val, scratch []byte, m *members, fn func(*logEvent) error) (_ []byte, skipped int, _ error) {
	var ev logEvent
	return decodeLogRecordInto(val, scratch, m, &ev, fn)
}

// decodeLogRecordInto is decodeLogRecord with the event handed to fn held
// in e, so that a caller that keeps e decodes without allocating.
func decodeLogRecordInto(val, scratch []byte, m *members, e *logEvent, fn func(*logEvent) error) (_ []byte, skipped int, _ error) {
	if len(val) >= 1 && val[0] == recordVersion {
		_, scratch, err := DecodeRecord(val, scratch, func(re RecordEvent) error {
			*e = logEvent{Type: re.Type, TS: re.TS, Session: re.Session}
			if m.index(re.JSON) != nil {
				skipped++
				return nil
			}
			want := aggWants[re.Type]
			for f := uint8(1); f <= numAggFields; f++ {
				if want&(1<<f) != 0 {
					e.f[f] = m.raw(aggFields[f-1])
				}
			}
			return fn(e)
		})
		return scratch, skipped, err
	}
	var body []byte
	var err error
	if len(val) >= 1 && (val[0] == fullRecordVersion || val[0] == fullRecordVersionV4) {
		r, ok := splitFullRecord(val)
		if !ok {
			return scratch, 0, ErrCorruptRecord
		}
		body, scratch, err = r.part(r.agg, scratch)
	} else {
		body, scratch, err = recordBody(val, scratch, logRecordVersion)
	}
	if err != nil {
		return scratch, 0, err
	}
	return scratch, 0, decodeLogBody(body, e, fn)
}

// decodeLogBody calls fn for each event of a version-2 body, held in e.
func decodeLogBody(body []byte, e *logEvent, fn func(*logEvent) error) error {
	rd := recordReader{body}
	var last [numAggFields + 1][]byte
	var lastSess []byte
	_, ok1 := rd.uvarint()
	n, ok2 := rd.uvarint()
	if !ok1 || !ok2 || n > uint64(len(rd.b)) {
		return ErrCorruptRecord
	}
	for i := uint64(0); i < n; i++ {
		*e = logEvent{}
		var ok bool
		if e.Type, e.TS, ok = rd.head(); !ok {
			return ErrCorruptRecord
		}
		sl, ok := rd.uvarint()
		switch {
		case !ok:
			return ErrCorruptRecord
		case sl == 0:
			if i == 0 {
				return ErrCorruptRecord
			}
			e.Session = lastSess
		default:
			if sl-1 > uint64(len(rd.b)) {
				return ErrCorruptRecord
			}
			e.Session = rd.b[: sl-1 : sl-1]
			rd.b = rd.b[sl-1:]
		}
		lastSess = e.Session
		if len(rd.b) == 0 {
			return ErrCorruptRecord
		}
		k := int(rd.b[0])
		rd.b = rd.b[1:]
		for j := 0; j < k; j++ {
			if len(rd.b) == 0 {
				return ErrCorruptRecord
			}
			f := rd.b[0]
			rd.b = rd.b[1:]
			tok, ok := rd.bytes()
			if !ok || f == 0 || f > numAggFields {
				return ErrCorruptRecord
			}
			if len(tok) == 0 {
				if tok = last[f]; tok == nil {
					return ErrCorruptRecord
				}
			}
			e.f[f], last[f] = tok, tok
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if len(rd.b) != 0 {
		return ErrCorruptRecord
	}
	return nil
}

// s2Decode decodes an S2 block into scratch, refusing more than 64 MiB.
func s2Decode(src, scratch []byte) (out, scratchOut []byte, err error) {
	n, err := s2.DecodedLen(src)
	if err != nil || n > 64<<20 {
		return nil, scratch, fmt.Errorf("%w: %v", ErrCorruptRecord, err)
	}
	if cap(scratch) < n {
		scratch = make([]byte, n)
	}
	out, err = s2.Decode(scratch[:n], src)
	if err != nil {
		return nil, scratch, fmt.Errorf("%w: %v", ErrCorruptRecord, err)
	}
	return out, scratch, nil
}
