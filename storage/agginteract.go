package storage

import (
	"encoding/binary"
	"math"
	"math/bits"

	"github.com/uptimizr/edge/core"
)

// The interaction aggregates: what the input-source, mesh-interaction,
// click, shortcut and navigation routes read (docs/API.md, "Interaction").
// Every item starts with the event's input source (sourceByte), so that a
// query filtered by source reads the same cells as one that is not.
const (
	kindInputs     aggKind = 'i' // per hour: type, source → [events]
	kindInputsHLL  aggKind = 'j' // per hour, scene scope only: type, source, register → [rank] (distinct sessions)
	kindMeshKinds  aggKind = 'k' // per hour: source, kind, 0, mesh → [count]
	kindMeshActive aggKind = 'e' // per minute: source, mesh → [count] (mesh_interaction, pointer_click on a mesh)
	kindClicks     aggKind = 'l' // per hour: source → [clicks, dead clicks]
	kindRage       aggKind = 'q' // per hour, session scope only: source, second of the hour, mesh → [clicks]
	kindActions    aggKind = 'n' // per hour: source, action → [count]
	kindGestures   aggKind = 'o' // per hour: source, kind → [count, total ms, max ms]

	kindMeshActiveHour aggKind = 'E'
)

// SourceNames are the input sources, by their byte in the items. An event
// that names none is a mouse's, as the reference collector counts it.
var SourceNames = [...]string{"mouse", "touch", "stylus", "pen", "keyboard", "gamepad", "xr-controller", "hand", "gaze", "transient", "other"}

const numSources = len(SourceNames)

// xrSources are the sources that mean a headset's input.
var xrSources = [numSources]bool{6: true, 7: true, 8: true, 9: true}

// SourceByte returns the byte of a source name, and false for a name that
// is not one.
func SourceByte(name string) (byte, bool) {
	for i, n := range SourceNames {
		if n == name {
			return byte(i), true
		}
	}
	return 0, false
}

// sourceOf is the source byte of an event's source token (absent: mouse).
func sourceOf(tok []byte) byte {
	s := tokStr(tok)
	if len(s) == 0 {
		return 0
	}
	for i, n := range SourceNames {
		if n == string(s) {
			return byte(i)
		}
	}
	return byte(numSources - 1) // "other"; validation lets no other name through
}

// inputTypes are the event types that carry an input source.
var inputTypes = [...]core.EventType{
	core.TypePointerMove, core.TypePointerClick, core.TypePointerDown, core.TypePointerUp,
	core.TypeMeshInteraction, core.TypeHoverDwell, core.TypeCameraGesture, core.TypeInputAction,
}

// inputIndex[t] is 1 + t's position in inputTypes, 0 for other types.
var inputIndex = func() (x [core.NumEventTypes]uint8) {
	for i, t := range inputTypes {
		x[t] = uint8(i + 1)
	}
	return x
}()

// hllBits is the precision of the distinct-session sketches: 2^14
// registers, a relative standard error of 1.04/√16384 ≈ 0.8%; below a few
// thousand sessions linear counting answers, off by a session or two at
// most (TestHLLError). A cell keeps only the registers set, so a sketch
// costs what its sessions do until there are thousands.
const hllBits = 14

const hllRegisters = 1 << hllBits

// sessionHash is a fixed 64-bit hash of a session id (FNV-1a, then the
// SplitMix64 finaliser to spread its bits): fixed, so that sketches folded
// on any node, before or after a restart, merge.
func sessionHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}

// hllRegister is a hash's register and rank.
func hllRegister(h uint64) (uint16, float64) {
	return uint16(h >> (64 - hllBits)), float64(bits.LeadingZeros64(h<<hllBits|1<<(hllBits-1)) + 1)
}

// hllSketch is a sketch's registers (rank 0: not set).
type hllSketch [hllRegisters]uint8

func (s *hllSketch) set(reg uint16, rank float64) {
	if r := uint8(rank); r > s[reg%hllRegisters] {
		s[reg%hllRegisters] = r
	}
}

func (s *hllSketch) union(o *hllSketch) {
	for i, r := range o {
		s[i] = max(s[i], r)
	}
}

// estimate is the sketch's distinct count (HyperLogLog, with linear
// counting for small counts).
func (s *hllSketch) estimate() int64 {
	const m = float64(hllRegisters)
	sum, zeros := 0.0, 0
	for _, r := range s {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	if zeros == hllRegisters {
		return 0
	}
	e := 0.7213 / (1 + 1.079/m) * m * m / sum
	if e <= 2.5*m && zeros > 0 {
		e = m * math.Log(m/float64(zeros))
	}
	return int64(math.Round(e))
}

// inputSeen remembers, for a session within one fold, which (type,
// source) pairs it has already set in the distinct-session sketch of one
// scene and hour: a session sets each register once, not per event.
type inputSeen struct {
	hash  uint64
	hour  int64
	scene string
	seen  [2]uint64 // bit (inputIndex-1)*numSources + source
}

// foldInput folds the interaction aggregates of an event of an input type.
func (st *foldState) foldInput(e *logEvent, sess, scene string, ts int64, sd *sessionDelta) {
	src := sourceOf(e.f[fSource])
	b := append(st.buf[:0], byte(e.Type), src)
	st.bump(kindInputs, sess, scene, ts, st.item(b), 1)
	if xrSources[src] {
		sd.xr++
	}

	hour := ts - ts%hourMs
	seen := &sd.inputs
	if seen.hash == 0 {
		seen.hash = sessionHash(sess) | 1
	}
	if seen.hour != hour || seen.scene != scene {
		seen.hour, seen.scene, seen.seen = hour, scene, [2]uint64{}
	}
	bit := uint(inputIndex[e.Type]-1)*uint(numSources) + uint(src)
	if seen.seen[bit/64]&(1<<(bit%64)) == 0 {
		seen.seen[bit/64] |= 1 << (bit % 64)
		reg, rank := hllRegister(seen.hash)
		b = binary.BigEndian.AppendUint16(append(st.buf[:0], byte(e.Type), src), reg)
		st.row1[0] = rank
		st.add(kindInputsHLL, "", scene, hour, st.item(b), st.row1[:])
	}

	switch e.Type {
	case core.TypeMeshInteraction:
		mesh := tokStr(e.f[fMesh])
		if len(mesh) == 0 {
			return
		}
		b = append(append(append(st.buf[:0], src), tokStr(e.f[fKind])...), 0)
		st.bump(kindMeshKinds, sess, scene, ts, st.item(append(b, mesh...)), 1)
		st.bump(kindMeshActive, sess, scene, ts, st.item(append(append(st.buf[:0], src), mesh...)), 1)
	case core.TypePointerClick:
		mesh := tokStr(e.f[fHitMesh])
		dead := 0.0
		if len(mesh) == 0 {
			dead = 1
		}
		st.bump(kindClicks, sess, scene, ts, st.item(append(st.buf[:0], src)), 1, dead)
		st.foldClick(e, sd, src, mesh, sess, scene, ts)
		if dead == 0 {
			st.bump(kindMeshActive, sess, scene, ts, st.item(append(append(st.buf[:0], src), mesh...)), 1)
			b = binary.BigEndian.AppendUint16(append(st.buf[:0], src), uint16(ts%hourMs/1000))
			st.bump(kindRage, sess, scene, ts, st.item(append(b, mesh...)), 1)
		}
	case core.TypeInputAction:
		if a := tokStr(e.f[fAction]); len(a) > 0 {
			st.bump(kindActions, sess, scene, ts, st.item(append(append(st.buf[:0], src), a...)), 1)
		}
	case core.TypeCameraGesture:
		if k := tokStr(e.f[fKind]); len(k) > 0 {
			d, _ := parseNum(e.f[fDurationMs])
			st.bump(kindGestures, sess, scene, ts, st.item(append(append(st.buf[:0], src), k...)), 1, d, d)
		}
	}
}
