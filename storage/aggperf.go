package storage

import (
	"encoding/binary"
	"math"

	"github.com/uptimizr/edge/core"
)

// The performance aggregates: what the perf/*, graphics-diagnostics and
// rendering-technology routes read (docs/API.md, "Performance"). The
// reference computes most of them per session first, then across
// sessions (a median of per-session percentiles), so a session's own
// distributions are kept, per hour, in a session-only cell.
const (
	kindPerfSession aggKind = 'u' // per hour, session scope only: see perfItem* → [n, sum, max]
	kindDevice      aggKind = 'w' // session scope only, one cell per session (bucket 0): device class → [1]
	kindRenderScale aggKind = 's' // per hour: renderScaleBins + bin → [scale samples, sum, downscaled]
	kindCompile     aggKind = 'y' // per hour: phase → [stalls, total ms, max ms]
	kindDiagnostics aggKind = 'z' // per hour: severity 0 category 0 backend → [incidents]
	kindTech        aggKind = 't' // per hour: api 0 backend 0 apiVersion 0 shadingLanguage → [session_start events]
)

// Items of a session's performance cell.
const (
	perfItemFPS       = 1 // + fps bin (appendFPSBin) → [frames, long frames, 0]
	perfItemFrameTime = 2 // + frameTimeMs in 0.1 ms bins → [frames]
	perfItemP95       = 3 // frameTimeP95Ms → [frames carrying it, sum, max]
	perfItemWindows   = 4 // a frame_perf without fps → [frames, long frames, 0]
	perfItemResource  = 5 // + metric (resourcePercentileFields) + log bin → [samples]
	perfItemSamples   = 6 // every resource_sample → [samples]

	renderScaleBins = 2 // + render scale in 0.01 bins
)

// resourcePercentileFields are the resource_sample fields of
// perf/resource-percentiles, by their byte in perfItemResource items.
var resourcePercentileFields = [...]uint8{fJSHeapBytes, fTextureBytes, fTriangles}

// Bins of the per-session distributions.
const (
	frameTimeBin     = 0.5  // ms
	renderScaleWidth = 0.01 // ratio
	logBinsPerOct    = 16   // resource values: 2^(1/16) wide bins, within 2.2% of the value
)

// linearBin is v's bin of width w, clamped to two bytes.
func linearBin(v, w float64) uint16 {
	return uint16(max(0, min(math.MaxUint16, math.Floor(v/w))))
}

// logBin is v's logarithmic bin (v ≥ 1; smaller values share bin 0).
func logBin(v float64) uint16 {
	if v < 1 {
		return 0
	}
	return uint16(min(math.MaxUint16, math.Floor(math.Log2(v)*logBinsPerOct)))
}

// logBinValue is a log bin's representative value (its geometric middle).
func logBinValue(b uint16) float64 { return math.Exp2((float64(b) + 0.5) / logBinsPerOct) }

// foldPerf folds the performance aggregates of one event.
func (st *foldState) foldPerf(e *logEvent, sess, scene string, ts int64) {
	switch e.Type {
	case core.TypeFramePerf:
		if sess == "" {
			return
		}
		// A frame's fps bin also counts its long frames (every frame_perf
		// has fps; the windows item is for one that had not).
		long, _ := parseNum(e.f[fLongFrames])
		b := append(st.buf[:0], perfItemWindows)
		if fps, ok := parseNum(e.f[fFPS]); ok {
			b = appendFPSBin(append(st.buf[:0], perfItemFPS), fps)
		}
		st.bump(kindPerfSession, sess, scene, ts, st.item(b), 1, long, 0)
		if ft, ok := parseNum(e.f[fFrameTimeMs]); ok && ft > 0 {
			b = binary.BigEndian.AppendUint16(append(st.buf[:0], perfItemFrameTime), linearBin(ft, frameTimeBin))
			st.bump(kindPerfSession, sess, scene, ts, st.item(b), 1, 0, 0)
		}
		if p95, ok := parseNum(e.f[fFrameTimeP95Ms]); ok && p95 > 0 {
			st.bump(kindPerfSession, sess, scene, ts, st.item(append(st.buf[:0], perfItemP95)), 1, p95, p95)
		}
		if rs, ok := parseNum(e.f[fRenderScale]); ok && rs > 0 {
			down := 0.0
			if rs < 1 {
				down = 1
			}
			b = binary.BigEndian.AppendUint16(append(st.buf[:0], renderScaleBins), linearBin(rs, renderScaleWidth))
			st.bump(kindRenderScale, sess, scene, ts, st.item(b), 1, rs, down)
		}
	case core.TypeResourceSample:
		if sess == "" {
			return
		}
		st.bump(kindPerfSession, sess, scene, ts, st.item(append(st.buf[:0], perfItemSamples)), 1, 0, 0)
		for i, f := range resourcePercentileFields {
			if v, ok := parseNum(e.f[f]); ok && v > 0 {
				b := binary.BigEndian.AppendUint16(append(st.buf[:0], perfItemResource, byte(i)), logBin(v))
				st.bump(kindPerfSession, sess, scene, ts, st.item(b), 1, 0, 0)
			}
		}
	case core.TypeCompileStall:
		d, _ := parseNum(e.f[fDurationMs])
		st.bump(kindCompile, sess, scene, ts, st.item(append(st.buf[:0], tokStr(e.f[fPhase])...)), 1, d, d)
	case core.TypeGraphicsDiagnostic:
		n := 1.0
		if c, ok := parseNum(e.f[fCount]); ok && c > 0 {
			n = c
		}
		b := append(append(st.buf[:0], tokStr(e.f[fSeverity])...), 0)
		b = append(append(b, tokStr(e.f[fCategory])...), 0)
		st.bump(kindDiagnostics, sess, scene, ts, st.item(append(b, tokStr(e.f[fBackend])...)), n)
	case core.TypeSessionStart:
		m := &st.members
		b := st.buf[:0]
		if m.index(e.f[fGraphics]) != nil {
			m.keys, m.vals = m.keys[:0], m.vals[:0]
		}
		for i, k := range [...]string{"api", "backend", "apiVersion", "shadingLanguage"} {
			if i > 0 {
				b = append(b, 0)
			}
			b = appendText(b, m.raw(k))
		}
		st.bump(kindTech, sess, scene, ts, st.item(b), 1)
		if sess == "" {
			return
		}
		if m.index(e.f[fDevice]) != nil {
			m.keys, m.vals = m.keys[:0], m.vals[:0]
		}
		b = st.buf[:0]
		for i, k := range [...]string{"engine", "isMobile", "renderer", "browser", "os"} {
			if i > 0 {
				b = append(b, 0)
			}
			b = appendText(b, m.raw(k))
		}
		st.row1[0] = 1
		st.add(kindDevice, sess, scene, 0, st.item(b), st.row1[:])
	}
}

// appendText appends a JSON token as the reference's text extraction
// reads it: a string's text, true or false, a number as written, nothing
// for anything else (absent, null, an object, an array). NULs are dropped:
// they separate the parts of an item.
func appendText(dst, tok []byte) []byte {
	var t []byte
	switch {
	case len(tok) == 0:
		return dst
	case tok[0] == '"':
		t = tokStr(tok)
	case string(tok) == "true" || string(tok) == "false":
		t = tok
	case tok[0] == '-' || tok[0] >= '0' && tok[0] <= '9':
		t = tok
	default:
		return dst
	}
	for _, c := range t {
		if c != 0 {
			dst = append(dst, c)
		}
	}
	return dst
}

// isResourceItem is whether a per-session perf item is of the resource
// distributions (kindResAll's), isFPSItem whether of the fps distribution
// or the frame windows (kindPerfFPS's).
func isResourceItem(it string) bool { return len(it) > 0 && it[0] >= perfItemResource }
func isFPSItem(it string) bool {
	return len(it) > 0 && (it[0] == perfItemFPS || it[0] == perfItemWindows)
}

// coarseFPSItem is an fps item of kindPerfFPS: its half-fps bin halved
// (1-fps bins, coarseFPSBinValue); other items unchanged. perf/by-scene
// walks an fps distribution per session, scene and hour, half as many
// bins this way (docs/RATIONALE.md).
func coarseFPSItem(dst []byte, it string) []byte {
	if len(it) == 3 && it[0] == perfItemFPS {
		b := uint16(it[1])<<8 | uint16(it[2])
		return binary.BigEndian.AppendUint16(append(dst, perfItemFPS), b/2)
	}
	return append(dst, it...)
}

// coarseFPSBinValue is the representative fps of a coarseFPSItem bin.
func coarseFPSBinValue(b uint16) float64 { return float64(b) + 0.5 }
