package storage

import (
	"encoding/binary"
	"math"
	"sort"

	"github.com/uptimizr/edge/core"
)

// kindPath is the trajectory and paths routes': per hour, session scope
// only, a session's camera_sample positions, one per second: the first a
// fold sees in that second (two folds that both see the same second give
// their mean). Item: the second of the hour (2 bytes) → [samples, Σx, Σy,
// Σz, Σ ms into the second].
const kindPath aggKind = 'T'

// foldPath folds a camera_sample position into its session's path, when
// it is the fold's first of its second.
func (st *foldState) foldPath(sd *sessionDelta, sess, scene string, ts int64, pos [3]float64) {
	if sess == "" || sd.pathSec == ts/1000+1 {
		return
	}
	sd.pathSec = ts/1000 + 1
	in := ts % hourMs
	b := binary.BigEndian.AppendUint16(st.buf[:0], uint16(in/1000))
	st.bump(kindPath, sess, scene, ts, st.item(b), 1, pos[0], pos[1], pos[2], float64(in%1000))
}

// pathPoint is one second of a session's path.
type pathPoint struct {
	ts      int64
	x, y, z float64
}

// sessionPaths reads the paths of the query's scope and range (exact to
// the second), by session.
func (r *Reader) sessionPaths(pnum uint32, q *core.Query) (map[string][]pathPoint, error) {
	type key struct {
		session string
		sec     int64
	}
	acc := map[key][5]float64{}
	err := r.scanSessionItems(pnum, kindPath, q, func(session, _ string, hour int64, it []byte, row []float64) {
		if len(it) != 2 {
			return
		}
		sec := hour + int64(binary.BigEndian.Uint16(it))*1000
		if sec+999 < q.Since || sec > q.Until {
			return
		}
		k := key{session, sec}
		a := acc[k] // a session in two scenes within one second: both merge
		for i := range a {
			a[i] += row[i]
		}
		acc[k] = a
	})
	if err != nil {
		return nil, err
	}
	out := map[string][]pathPoint{}
	for k, a := range acc {
		n := a[0]
		if n == 0 {
			continue
		}
		out[k.session] = append(out[k.session], pathPoint{ts: k.sec + int64(math.Round(a[4]/n)), x: a[1] / n, y: a[2] / n, z: a[3] / n})
	}
	for _, p := range out {
		sort.Slice(p, func(i, j int) bool { return p[i].ts < p[j].ts })
	}
	return out, nil
}

// Trajectory is GET /api/v1/sessions/:id/trajectory: the session's camera
// positions, one per second (kindPath), oldest first.
func (r *Reader) Trajectory(pnum uint32, q core.Query, session string) ([]core.TrajectoryRow, error) {
	q.Session = session
	paths, err := r.sessionPaths(pnum, &q)
	if err != nil {
		return nil, err
	}
	p := paths[session]
	rows := make([]core.TrajectoryRow, 0, len(p))
	for _, pt := range p {
		rows = append(rows, core.TrajectoryRow{TS: pt.ts, X: pt.x, Y: pt.y, Z: pt.z})
	}
	return limitRows(rows, q.Limit), nil
}

// Paths is GET /api/v1/paths: every session's path (as Trajectory's) on
// the floor plan in cells of cs units, session by session in the order of
// the store's keys (shorter ids first, then by id), each oldest first. The
// walk stops at the limit: it reads what it returns.
func (r *Reader) Paths(pnum uint32, q core.Query, cs float64) ([]core.PathPointRow, error) {
	rows := make([]core.PathPointRow, 0)
	var cur string
	type sec struct {
		ts int64
		a  [5]float64
	}
	var pts []sec
	full := false
	flush := func() {
		sort.Slice(pts, func(i, j int) bool { return pts[i].ts < pts[j].ts })
		for i := 0; i < len(pts); i++ {
			// a second seen in two scenes (two cells) merges
			a := pts[i].a
			for i+1 < len(pts) && pts[i+1].ts == pts[i].ts {
				i++
				for k := range a {
					a[k] += pts[i].a[k]
				}
			}
			if len(rows) == q.Limit {
				full = true
				return
			}
			n := a[0]
			rows = append(rows, core.PathPointRow{SessionID: cur, TS: pts[i].ts + int64(math.Round(a[4]/n)),
				GX: int64(math.Floor(a[1] / n / cs)), GZ: int64(math.Floor(a[3] / n / cs))})
		}
		pts = pts[:0]
	}
	err := r.scanSessionItems(pnum, kindPath, &q, func(session, _ string, hour int64, it []byte, row []float64) {
		if full || len(it) != 2 || row[0] == 0 {
			return
		}
		if session != cur {
			flush()
			cur = session
		}
		t := hour + int64(binary.BigEndian.Uint16(it))*1000
		if t+999 < q.Since || t > q.Until {
			return
		}
		pts = append(pts, sec{t, [5]float64(row)})
	}, func() bool { return full })
	if err != nil {
		return nil, err
	}
	if !full {
		flush()
	}
	return rows, nil
}
