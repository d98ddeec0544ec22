package storage

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/uptimizr/edge/core"
)

// Reader answers the read API from the aggregates. Every method takes the
// project's number from the caller's key: nothing else selects a project.
type Reader struct{ s *Store }

// Reader returns the aggregate reader.
func (s *Store) Reader() *Reader { return &Reader{s: s} }

// ErrSessionNotFound is returned for a session the project never saw.
var ErrSessionNotFound = errors.New("session not found")

// sceneOfKey extracts the scene id of a scene-scope cell key.
func sceneOfKey(k []byte) string {
	off := 1 + 4 + 1 + 1
	if len(k) < off+1 {
		return ""
	}
	n := int(k[off])
	if len(k) < off+1+n {
		return ""
	}
	return string(k[off+1 : off+1+n])
}

func (r *Reader) merged(pnum uint32, kind aggKind, q *core.Query) (cell, error) {
	out := cell{}
	ops := kindOps[kind]
	w := len(ops)
	row := make([]float64, w)
	var slab []float64
	// The stored cells are walked, not decoded: an item already in out is
	// merged in place, and only a new one is copied (its row from a slab).
	err := r.scanCellBytes(pnum, kind, q, true, func(_ []byte, _ int64, v []byte) error {
		return walkCell(ops, v, row, func(item []byte, row []float64) {
			if cur, ok := out[string(item)]; ok {
				mergeRow(ops, cur, row)
				return
			}
			if len(slab)+w > cap(slab) {
				slab = make([]float64, 0, max(1024, 64*w))
			}
			n := len(slab)
			slab = append(slab, row...)
			out[string(item)] = slab[n : n+w : n+w]
		})
	})
	return out, err
}

func iso(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z") }

// EventCounts is GET /api/v1/event-counts, most frequent first.
func (r *Reader) EventCounts(pnum uint32, q core.Query) ([]core.EventCountRow, error) {
	c, err := r.merged(pnum, kindCounts, &q)
	if err != nil {
		return nil, err
	}
	rows := make([]core.EventCountRow, 0, len(c))
	for t, row := range c {
		rows = append(rows, core.EventCountRow{EventType: t, Count: int64(row[0])})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Count != rows[j].Count {
			return rows[i].Count > rows[j].Count
		}
		return rows[i].EventType < rows[j].EventType
	})
	return limitRows(rows, q.Limit), nil
}

// Timeseries is GET /api/v1/timeseries: events and average fps per interval
// (a multiple of one minute), oldest first.
func (r *Reader) Timeseries(pnum uint32, q core.Query, interval time.Duration) ([]core.TimeseriesRow, error) {
	iv := interval.Milliseconds()
	type acc struct {
		events       int64
		fpsN, fpsSum float64
	}
	buckets := map[int64]*acc{}
	get := func(b int64) *acc {
		b -= b % iv
		a := buckets[b]
		if a == nil {
			a = &acc{}
			buckets[b] = a
		}
		return a
	}
	rollup := iv%hourMs == 0 // hour cells fall wholly into one interval
	if err := r.scanCells(pnum, kindCounts, &q, rollup, func(_ []byte, b int64, c cell) error {
		a := get(b)
		for _, row := range c {
			a.events += int64(row[0])
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := r.scanCells(pnum, kindPerf, &q, rollup, func(_ []byte, b int64, c cell) error {
		if row, ok := c[""]; ok {
			a := get(b)
			a.fpsN += row[0]
			a.fpsSum += row[1]
		}
		return nil
	}); err != nil {
		return nil, err
	}
	rows := make([]core.TimeseriesRow, 0, len(buckets))
	for b, a := range buckets {
		row := core.TimeseriesRow{Bucket: b, Events: a.events}
		if a.fpsN > 0 {
			row.AvgFPS = ptrf(a.fpsSum / a.fpsN)
		}
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Bucket < rows[j].Bucket })
	return limitRows(rows, q.Limit), nil
}

// scanCells calls fn for each cell of kind in the query's scope and range.
// With rollup, whole hours inside the range are read from the kind's hourly
// roll-up and only the ragged ends from per-minute cells.
func (r *Reader) scanCells(pnum uint32, kind aggKind, q *core.Query, rollup bool, fn func(k []byte, bucket int64, c cell) error) error {
	ops := kindOps[kind]
	return r.scanCellBytes(pnum, kind, q, rollup, func(k []byte, bucket int64, v []byte) error {
		c := cell{}
		if err := decodeCell(ops, v, c); err != nil {
			return err
		}
		return fn(k, bucket, c)
	})
}

// scanCellBytes is scanCells handing over each cell's stored encoding
// (valid only during the call) instead of decoding it.
func (r *Reader) scanCellBytes(pnum uint32, kind aggKind, q *core.Query, rollup bool, fn func(k []byte, bucket int64, v []byte) error) error {
	hourKind := rollupOf[kind]
	if !rollup || hourKind == 0 || q.Session != "" {
		return r.scanKeys(pnum, kind, q, q.Since, q.Until, fn)
	}
	first := (q.Since + hourMs - 1) / hourMs * hourMs // first whole hour
	endFull := int64(math.MaxInt64)                   // end (exclusive) of the last whole hour
	if q.Until != math.MaxInt64 {
		endFull = (q.Until + 1) / hourMs * hourMs
	}
	if first >= endFull {
		return r.scanKeys(pnum, kind, q, q.Since, q.Until, fn)
	}
	if q.Since < first {
		if err := r.scanKeys(pnum, kind, q, q.Since, first-1, fn); err != nil {
			return err
		}
	}
	hourUntil := endFull - 1
	if endFull == math.MaxInt64 {
		hourUntil = math.MaxInt64
	}
	if err := r.scanKeys(pnum, hourKind, q, first, hourUntil, fn); err != nil {
		return err
	}
	if endFull != math.MaxInt64 && endFull <= q.Until {
		return r.scanKeys(pnum, kind, q, endFull, q.Until, fn)
	}
	return nil
}

// scanKeys walks the cells of kind in the query's scope whose bucket
// overlaps [since, until]. Keys end with the bucket, and within one scope
// (the key up to the bucket) buckets ascend, so the walk seeks past whole
// runs of buckets outside the range and reads only the values it returns.
func (r *Reader) scanKeys(pnum uint32, kind aggKind, q *core.Query, since, until int64, fn func(k []byte, bucket int64, v []byte) error) error {
	width := kindBucket(kind)
	base := binary.BigEndian.AppendUint32([]byte{nsAgg}, pnum)
	base = append(base, byte(kind))
	var prefix []byte
	switch {
	case q.Session != "":
		prefix = append(append([]byte(nil), base...), scopeSession)
		prefix = binary.BigEndian.AppendUint16(prefix, uint16(len(q.Session)))
		prefix = append(prefix, q.Session...)
	case q.Scene != "":
		prefix = append(append([]byte(nil), base...), scopeScene, byte(len(q.Scene)))
		prefix = append(prefix, q.Scene...)
	default:
		prefix = append(append([]byte(nil), base...), scopeScene)
	}
	lo := max(0, since-width+1) // the lowest bucket that can overlap
	return r.s.adb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		var seek []byte
		for it.Rewind(); it.Valid(); {
			k := it.Item().Key()
			if len(k) < len(prefix)+8 {
				it.Next()
				continue
			}
			scope := k[:len(k)-8]
			bucket := int64(binary.BigEndian.Uint64(k[len(k)-8:]))
			switch {
			case bucket < lo:
				seek = binary.BigEndian.AppendUint64(append(seek[:0], scope...), uint64(lo))
				it.Seek(seek)
				continue
			case bucket > until:
				seek = append(append(seek[:0], scope...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0)
				it.Seek(seek) // the next scope
				continue
			}
			if q.Session != "" && q.Scene != "" {
				rest := k[len(prefix) : len(k)-8]
				if len(rest) < 1 || string(rest[1:]) != q.Scene {
					it.Next()
					continue
				}
			}
			if err := it.Item().Value(func(v []byte) error { return fn(k, bucket, v) }); err != nil {
				return err
			}
			it.Next()
		}
		return nil
	})
}

// Scenes is GET /api/v1/scenes, most recently seen first.
func (r *Reader) Scenes(pnum uint32, q core.Query) ([]core.SceneRow, error) {
	type acc struct {
		events int64
		last   float64
	}
	scenes := map[string]*acc{}
	err := r.scanCells(pnum, kindCounts, &q, true, func(k []byte, _ int64, c cell) error {
		var scene string
		if q.Session != "" {
			rest := k[1+4+1+1+2+len(q.Session) : len(k)-8]
			if len(rest) > 0 {
				scene = string(rest[1:])
			}
		} else {
			scene = sceneOfKey(k)
		}
		a := scenes[scene]
		if a == nil {
			a = &acc{}
			scenes[scene] = a
		}
		for _, row := range c {
			a.events += int64(row[0])
			a.last = math.Max(a.last, row[1])
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rows := make([]core.SceneRow, 0, len(scenes))
	lastMs := map[string]int64{}
	for s, a := range scenes {
		rows = append(rows, core.SceneRow{SceneID: s, Events: a.events, LastSeen: iso(int64(a.last))})
		lastMs[s] = int64(a.last)
	}
	sort.Slice(rows, func(i, j int) bool {
		if lastMs[rows[i].SceneID] != lastMs[rows[j].SceneID] {
			return lastMs[rows[i].SceneID] > lastMs[rows[j].SceneID]
		}
		return rows[i].SceneID < rows[j].SceneID
	})
	return limitRows(rows, q.Limit), nil
}

// MeshTop is GET /api/v1/meshes/top: mesh_interaction counts per mesh.
func (r *Reader) MeshTop(pnum uint32, q core.Query) ([]core.MeshCountRow, error) {
	c, err := r.merged(pnum, kindMeshTop, &q)
	if err != nil {
		return nil, err
	}
	rows := make([]core.MeshCountRow, 0, len(c))
	for m, row := range c {
		rows = append(rows, core.MeshCountRow{Mesh: m, Count: int64(row[0])})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Count != rows[j].Count {
			return rows[i].Count > rows[j].Count
		}
		return rows[i].Mesh < rows[j].Mesh
	})
	return limitRows(rows, q.Limit), nil
}

// MeshDwell is GET /api/v1/meshes/dwell, longest visible first.
func (r *Reader) MeshDwell(pnum uint32, q core.Query) ([]core.MeshDwellRow, error) {
	c, err := r.merged(pnum, kindMeshDwell, &q)
	if err != nil {
		return nil, err
	}
	rows := make([]core.MeshDwellRow, 0, len(c))
	for m, row := range c {
		rows = append(rows, core.MeshDwellRow{Mesh: m, VisibleMs: row[0], CenteredMs: row[1], MaxScreenFraction: row[2], Samples: int64(row[3])})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].VisibleMs != rows[j].VisibleMs {
			return rows[i].VisibleMs > rows[j].VisibleMs
		}
		return rows[i].Mesh < rows[j].Mesh
	})
	return limitRows(rows, q.Limit), nil
}

// HoverDwell is GET /api/v1/hover/dwell, longest total dwell first.
func (r *Reader) HoverDwell(pnum uint32, q core.Query) ([]core.HoverDwellRow, error) {
	c, err := r.merged(pnum, kindHover, &q)
	if err != nil {
		return nil, err
	}
	rows := make([]core.HoverDwellRow, 0, len(c))
	for m, row := range c {
		rows = append(rows, core.HoverDwellRow{Mesh: m, DwellMs: row[0], MaxDwellMs: row[1], Episodes: int64(row[2])})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].DwellMs != rows[j].DwellMs {
			return rows[i].DwellMs > rows[j].DwellMs
		}
		return rows[i].Mesh < rows[j].Mesh
	})
	return limitRows(rows, q.Limit), nil
}

// Perf is GET /api/v1/perf. p50 comes from the merged half-fps histogram
// (the bin midpoint of the median sample): exact to ±0.25 fps.
func (r *Reader) Perf(pnum uint32, q core.Query) (core.PerfRow, error) {
	var out core.PerfRow
	c, err := r.merged(pnum, kindPerf, &q)
	if err != nil {
		return out, err
	}
	row, ok := c[""]
	if !ok || row[0] == 0 {
		return out, nil
	}
	out.Samples = int64(row[0])
	out.AvgFPS = ptrf(row[1] / row[0])
	out.MinFPS = ptrf(row[2])
	h, err := r.merged(pnum, kindPerfHist, &q)
	if err != nil {
		return out, err
	}
	bins := make([]string, 0, len(h))
	var total float64
	for b, row := range h {
		bins = append(bins, b)
		total += row[0]
	}
	sort.Strings(bins) // big-endian bin numbers sort numerically
	rank := math.Ceil(total / 2)
	var seen float64
	for _, b := range bins {
		seen += h[b][0]
		if seen >= rank {
			out.P50FPS = ptrf(FPSBinValue(b))
			break
		}
	}
	return out, nil
}

// Resources is GET /api/v1/perf/resources.
func (r *Reader) Resources(pnum uint32, q core.Query) (core.ResourceRow, error) {
	var out core.ResourceRow
	c, err := r.merged(pnum, kindResources, &q)
	if err != nil {
		return out, err
	}
	if row, ok := c[""]; ok {
		out.Samples = int64(row[0])
	}
	dst := map[string][2]**float64{
		"jsHeapBytes":   {&out.AvgJSHeapBytes, &out.MaxJSHeapBytes},
		"triangles":     {&out.AvgTriangles, &out.MaxTriangles},
		"vertices":      {&out.AvgVertices, &out.MaxVertices},
		"textureBytes":  {&out.AvgTextureBytes, &out.MaxTextureBytes},
		"geometryBytes": {&out.AvgGeometryBytes, &out.MaxGeometryBytes},
	}
	for m, d := range dst {
		if row, ok := c[m]; ok && row[0] > 0 {
			*d[0] = ptrf(row[1] / row[0])
			*d[1] = ptrf(row[2])
		} else if out.Samples > 0 {
			*d[1] = ptrf(0) // as the reference: a max over samples that lack the field is 0
		}
	}
	return out, nil
}

// HeatPointer is GET /api/v1/heatmaps/pointer: the 100×100 screen grid
// rebinned to bins×bins (a base cell goes to the bin holding its lower
// corner), busiest first.
func (r *Reader) HeatPointer(pnum uint32, q core.Query, bins int) ([]core.PointerCellRow, error) {
	c, err := r.merged(pnum, kindHeatPtr, &q)
	if err != nil {
		return nil, err
	}
	acc := map[[2]int]int64{}
	for item, row := range c {
		if len(item) != 2 {
			continue
		}
		gx, gy := int(item[0])*bins/PointerGrid, int(item[1])*bins/PointerGrid
		acc[[2]int{gx, gy}] += int64(row[0])
	}
	rows := make([]core.PointerCellRow, 0, len(acc))
	for k, n := range acc {
		rows = append(rows, core.PointerCellRow{GX: k[0], GY: k[1], Count: n})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Count != rows[j].Count {
			return rows[i].Count > rows[j].Count
		}
		if rows[i].GX != rows[j].GX {
			return rows[i].GX < rows[j].GX
		}
		return rows[i].GY < rows[j].GY
	})
	return limitRows(rows, q.Limit), nil
}

// HeatCamera is GET /api/v1/heatmaps/camera: view directions binned into
// bins azimuth × bins elevation cells, busiest first.
func (r *Reader) HeatCamera(pnum uint32, q core.Query, bins int) ([]core.CameraCellRow, error) {
	bins = max(1, bins)
	// The reference's bins: azimuth atan2(z, x) + π (from −x, through −z),
	// elevation from straight down; a 1° cell goes by its middle. Each
	// stored 1° cell is counted into its bin as the cells are walked, with
	// the bin of each azimuth and elevation looked up: no map of the 1°
	// cells is built.
	var azBin [360]int32
	var elBin [181]int32
	binOf := func(ref, span float64) int32 { return int32(min(bins-1, int(ref/span*float64(bins)))) }
	for az := range azBin {
		azBin[az] = binOf(math.Mod(269.5-float64(az)+360, 360), 360)
	}
	for el := range elBin {
		elBin[el] = binOf(float64(el)+0.5, 180)
	}
	counts := make([]int64, bins*bins)
	ops := kindOps[kindHeatCamera]
	row := make([]float64, len(ops))
	err := r.scanCellBytes(pnum, kindHeatCamera, &q, true, func(_ []byte, _ int64, v []byte) error {
		return walkCell(ops, v, row, func(item []byte, row []float64) {
			if len(item) != 4 {
				return
			}
			az, el := binary.BigEndian.Uint16(item[:2]), binary.BigEndian.Uint16(item[2:])
			var ab, eb int32
			if az < 360 {
				ab = azBin[az]
			} else {
				ab = binOf(math.Mod(269.5-float64(az)+360, 360), 360)
			}
			if el < 181 {
				eb = elBin[el]
			} else {
				eb = binOf(float64(el)+0.5, 180)
			}
			counts[int(ab)*bins+int(eb)] += int64(row[0])
		})
	})
	if err != nil {
		return nil, err
	}
	rows := []core.CameraCellRow{}
	for i, n := range counts {
		if n != 0 {
			rows = append(rows, core.CameraCellRow{AzimuthBin: i / bins, ElevationBin: i % bins, Count: n})
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.AzimuthBin != b.AzimuthBin {
			return a.AzimuthBin < b.AzimuthBin
		}
		return a.ElevationBin < b.ElevationBin
	})
	return limitRows(rows, q.Limit), nil
}

// Sessions is GET /api/v1/sessions: sessions overlapping [since, until],
// optionally of one scene or one id, most recently started first. It walks
// the by-start index backwards from until and stops once it has limit rows.
func (r *Reader) Sessions(pnum uint32, q core.Query) ([]core.SessionRow, error) {
	var rows []core.SessionRow
	err := r.s.adb.View(func(txn *badger.Txn) error {
		prefix := binary.BigEndian.AppendUint32([]byte{nsSessionIdx}, pnum)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		seek := binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), uint64(q.Until))
		seek = append(seek, 0xff)
		for it.Seek(seek); it.Valid() && len(rows) < q.Limit; it.Next() {
			k := it.Item().Key()
			if len(k) < len(prefix)+8 {
				continue
			}
			if q.Session != "" && string(k[len(prefix)+8:]) != q.Session {
				continue
			}
			var rec SessionRecord
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &rec) }); err != nil {
				return err
			}
			if rec.EndedAt < q.Since || rec.StartedAt > q.Until {
				continue
			}
			if q.Scene != "" && !contains(rec.Scenes, q.Scene) {
				continue
			}
			rows = append(rows, core.SessionRow{SessionID: rec.ID, VisitorID: rec.VisitorID, Events: rec.Events,
				StartedAt: iso(rec.StartedAt), EndedAt: iso(rec.EndedAt)})
		}
		return nil
	})
	return rows, err
}

// SessionMeta is GET /api/v1/sessions/:id/meta.
func (r *Reader) SessionMeta(pnum uint32, session string) (core.SessionMetaRow, error) {
	var out core.SessionMetaRow
	rec, err := r.sessionRecord(pnum, session)
	if err != nil {
		return out, err
	}
	out = core.SessionMetaRow{SessionID: rec.ID, VisitorID: rec.VisitorID, Events: rec.Events,
		StartedAt: iso(rec.StartedAt), EndedAt: iso(rec.EndedAt), Scenes: rec.Scenes}
	out.SessionIDRef, out.StartedAtRef = out.SessionID, out.StartedAt
	for name, dst := range map[string]*map[string]any{"device": &out.Device, "scene": &out.Scene, "user": &out.User, "connector": &out.Connector, "graphics": &out.Graphics} {
		if raw, ok := rec.Meta[name]; ok {
			_ = json.Unmarshal(raw, dst)
		}
	}
	return out, nil
}

// sessionRecord is a session's summary; ErrSessionNotFound for a session
// the project never saw.
func (r *Reader) sessionRecord(pnum uint32, session string) (SessionRecord, error) {
	var rec SessionRecord
	err := r.s.adb.View(func(txn *badger.Txn) error {
		item, err := txn.Get(sessionKey(pnum, []byte(session)))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ErrSessionNotFound
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error { return json.Unmarshal(v, &rec) })
	})
	return rec, err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func limitRows[T any](rows []T, limit int) []T {
	if limit > 0 && len(rows) > limit {
		return rows[:limit]
	}
	return rows
}

func ptrf(f float64) *float64 { return &f }

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// SessionIDs calls fn with the id of each session of the project that
// overlaps the query's range (and visited its scene, when it names one),
// latest start first.
func (r *Reader) SessionIDs(pnum uint32, q core.Query, fn func(id string) error) error {
	return r.s.adb.View(func(txn *badger.Txn) error {
		prefix := binary.BigEndian.AppendUint32([]byte{nsSessionIdx}, pnum)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		seek := binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), uint64(q.Until))
		seek = append(seek, 0xff)
		for it.Seek(seek); it.Valid(); it.Next() {
			var rec SessionRecord
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &rec) }); err != nil {
				return err
			}
			if rec.EndedAt < q.Since || rec.StartedAt > q.Until || q.Scene != "" && !contains(rec.Scenes, q.Scene) {
				continue
			}
			if err := fn(rec.ID); err != nil {
				return err
			}
		}
		return nil
	})
}
