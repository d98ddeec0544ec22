package storage

import (
	"encoding/binary"
	"math"
	"sort"
	"strings"

	"github.com/uptimizr/edge/core"
)

// kindTurns is xr/rotation's: per hour, session scope only, the angles
// between a session's consecutive camera_sample view directions, in bins
// of turnBinRad (for the rapid-turn threshold a query names). Item turnBin
// + bin → [turns, sum rad, max rad].
const kindTurns aggKind = 'x'

const (
	turnBin    = 2
	turnBinRad = 0.01
)

// aDir is one view direction and where it was seen.
type aDir struct {
	set   bool
	dir   [3]float64
	ts    int64
	scene string
}

// turnState is a session's view directions within one fold: the first (its
// turn from the previous fold's last is added at commit) and the last.
type turnState struct{ first, last aDir }

// turnAngle is the angle between two directions in radians, [0, π]; false
// for a zero or non-finite vector.
func turnAngle(a, b [3]float64) (float64, bool) {
	na := math.Sqrt(a[0]*a[0] + a[1]*a[1] + a[2]*a[2])
	nb := math.Sqrt(b[0]*b[0] + b[1]*b[1] + b[2]*b[2])
	if na == 0 || nb == 0 || math.IsNaN(na+nb) || math.IsInf(na+nb, 0) {
		return 0, false
	}
	c := (a[0]*b[0] + a[1]*b[1] + a[2]*b[2]) / (na * nb)
	return math.Acos(max(-1, min(1, c))), true
}

// foldTurn folds a camera_sample's direction: the turn from the session's
// previous direction in this fold, or, for its first, remembers it.
func (st *foldState) foldTurn(sd *sessionDelta, sess, scene string, ts int64, dir [3]float64) {
	if sess == "" {
		return
	}
	if n := dir[0]*dir[0] + dir[1]*dir[1] + dir[2]*dir[2]; !(n > 0) || math.IsInf(n, 0) {
		return // no direction
	}
	if prev, ok := sd.turns.next(dir, ts, scene); ok {
		st.addTurn(sess, scene, ts, prev, dir)
	}
}

// next records v as the latest, seen at ts in scene, and returns the one
// before it in this fold (false for the fold's first, which is kept).
func (t *turnState) next(v [3]float64, ts int64, scene string) ([3]float64, bool) {
	prev, ok := t.last.dir, t.last.set
	if !ok {
		t.first = aDir{true, v, ts, scene}
	}
	t.last = aDir{true, v, ts, scene}
	return prev, ok
}

// addTurn adds the turn from direction a to b, seen at ts in scene.
func (st *foldState) addTurn(sess, scene string, ts int64, a, b [3]float64) {
	turn, ok := turnAngle(a, b)
	if !ok {
		return
	}
	bin := uint16(min(math.MaxUint16, math.Floor(turn/turnBinRad)))
	it := st.item(binary.BigEndian.AppendUint16(append(st.buf[:0], turnBin), bin))
	st.bump(kindTurns, sess, scene, ts, it, 1, turn, turn)
}

// XRRotation is GET /api/v1/xr/rotation: per session, the angles between
// consecutive camera_sample view directions (in the order they were
// folded) within the query's range and scope, most total turn first. A
// turn counts as rapid at rapid radians or more: exactly when rapid is a
// multiple of turnBinRad, else the turns of the bin it falls in count
// when the largest of them reaches it.
func (r *Reader) XRRotation(pnum uint32, q core.Query, rapid float64) ([]core.XRRotationRow, error) {
	type acc struct {
		n, sum, max float64
		rapid       int64
	}
	bySession := map[string]*acc{}
	var a *acc
	var aOf string
	err := r.scanSessionItems(pnum, everyScene(kindTurns, &q), &q, func(session, _ string, _ int64, it []byte, row []float64) {
		if a == nil || aOf != session {
			if a = bySession[session]; a == nil {
				a = &acc{}
				bySession[session] = a
			}
			aOf = session
		}
		{
			if len(it) != 3 || it[0] != turnBin {
				return
			}
			a.n += row[0]
			a.sum += row[1]
			a.max = math.Max(a.max, row[2])
			lo := float64(binary.BigEndian.Uint16(it[1:])) * turnBinRad
			if lo >= rapid-1e-12 || lo+turnBinRad > rapid && row[2] >= rapid {
				a.rapid += int64(row[0])
			}
		}
	})
	if err != nil {
		return nil, err
	}
	rows := make([]core.XRRotationRow, 0, len(bySession))
	for s, a := range bySession {
		if a.n == 0 {
			continue
		}
		rows = append(rows, core.XRRotationRow{SessionID: s, Samples: int64(a.n), AvgTurnRad: a.sum / a.n, MaxTurnRad: a.max, TotalTurnRad: a.sum, RapidSegments: a.rapid})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].TotalTurnRad != rows[j].TotalTurnRad {
			return rows[i].TotalTurnRad > rows[j].TotalTurnRad
		}
		return rows[i].SessionID < rows[j].SessionID
	})
	return limitRows(rows, q.Limit), nil
}

// kindSteps is navigation's: per hour, session scope only, the distances
// between a session's consecutive camera_sample positions, in logarithmic
// bins (for the movement threshold a query names). Item turnBin + bin
// (stepBin) → [steps, sum, max].
const kindSteps aggKind = 'S'

// Step bins are a quarter of an octave wide, with a bin boundary at the
// default movement threshold, so that it is exact.
const (
	stepBinsPerOct = 4
	stepAnchor     = 0.05 // the default moveThreshold
	stepBinOffset  = 200  // bin of stepAnchor, above the bins of no movement (0) and of tiny steps
)

// stepBin is a distance's bin: 0 for no movement, else a quarter-octave
// bin counted from stepAnchor (at stepBinOffset). The quarters are of the
// octave's span (2^e·(1+k/4)), read from the float's exponent and top
// mantissa bits: no logarithm per step.
func stepBin(d float64) uint16 {
	if !(d > 0) || math.IsInf(d, 0) {
		return 0
	}
	frac, exp := math.Frexp(d / stepAnchor) // d/anchor = frac·2^exp, frac in [0.5, 1)
	q := int(math.Floor((frac*2 - 1) * stepBinsPerOct))
	return uint16(max(1, min(math.MaxUint16, stepBinOffset+(exp-1)*stepBinsPerOct+q)))
}

// stepBinLow is the smallest distance of bin b.
func stepBinLow(b uint16) float64 {
	if b <= 1 {
		return 0
	}
	n := int(b) - stepBinOffset
	e, q := n/stepBinsPerOct, n%stepBinsPerOct
	if q < 0 {
		e, q = e-1, q+stepBinsPerOct
	}
	return stepAnchor * math.Ldexp(1+float64(q)/stepBinsPerOct, e)
}

// foldStep folds a camera_sample's position: the step from the session's
// previous position in this fold, or, for its first, remembers it.
func (st *foldState) foldStep(sd *sessionDelta, sess, scene string, ts int64, pos [3]float64) {
	if sess == "" {
		return
	}
	if prev, ok := sd.steps.next(pos, ts, scene); ok {
		st.addStep(sess, scene, ts, prev, pos)
	}
}

// addStep adds the step from position a to b, seen at ts in scene.
func (st *foldState) addStep(sess, scene string, ts int64, a, b [3]float64) {
	dx, dy, dz := b[0]-a[0], b[1]-a[1], b[2]-a[2]
	d := math.Sqrt(dx*dx + dy*dy + dz*dz)
	if math.IsNaN(d) || math.IsInf(d, 0) {
		return
	}
	it := st.item(binary.BigEndian.AppendUint16(append(st.buf[:0], turnBin), stepBin(d)))
	st.bump(kindSteps, sess, scene, ts, it, 1, d, d)
}

// activeSteps tells the step bins of at least a threshold move: a bin
// wholly at or above it is active; the one it falls in is, when its
// longest step reaches it. The bins' bounds are found once per read, not
// per item.
type activeSteps struct {
	move    float64
	from    int  // the first bin wholly at or above move (65536: none)
	partial bool // bin from-1 holds move strictly inside
}

func newActiveSteps(move float64) activeSteps {
	// stepBinLow does not decrease with the bin: the first bin whose low
	// end reaches the threshold, by bisection.
	t := move * (1 - 1e-9)
	from := sort.Search(1<<16, func(b int) bool { return stepBinLow(uint16(b)) >= t })
	// The bin below's upper end is from's low end (bin 65535's, past the
	// last, is taken as 0: never above move).
	partial := from > 0 && from < 1<<16 && stepBinLow(uint16(from)) > move
	return activeSteps{move: move, from: from, partial: partial}
}

// of reports whether bin b, whose longest step is longest, is active.
func (a activeSteps) of(b uint16, longest float64) bool {
	return a.move == 0 || int(b) >= a.from || a.partial && int(b) == a.from-1 && longest >= a.move
}

// Navigation is GET /api/v1/navigation: per session, the distances between
// consecutive camera_sample positions (in the order they were folded) in
// the query's range and scope, and those of at least move units, most
// distance first. Steps are told apart exactly at the default threshold
// (0.05) and at 0.05·2^(k/4); at another threshold the steps of the
// quarter-octave bin it falls in count as active when the longest of them
// reaches it.
func (r *Reader) Navigation(pnum uint32, q core.Query, move float64) ([]core.NavigationRow, error) {
	bySession := map[string]*core.NavigationRow{}
	var a *core.NavigationRow
	active := newActiveSteps(move)
	err := r.scanSessionItems(pnum, everyScene(kindSteps, &q), &q, func(session, _ string, _ int64, it []byte, row []float64) {
		if a == nil || a.SessionID != session {
			if a = bySession[session]; a == nil {
				a = &core.NavigationRow{SessionID: session}
				bySession[session] = a
			}
		}
		{
			if len(it) != 3 || it[0] != turnBin {
				return
			}
			a.Segments += int64(row[0])
			a.TotalDistance += row[1]
			if active.of(binary.BigEndian.Uint16(it[1:]), row[2]) {
				a.ActiveSegments += int64(row[0])
				a.ActiveDistance += row[1]
			}
		}
	})
	if err != nil {
		return nil, err
	}
	rows := make([]core.NavigationRow, 0, len(bySession))
	for _, a := range bySession {
		if a.Segments > 0 {
			rows = append(rows, *a)
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].TotalDistance != rows[j].TotalDistance {
			return rows[i].TotalDistance > rows[j].TotalDistance
		}
		return rows[i].SessionID < rows[j].SessionID
	})
	return limitRows(rows, q.Limit), nil
}

// Capabilities is GET /api/v1/capabilities: capability_change events per
// (kind, from, to), "" where the event named none, most first.
func (r *Reader) Capabilities(pnum uint32, q core.Query) ([]core.CapabilityChangeRow, error) {
	c, err := r.merged(pnum, kindCapabilities, &q)
	if err != nil {
		return nil, err
	}
	rows := make([]core.CapabilityChangeRow, 0, len(c))
	for it, v := range c {
		p := strings.SplitN(it, "\x00", 3)
		if len(p) != 3 {
			continue
		}
		rows = append(rows, core.CapabilityChangeRow{Kind: p[0], From: p[1], To: p[2], Changes: int64(v[0])})
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Changes != b.Changes {
			return a.Changes > b.Changes
		}
		return a.Kind+"\x00"+a.From+"\x00"+a.To < b.Kind+"\x00"+b.From+"\x00"+b.To
	})
	return limitRows(rows, q.Limit), nil
}
