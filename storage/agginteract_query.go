package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/dgraph-io/badger/v4"

	"github.com/uptimizr/edge/core"
)

// ErrBadSource is returned for a source filter that names no input source.
var ErrBadSource = fmt.Errorf("source must be one of %v", SourceNames)

// sourceFilter returns the source byte a query keeps; all is true when it
// keeps every source.
func sourceFilter(q *core.Query) (b byte, all bool, err error) {
	if q.Source == "" {
		return 0, true, nil
	}
	b, ok := SourceByte(q.Source)
	if !ok {
		return 0, false, ErrBadSource
	}
	return b, false, nil
}

// mergedBySource is the merged cell of kind over the query's range and
// scope, with the items of other sources than the query's left out.
func (r *Reader) mergedBySource(pnum uint32, kind aggKind, q *core.Query) (cell, error) {
	src, all, err := sourceFilter(q)
	if err != nil {
		return nil, err
	}
	c, err := r.merged(pnum, kind, q)
	if err != nil || all {
		return c, err
	}
	for it := range c {
		if len(it) == 0 || it[0] != src {
			delete(c, it)
		}
	}
	return c, nil
}

// typeName is the name of an event type's byte.
func typeName(b byte) string {
	if b >= byte(core.NumEventTypes) {
		return ""
	}
	return core.EventType(b).String()
}

// inputSketches is the distinct-session sketch of each (type, source) of
// the query's scope and range.
func (r *Reader) inputSketches(pnum uint32, q *core.Query) (map[[2]byte]*hllSketch, error) {
	out := map[[2]byte]*hllSketch{}
	if q.Session != "" {
		return out, nil // sketches are kept per scene only
	}
	ops := kindOps[kindInputsHLL]
	row := make([]float64, len(ops))
	var s *hllSketch
	var sk [2]byte
	err := r.scanCellBytes(pnum, kindInputsHLL, q, false, func(_ []byte, _ int64, v []byte) error {
		return walkCell(ops, v, row, func(it []byte, row []float64) {
			if len(it) != 4 {
				return
			}
			// A cell's registers come sorted by (type, source): one map
			// lookup per run of them.
			if k := [2]byte{it[0], it[1]}; s == nil || k != sk {
				if s = out[k]; s == nil {
					s = &hllSketch{}
					out[k] = s
				}
				sk = k
			}
			s.set(binary.BigEndian.Uint16(it[2:]), row[0])
		})
	})
	return out, err
}

// InteractionSources is GET /api/v1/interactions/sources: events and
// distinct sessions per (event type, input source), most events first.
func (r *Reader) InteractionSources(pnum uint32, q core.Query) ([]core.InteractionSourceRow, error) {
	src, all, err := sourceFilter(&q)
	if err != nil {
		return nil, err
	}
	c, err := r.merged(pnum, kindInputs, &q)
	if err != nil {
		return nil, err
	}
	sk, err := r.inputSketches(pnum, &q)
	if err != nil {
		return nil, err
	}
	rows := make([]core.InteractionSourceRow, 0, len(c))
	for it, row := range c {
		if len(it) != 2 || int(it[1]) >= numSources || (!all && it[1] != src) {
			continue
		}
		n := int64(row[0])
		sessions := int64(1) // a session's own query
		if q.Session == "" {
			sessions = 0
			if s := sk[[2]byte{it[0], it[1]}]; s != nil {
				sessions = min(n, max(1, s.estimate()))
			}
		}
		rows = append(rows, core.InteractionSourceRow{EventType: typeName(it[0]), Source: SourceNames[it[1]], Count: n, Sessions: sessions})
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.EventType != b.EventType {
			return a.EventType < b.EventType
		}
		return a.Source < b.Source
	})
	return limitRows(rows, q.Limit), nil
}

// XRSources is GET /api/v1/xr/sources: events and distinct sessions per
// headset input source (xr-controller, hand, gaze, transient).
func (r *Reader) XRSources(pnum uint32, q core.Query) ([]core.XRSourceRow, error) {
	c, err := r.mergedBySource(pnum, kindInputs, &q)
	if err != nil {
		return nil, err
	}
	sk, err := r.inputSketches(pnum, &q)
	if err != nil {
		return nil, err
	}
	var counts [numSources]int64
	var union [numSources]*hllSketch
	for it, row := range c {
		if len(it) != 2 || int(it[1]) >= numSources || !xrSources[it[1]] {
			continue
		}
		src := it[1]
		counts[src] += int64(row[0])
		if s := sk[[2]byte{it[0], src}]; s != nil {
			if union[src] == nil {
				union[src] = &hllSketch{}
			}
			union[src].union(s)
		}
	}
	var rows []core.XRSourceRow
	for src, n := range counts {
		if n == 0 {
			continue
		}
		sessions := int64(1)
		if q.Session == "" {
			sessions = 0
			if union[src] != nil {
				sessions = min(n, max(1, union[src].estimate()))
			}
		}
		rows = append(rows, core.XRSourceRow{Source: SourceNames[src], Interactions: n, Sessions: sessions})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Interactions != rows[j].Interactions {
			return rows[i].Interactions > rows[j].Interactions
		}
		return rows[i].Source < rows[j].Source
	})
	if rows == nil {
		rows = []core.XRSourceRow{}
	}
	return limitRows(rows, q.Limit), nil
}

// MeshKinds is GET /api/v1/meshes/kinds: mesh_interaction counts per
// (mesh, kind), most first.
func (r *Reader) MeshKinds(pnum uint32, q core.Query) ([]core.MeshKindRow, error) {
	c, err := r.mergedBySource(pnum, kindMeshKinds, &q)
	if err != nil {
		return nil, err
	}
	acc := map[[2]string]int64{}
	for it, row := range c {
		if len(it) < 1 {
			continue
		}
		kind, mesh, ok := bytes.Cut([]byte(it[1:]), []byte{0})
		if !ok {
			continue
		}
		acc[[2]string{string(mesh), string(kind)}] += int64(row[0])
	}
	rows := make([]core.MeshKindRow, 0, len(acc))
	for k, n := range acc {
		rows = append(rows, core.MeshKindRow{Mesh: k[0], Kind: k[1], Count: n})
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.Mesh != b.Mesh {
			return a.Mesh < b.Mesh
		}
		return a.Kind < b.Kind
	})
	return limitRows(rows, q.Limit), nil
}

// MeshSources is GET /api/v1/meshes/sources: active interactions
// (mesh_interaction, and pointer_click on a mesh) per (mesh, source).
func (r *Reader) MeshSources(pnum uint32, q core.Query) ([]core.MeshSourceRow, error) {
	c, err := r.mergedBySource(pnum, kindMeshActive, &q)
	if err != nil {
		return nil, err
	}
	rows := make([]core.MeshSourceRow, 0, len(c))
	for _, n := range namedBySource(c) {
		rows = append(rows, core.MeshSourceRow{Mesh: n.name, Source: n.source, Count: n.count})
	}
	return limitRows(rows, q.Limit), nil
}

// namedCount is a count of a (name, source).
type namedCount struct {
	name, source string
	count        int64
}

// namedBySource reads a cell of source + name items as counts, most
// first, then by name and source.
func namedBySource(c cell) []namedCount {
	out := make([]namedCount, 0, len(c))
	for it, row := range c {
		if len(it) < 2 || int(it[0]) >= numSources {
			continue
		}
		out = append(out, namedCount{it[1:], SourceNames[it[0]], int64(row[0])})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.count != b.count {
			return a.count > b.count
		}
		if a.name != b.name {
			return a.name < b.name
		}
		return a.source < b.source
	})
	return out
}

// MeshTrend is GET /api/v1/meshes/trend: active interactions per mesh and
// interval (a whole number of minutes), oldest first.
func (r *Reader) MeshTrend(pnum uint32, q core.Query, intervalMs int64) ([]core.MeshTrendRow, error) {
	src, all, err := sourceFilter(&q)
	if err != nil {
		return nil, err
	}
	type key struct {
		mesh   string
		bucket int64
	}
	acc := map[key]int64{}
	rollup := intervalMs%hourMs == 0
	err = r.scanCells(pnum, kindMeshActive, &q, rollup, func(_ []byte, b int64, c cell) error {
		b -= b % intervalMs
		for it, row := range c {
			if len(it) < 2 || (!all && it[0] != src) {
				continue
			}
			acc[key{it[1:], b}] += int64(row[0])
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rows := make([]core.MeshTrendRow, 0, len(acc))
	for k, n := range acc {
		rows = append(rows, core.MeshTrendRow{Mesh: k.mesh, Bucket: k.bucket, Count: n})
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Bucket != b.Bucket {
			return a.Bucket < b.Bucket
		}
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Mesh < b.Mesh
	})
	return limitRows(rows, q.Limit), nil
}

// DeadClicks is GET /api/v1/clicks/dead: pointer clicks, and those that hit
// no mesh.
func (r *Reader) DeadClicks(pnum uint32, q core.Query) (core.DeadClickRow, error) {
	c, err := r.mergedBySource(pnum, kindClicks, &q)
	if err != nil {
		return core.DeadClickRow{}, err
	}
	var row core.DeadClickRow
	for _, v := range c {
		row.TotalClicks += int64(v[0])
		row.DeadClicks += int64(v[1])
	}
	return row, nil
}

// RageClicks is GET /api/v1/clicks/rage: a session's clicks on one mesh
// within one window of intervalSec seconds (windows aligned to the epoch),
// where there were at least minRepeats, most clicks first. Clicks are kept
// to the second, so the range and the windows are exact to the second.
func (r *Reader) RageClicks(pnum uint32, q core.Query, intervalSec, minRepeats int) ([]core.RageClickRow, error) {
	src, all, err := sourceFilter(&q)
	if err != nil {
		return nil, err
	}
	if intervalSec < 1 || minRepeats < 1 {
		return nil, fmt.Errorf("storage: rage clicks over %d s, %d repeats", intervalSec, minRepeats)
	}
	iv := int64(intervalSec) * 1000
	// A session's cells are adjacent in key order: its windows are counted
	// in a small map, and only those with enough clicks kept.
	var rows []core.RageClickRow
	type win struct {
		mesh   string
		bucket int64
	}
	acc := map[win]int64{}
	cur := ""
	flush := func() {
		for k, n := range acc {
			if n >= int64(minRepeats) {
				rows = append(rows, core.RageClickRow{SessionID: cur, Mesh: k.mesh, Bucket: k.bucket, Clicks: n})
			}
		}
		clear(acc)
	}
	err = r.scanSessionItems(pnum, kindRage, &q, func(session, _ string, hour int64, it []byte, row []float64) {
		if session != cur {
			flush()
			cur = session
		}
		if len(it) < 4 || (!all && it[0] != src) {
			return
		}
		ts := hour + int64(binary.BigEndian.Uint16(it[1:3]))*1000
		if ts < q.Since || ts > q.Until {
			return
		}
		acc[win{string(it[3:]), ts - ts%iv}] += int64(row[0])
	})
	if err != nil {
		return nil, err
	}
	flush()
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Clicks != b.Clicks {
			return a.Clicks > b.Clicks
		}
		if a.Bucket != b.Bucket {
			return a.Bucket < b.Bucket
		}
		if a.SessionID != b.SessionID {
			return a.SessionID < b.SessionID
		}
		return a.Mesh < b.Mesh
	})
	if rows == nil {
		rows = []core.RageClickRow{}
	}
	return limitRows(rows, q.Limit), nil
}

// InputActions is GET /api/v1/input-actions/top: input_action events per
// (action, source), most first.
func (r *Reader) InputActions(pnum uint32, q core.Query) ([]core.InputActionRow, error) {
	c, err := r.mergedBySource(pnum, kindActions, &q)
	if err != nil {
		return nil, err
	}
	rows := make([]core.InputActionRow, 0, len(c))
	for _, n := range namedBySource(c) {
		rows = append(rows, core.InputActionRow{Action: n.name, Source: n.source, Count: n.count})
	}
	return limitRows(rows, q.Limit), nil
}

// CameraGestures is GET /api/v1/camera-gestures: camera_gesture events per
// kind, with their durations, most gestures first.
func (r *Reader) CameraGestures(pnum uint32, q core.Query) ([]core.CameraGestureRow, error) {
	c, err := r.mergedBySource(pnum, kindGestures, &q)
	if err != nil {
		return nil, err
	}
	acc := map[string]*core.CameraGestureRow{}
	for it, row := range c {
		if len(it) < 2 {
			continue
		}
		a := acc[it[1:]]
		if a == nil {
			a = &core.CameraGestureRow{Kind: it[1:]}
			acc[it[1:]] = a
		}
		a.Gestures += int64(row[0])
		a.TotalMs += row[1]
		a.MaxMs = max(a.MaxMs, row[2])
	}
	rows := make([]core.CameraGestureRow, 0, len(acc))
	for _, a := range acc {
		if a.Gestures > 0 {
			a.AvgMs = a.TotalMs / float64(a.Gestures)
		}
		rows = append(rows, *a)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Gestures != rows[j].Gestures {
			return rows[i].Gestures > rows[j].Gestures
		}
		return rows[i].Kind < rows[j].Kind
	})
	return limitRows(rows, q.Limit), nil
}

// XRAbandonment is GET /api/v1/xr/abandonment: the sessions that ever had
// input from a headset source (whenever and in whichever scene), with
// their events and headset interactions in the query's range and scope,
// latest start first. started_at and ended_at are the session's first and
// last event, clipped to the range.
func (r *Reader) XRAbandonment(pnum uint32, q core.Query) ([]core.XRAbandonmentRow, error) {
	lo := max(0, q.Since-hourMs+1)
	// A session's headset interactions are read when it comes up as a
	// candidate: one seek into the input cells (keyed by session first)
	// per session, with one iterator.
	txn := r.s.adb.NewTransaction(false)
	defer txn.Discard()
	base := append(binary.BigEndian.AppendUint32([]byte{nsAgg}, pnum), byte(kindInputs), scopeSession)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: base})
	defer it.Close()
	ops := kindOps[kindInputs]
	cellRow := make([]float64, len(ops))
	var sp []byte
	xrOf := func(session string) (n int64, headset bool, err error) {
		sp = binary.BigEndian.AppendUint16(append(sp[:0], base...), uint16(len(session)))
		sp = append(sp, session...)
		for it.Seek(sp); it.ValidForPrefix(sp); it.Next() {
			rest := it.Item().Key()[len(sp):]
			if len(rest) < 1+8 || len(rest) != 1+int(rest[0])+8 {
				continue
			}
			scene := rest[1 : 1+int(rest[0])]
			bucket := int64(binary.BigEndian.Uint64(rest[len(rest)-8:]))
			in := bucket >= lo && bucket <= q.Until && (q.Scene == "" || string(scene) == q.Scene)
			err = it.Item().Value(func(v []byte) error {
				return walkCell(ops, v, cellRow, func(item []byte, row []float64) {
					if len(item) == 2 && int(item[1]) < numSources && xrSources[item[1]] {
						headset = true
						if in {
							n += int64(row[0])
						}
					}
				})
			})
			if err != nil {
				return 0, false, err
			}
		}
		return n, headset, nil
	}
	// Rows come latest start first, and only limit of them: the sessions
	// are taken from the by-start index, latest first, and a session's
	// events counted only when it is a candidate. Those that started
	// before since all start the range (from = since) and go by id: they
	// are collected whole once the walk passes since.
	row := func(rec *sessionSpan, n int64) (core.XRAbandonmentRow, bool, error) {
		// A session wholly in the range has all its events in it: its
		// record's count. Only one the range cuts, or a scene filter,
		// needs its counts cells.
		events := rec.Events
		if rec.StartedAt < q.Since || rec.EndedAt > q.Until || q.Scene != "" {
			sq := q
			sq.Session = rec.ID
			counts, err := r.merged(pnum, kindCounts, &sq)
			if err != nil {
				return core.XRAbandonmentRow{}, false, err
			}
			events = 0
			for _, row := range counts {
				events += int64(row[0])
			}
		}
		from, to := max(rec.StartedAt, q.Since), min(rec.EndedAt, q.Until)
		return core.XRAbandonmentRow{SessionID: rec.ID, Events: events, XRInteractions: n, StartedAt: iso(from), EndedAt: iso(to)}, events > 0, nil
	}
	var rows, before []core.XRAbandonmentRow
	var starts []int64
	err := r.sessionsByStart(pnum, q.Until, func(rec *sessionSpan) (bool, error) {
		if rec.EndedAt < q.Since || (q.Session != "" && rec.ID != q.Session) {
			return true, nil
		}
		if len(rows) >= q.Limit && rec.StartedAt < starts[len(starts)-1] {
			return false, nil // ties with the last row are still taken, to be ordered by id
		}
		// The record's count tells a headset session, and is its count
		// when the range holds the whole session: only a session the
		// range or a scene cuts, or one whose record predates the count,
		// reads its input cells.
		var n int64
		var headset bool
		var err error
		whole := rec.StartedAt >= q.Since && rec.EndedAt <= q.Until && q.Scene == ""
		if rec.XR != nil && (whole || *rec.XR == 0) {
			n, headset = *rec.XR, *rec.XR > 0
		} else if n, headset, err = xrOf(rec.ID); err != nil {
			return true, err
		}
		if !headset {
			return true, nil
		}
		x, ok, err := row(rec, n)
		if err != nil || !ok {
			return true, err
		}
		if rec.StartedAt < q.Since {
			before = append(before, x)
		} else {
			rows, starts = append(rows, x), append(starts, rec.StartedAt)
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	// Within one start, by id (the index holds them the other way round).
	idx := make([]int, len(rows))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		if starts[idx[a]] != starts[idx[b]] {
			return starts[idx[a]] > starts[idx[b]]
		}
		return rows[idx[a]].SessionID < rows[idx[b]].SessionID
	})
	out := make([]core.XRAbandonmentRow, 0, len(rows)+len(before))
	for _, i := range idx {
		out = append(out, rows[i])
	}
	sort.Slice(before, func(a, b int) bool { return before[a].SessionID < before[b].SessionID })
	return limitRows(append(out, before...), q.Limit), nil
}

// sessionSpan is the part of a SessionRecord that sessionsByStart reads
// (the rest of the JSON is passed over, not decoded).
type sessionSpan struct {
	ID        string `json:"id"`
	Events    int64  `json:"events"`
	StartedAt int64  `json:"started"`
	EndedAt   int64  `json:"ended"`
	XR        *int64 `json:"xr"`
}

// sessionsByStart calls fn with the span of each session of the project
// that started at or before until, latest start first, until fn says to
// stop.
func (r *Reader) sessionsByStart(pnum uint32, until int64, fn func(rec *sessionSpan) (more bool, err error)) error {
	return r.s.adb.View(func(txn *badger.Txn) error {
		prefix := binary.BigEndian.AppendUint32([]byte{nsSessionIdx}, pnum)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		seek := binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), uint64(until))
		seek = append(seek, 0xff)
		for it.Seek(seek); it.Valid(); it.Next() {
			var rec sessionSpan
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &rec) }); err != nil {
				return err
			}
			if more, err := fn(&rec); err != nil || !more {
				return err
			}
		}
		return nil
	})
}

// walkCell calls fn for each item of an encoded cell, in stored order,
// without building it: item and row alias b and a reused slice, valid only
// during the call.
func walkCell(ops []mergeOp, b []byte, row []float64, fn func(item []byte, row []float64)) error {
	r, err := newCellReader(b, len(ops))
	if err != nil {
		return err
	}
	row = row[:len(ops)]
	for r.items() > 0 {
		item, _, _, err := r.next(row)
		if err != nil {
			return err
		}
		fn(item, row)
	}
	return r.done()
}

// scanSessionItems calls fn for each item of each session-scope cell of
// kind in the query's range (to the cell) and scope: one session's with
// q.Session, else every session's, in q.Scene only when it is set. Cells
// are walked, not decoded into maps; item and row are valid only during
// the call.
// done, when given, ends the walk early once it says so.
func (r *Reader) scanSessionItems(pnum uint32, kind aggKind, q *core.Query, fn func(session, scene string, bucket int64, item []byte, row []float64), done ...func() bool) error {
	ops := kindOps[kind]
	row := make([]float64, len(ops))
	return r.scanSessionCells(pnum, kind, q, func(session, scene string, bucket int64, v []byte) error {
		return walkCell(ops, v, row, func(item []byte, row []float64) { fn(session, scene, bucket, item, row) })
	}, done...)
}

// everyScene is the kind a session-scope read of kind scans: its
// every-scene cells when the query names no scene and the kind has them.
func everyScene(kind aggKind, q *core.Query) aggKind {
	if ak := allScenesOf[kind]; ak != 0 && q.Scene == "" {
		return ak
	}
	return kind
}

// scanSessionCells is scanSessionItems handing over each cell's stored
// encoding (valid only during the call) instead of its items.
func (r *Reader) scanSessionCells(pnum uint32, kind aggKind, q *core.Query, fn func(session, scene string, bucket int64, v []byte) error, done ...func() bool) error {
	prefix := binary.BigEndian.AppendUint32([]byte{nsAgg}, pnum)
	prefix = append(prefix, byte(kind), scopeSession)
	if q.Session != "" {
		prefix = binary.BigEndian.AppendUint16(prefix, uint16(len(q.Session)))
		prefix = append(prefix, q.Session...)
	}
	lo := max(0, q.Since-kindBucket(kind)+1)
	return r.s.adb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		var lastSession, lastScene string
		scenes := map[string]string{}
		for it.Rewind(); it.Valid(); it.Next() {
			if len(done) > 0 && done[0]() {
				return nil
			}
			k := it.Item().Key()
			rest := k[1+4+1+1:]
			if len(rest) < 2+1+8 {
				continue
			}
			n := int(binary.BigEndian.Uint16(rest))
			if len(rest) < 2+n+1+8 {
				continue
			}
			session := rest[2 : 2+n]
			rest = rest[2+n:]
			m := int(rest[0])
			if len(rest) != 1+m+8 {
				continue
			}
			scene := rest[1 : 1+m]
			bucket := int64(binary.BigEndian.Uint64(rest[1+m:]))
			if bucket < lo || bucket > q.Until || (q.Scene != "" && string(scene) != q.Scene) ||
				(q.Session != "" && string(session) != q.Session) {
				continue
			}
			if string(session) != lastSession {
				lastSession = string(session)
			}
			if string(scene) != lastScene {
				// A project has few scenes and sessions move between them:
				// each is copied once per read, not once per cell.
				if sc, ok := scenes[string(scene)]; ok {
					lastScene = sc
				} else {
					lastScene = string(scene)
					scenes[lastScene] = lastScene
				}
			}
			if err := it.Item().Value(func(v []byte) error { return fn(lastSession, lastScene, bucket, v) }); err != nil {
				return err
			}
		}
		return nil
	})
}
