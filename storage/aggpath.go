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
	err := r.scanSessionCells(pnum, kindPath, q, func(session, _ string, hour int64, c cell) error {
		for it, row := range c {
			if len(it) != 2 {
				continue
			}
			sec := hour + int64(binary.BigEndian.Uint16([]byte(it)))*1000
			if sec+999 < q.Since || sec > q.Until {
				continue
			}
			k := key{session, sec}
			a := acc[k] // a session in two scenes within one second: both merge
			for i := range a {
				a[i] += row[i]
			}
			acc[k] = a
		}
		return nil
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
// the floor plan in cells of cs units, by session id, then time.
func (r *Reader) Paths(pnum uint32, q core.Query, cs float64) ([]core.PathPointRow, error) {
	paths, err := r.sessionPaths(pnum, &q)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(paths))
	for s := range paths {
		ids = append(ids, s)
	}
	sort.Strings(ids)
	rows := make([]core.PathPointRow, 0)
	for _, s := range ids {
		for _, pt := range paths[s] {
			if len(rows) == q.Limit {
				return rows, nil
			}
			rows = append(rows, core.PathPointRow{SessionID: s, TS: pt.ts, GX: int64(math.Floor(pt.x / cs)), GZ: int64(math.Floor(pt.z / cs))})
		}
	}
	return rows, nil
}
