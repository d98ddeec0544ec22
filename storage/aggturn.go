package storage

import (
	"encoding/binary"
	"math"
	"sort"

	"github.com/uptimizr/edge/core"
)

// kindTurns is xr/rotation's: per hour, session scope only, the angles
// between a session's consecutive camera_sample view directions. Item
// turnSummary → [turns, sum rad, max rad]; turnBin + bin → [turns], bins of
// turnBinRad for the rapid-turn threshold a query names.
const kindTurns aggKind = 'x'

const (
	turnSummary = 1
	turnBin     = 2
	turnBinRad  = 0.001
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
	if _, ok := turnAngle(dir, dir); !ok {
		return
	}
	t := &sd.turns
	if !t.last.set {
		t.first = aDir{true, dir, ts, scene}
	} else {
		st.addTurn(sess, scene, ts, t.last.dir, dir)
	}
	t.last = aDir{true, dir, ts, scene}
}

// addTurn adds the turn from direction a to b, seen at ts in scene.
func (st *foldState) addTurn(sess, scene string, ts int64, a, b [3]float64) {
	turn, ok := turnAngle(a, b)
	if !ok {
		return
	}
	st.bump(kindTurns, sess, scene, ts, st.item(append(st.buf[:0], turnSummary)), 1, turn, turn)
	bin := uint16(min(math.MaxUint16, math.Floor(turn/turnBinRad)))
	st.bump(kindTurns, sess, scene, ts, st.item(binary.BigEndian.AppendUint16(append(st.buf[:0], turnBin), bin)), 1, 0, 0)
}

// XRRotation is GET /api/v1/xr/rotation: per session, the angles between
// consecutive camera_sample view directions (in the order they were
// folded) within the query's range and scope, most total turn first. A
// turn counts as rapid at rapid radians or more (to within turnBinRad).
func (r *Reader) XRRotation(pnum uint32, q core.Query, rapid float64) ([]core.XRRotationRow, error) {
	type acc struct {
		n, sum, max float64
		rapid       int64
	}
	bySession := map[string]*acc{}
	rapidBin := uint16(min(math.MaxUint16, math.Ceil(rapid/turnBinRad-1e-9)))
	err := r.scanSessionCells(pnum, kindTurns, &q, func(session, _ string, _ int64, c cell) error {
		a := bySession[session]
		if a == nil {
			a = &acc{}
			bySession[session] = a
		}
		for it, row := range c {
			switch {
			case it == string([]byte{turnSummary}):
				a.n += row[0]
				a.sum += row[1]
				a.max = math.Max(a.max, row[2])
			case len(it) == 3 && it[0] == turnBin && binary.BigEndian.Uint16([]byte(it[1:])) >= rapidBin:
				a.rapid += int64(row[0])
			}
		}
		return nil
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
