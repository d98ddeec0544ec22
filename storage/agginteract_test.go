package storage

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"sort"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/uptimizr/edge/core"
)

// interactEvent is one generated input event, as the oracle sees it.
type interactEvent struct {
	typ                        core.EventType
	ts                         int64
	session, scene, source     string // source "" = none sent
	mesh, kind, action, hitted string // hitted: pointer_click's hitMesh
	dur                        float64
}

// genInteractions builds a random session mix of input events over a day
// and commits it in batches.
func genInteractions(t *testing.T, s *Store, pnum uint32, seed int64, n int) []interactEvent {
	t.Helper()
	r := rand.New(rand.NewSource(seed))
	base := int64(1795892400000)
	sources := []string{"", "mouse", "touch", "xr-controller", "hand", "keyboard"}
	meshes := []string{"door", "chair", "lamp", `qu"ote`}
	kinds := []string{"click", "hover", "grab"}
	gestures := []string{"orbit", "pan", "zoom"}
	types := []core.EventType{core.TypePointerMove, core.TypePointerClick, core.TypePointerClick, core.TypeMeshInteraction,
		core.TypeInputAction, core.TypeCameraGesture, core.TypeHoverDwell, core.TypePointerDown, core.TypeFramePerf}
	var evs []interactEvent
	for len(evs) < n {
		b := &core.Batch{ProjectID: "p", ProjectNum: pnum}
		sess := fmt.Sprintf("s%d", r.Intn(40))
		start := base + r.Int63n(20*hourMs)
		for i := 0; i < 50 && len(evs) < n; i++ {
			e := interactEvent{typ: types[r.Intn(len(types))], session: sess, scene: []string{"a", "b"}[r.Intn(2)],
				ts: start + r.Int63n(30_000), source: sources[r.Intn(len(sources))]}
			js := fmt.Sprintf(`{"type":%q,"sessionId":%q,"ts":%d,"sceneId":%q`, e.typ.String(), sess, e.ts, e.scene)
			if e.source != "" && e.typ != core.TypeFramePerf {
				js += fmt.Sprintf(`,"source":%q`, e.source)
			}
			switch e.typ {
			case core.TypePointerClick:
				if r.Intn(3) > 0 {
					e.hitted = meshes[r.Intn(len(meshes))]
					js += fmt.Sprintf(`,"hitMesh":%q`, e.hitted)
				}
			case core.TypeMeshInteraction:
				e.mesh, e.kind = meshes[r.Intn(len(meshes))], kinds[r.Intn(len(kinds))]
				js += fmt.Sprintf(`,"mesh":%q,"kind":%q`, e.mesh, e.kind)
			case core.TypeInputAction:
				e.action = []string{"jump", "menu"}[r.Intn(2)]
				js += fmt.Sprintf(`,"action":%q`, e.action)
			case core.TypeCameraGesture:
				e.kind, e.dur = gestures[r.Intn(len(gestures))], float64(r.Intn(900))
				js += fmt.Sprintf(`,"kind":%q,"durationMs":%v`, e.kind, e.dur)
			case core.TypeHoverDwell:
				js += `,"mesh":"lamp","dwellMs":10`
			case core.TypeFramePerf:
				js += `,"fps":60`
			}
			b.AppendEvent(e.typ, e.ts, []byte(sess), []byte(js+"}"))
			evs = append(evs, e)
		}
		if err := s.Sink().Commit(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	return evs
}

func (e interactEvent) src() string {
	if e.source == "" {
		return "mouse"
	}
	return e.source
}

func (e interactEvent) input() bool { return inputIndex[e.typ] != 0 }

// inScope is the oracle's filter: hourly cells answer a range to the hour.
func inScope(e interactEvent, q core.Query) bool {
	h := e.ts - e.ts%hourMs
	return h+hourMs > q.Since && h <= q.Until &&
		(q.Scene == "" || e.scene == q.Scene) && (q.Session == "" || e.session == q.Session) &&
		(q.Source == "" || e.src() == q.Source)
}

func interactQueries() []core.Query {
	base := int64(1795892400000)
	var qs []core.Query
	for _, f := range []func(*core.Query){
		func(q *core.Query) {},
		func(q *core.Query) { q.Scene = "b" },
		func(q *core.Query) { q.Session = "s7" },
		func(q *core.Query) { q.Source = "touch" },
		func(q *core.Query) { q.Since, q.Until = base+3*hourMs, base+9*hourMs-1 },
		func(q *core.Query) { q.Scene, q.Source = "a", "mouse" },
	} {
		q := core.DefaultQuery()
		q.Limit = 1000
		f(&q)
		qs = append(qs, q)
	}
	return qs
}

func TestInteractionAggregates(t *testing.T) {
	s := openTest(t, Options{DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	evs := genInteractions(t, s, pnum, 5, 6000)
	rd := s.Reader()
	for _, q := range interactQueries() {
		name := fmt.Sprintf("scene=%q session=%q source=%q range=%d..%d", q.Scene, q.Session, q.Source, q.Since, q.Until)
		t.Run(name, func(t *testing.T) {
			// interactions/sources: exact counts; sessions within the sketch's bound.
			type pair struct{ typ, src string }
			counts := map[pair]int64{}
			sessions := map[pair]map[string]bool{}
			kinds := map[[2]string]int64{}
			active := map[[2]string]int64{}
			actions := map[[2]string]int64{}
			var total, dead int64
			type gest struct {
				n        int64
				sum, max float64
			}
			gestures := map[string]*gest{}
			for _, e := range evs {
				if !e.input() || !inScope(e, q) {
					continue
				}
				p := pair{e.typ.String(), e.src()}
				counts[p]++
				if sessions[p] == nil {
					sessions[p] = map[string]bool{}
				}
				sessions[p][e.session] = true
				switch e.typ {
				case core.TypeMeshInteraction:
					kinds[[2]string{e.mesh, e.kind}]++
					active[[2]string{e.mesh, e.src()}]++
				case core.TypePointerClick:
					total++
					if e.hitted == "" {
						dead++
					} else {
						active[[2]string{e.hitted, e.src()}]++
					}
				case core.TypeInputAction:
					actions[[2]string{e.action, e.src()}]++
				case core.TypeCameraGesture:
					g := gestures[e.kind]
					if g == nil {
						g = &gest{}
						gestures[e.kind] = g
					}
					g.n++
					g.sum += e.dur
					g.max = math.Max(g.max, e.dur)
				}
			}
			rows, err := rd.InteractionSources(pnum, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != len(counts) {
				t.Fatalf("interactions/sources: %d rows, want %d", len(rows), len(counts))
			}
			for i, row := range rows {
				p := pair{row.EventType, row.Source}
				if row.Count != counts[p] {
					t.Errorf("%v: count %d, want %d", p, row.Count, counts[p])
				}
				want := int64(len(sessions[p]))
				if math.Abs(float64(row.Sessions-want)) > math.Max(2, 0.03*float64(want)) {
					t.Errorf("%v: sessions %d, want %d (±2 or 3%%)", p, row.Sessions, want)
				}
				if i > 0 && rows[i-1].Count < row.Count {
					t.Errorf("not by count: %+v before %+v", rows[i-1], row)
				}
			}
			mk, err := rd.MeshKinds(pnum, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(mk) != len(kinds) {
				t.Fatalf("meshes/kinds: %d rows, want %d", len(mk), len(kinds))
			}
			for _, row := range mk {
				if row.Count != kinds[[2]string{row.Mesh, row.Kind}] {
					t.Errorf("meshes/kinds %+v, want %d", row, kinds[[2]string{row.Mesh, row.Kind}])
				}
			}
			ms, err := rd.MeshSources(pnum, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != len(active) {
				t.Fatalf("meshes/sources: %d rows, want %d", len(ms), len(active))
			}
			for _, row := range ms {
				if row.Count != active[[2]string{row.Mesh, row.Source}] {
					t.Errorf("meshes/sources %+v, want %d", row, active[[2]string{row.Mesh, row.Source}])
				}
			}
			dc, err := rd.DeadClicks(pnum, q)
			if err != nil {
				t.Fatal(err)
			}
			if dc.TotalClicks != total || dc.DeadClicks != dead {
				t.Errorf("clicks/dead %+v, want %d/%d", dc, total, dead)
			}
			ia, err := rd.InputActions(pnum, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(ia) != len(actions) {
				t.Fatalf("input-actions: %d rows, want %d", len(ia), len(actions))
			}
			for _, row := range ia {
				if row.Count != actions[[2]string{row.Action, row.Source}] {
					t.Errorf("input-actions %+v", row)
				}
			}
			cg, err := rd.CameraGestures(pnum, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(cg) != len(gestures) {
				t.Fatalf("camera-gestures: %d rows, want %d", len(cg), len(gestures))
			}
			for _, row := range cg {
				g := gestures[row.Kind]
				if g == nil || row.Gestures != g.n || row.TotalMs != g.sum || row.MaxMs != g.max || math.Abs(row.AvgMs-g.sum/float64(g.n)) > 1e-9 {
					t.Errorf("camera-gestures %+v, want %+v", row, g)
				}
			}
			xr, err := rd.XRSources(pnum, q)
			if err != nil {
				t.Fatal(err)
			}
			xrWant := map[string]int64{}
			for p, n := range counts {
				if p.src == "xr-controller" || p.src == "hand" {
					xrWant[p.src] += n
				}
			}
			if len(xr) != len(xrWant) {
				t.Fatalf("xr/sources %+v, want %v", xr, xrWant)
			}
			for _, row := range xr {
				if row.Interactions != xrWant[row.Source] || row.Sessions < 1 {
					t.Errorf("xr/sources %+v, want %d", row, xrWant[row.Source])
				}
			}
		})
	}
}

// TestMeshTrendAndRage checks the minute-resolved trend and the
// second-resolved rage clicks against a hand-built click sequence.
func TestMeshTrendAndRage(t *testing.T) {
	s := openTest(t, Options{DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	base := int64(1795892400000) // an hour boundary, and a multiple of 2 s
	b := &core.Batch{ProjectID: "p", ProjectNum: pnum}
	click := func(sess, mesh string, ts int64) {
		js := fmt.Sprintf(`{"type":"pointer_click","sessionId":%q,"ts":%d,"hitMesh":%q}`, sess, ts, mesh)
		if mesh == "" {
			js = fmt.Sprintf(`{"type":"pointer_click","sessionId":%q,"ts":%d}`, sess, ts)
		}
		b.AppendEvent(core.TypePointerClick, ts, []byte(sess), []byte(js))
	}
	// s1: 4 clicks on "door" within one 2-second window, then 2 in the next.
	for _, d := range []int64{0, 300, 900, 1999, 2000, 2500} {
		click("s1", "door", base+d)
	}
	// s2: 3 clicks on "lamp" across a 2 s boundary (1 + 2): no rage at 2 s,
	// rage at 10 s windows.
	for _, d := range []int64{61_000, 62_100, 62_900} {
		click("s2", "lamp", base+d)
	}
	click("s2", "", base+61_500) // dead: counts nowhere
	if err := s.Sink().Commit(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if err := s.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	rd := s.Reader()
	q := core.DefaultQuery()
	rows, err := rd.RageClicks(pnum, q, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0] != (core.RageClickRow{SessionID: "s1", Mesh: "door", Bucket: base, Clicks: 4}) {
		t.Fatalf("rage at 2 s: %+v", rows)
	}
	rows, _ = rd.RageClicks(pnum, q, 10, 3)
	want := []core.RageClickRow{{SessionID: "s1", Mesh: "door", Bucket: base, Clicks: 6}, {SessionID: "s2", Mesh: "lamp", Bucket: base + 60_000, Clicks: 3}}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Fatalf("rage at 10 s: %+v, want %+v", rows, want)
	}
	q.Session = "s2"
	if rows, _ = rd.RageClicks(pnum, q, 10, 3); len(rows) != 1 || rows[0].SessionID != "s2" {
		t.Fatalf("rage of s2: %+v", rows)
	}
	q = core.DefaultQuery()
	q.Since = base + 1000 // the range is exact to the second
	if rows, _ = rd.RageClicks(pnum, q, 10, 3); len(rows) != 2 || rows[0] != (core.RageClickRow{SessionID: "s1", Mesh: "door", Bucket: base, Clicks: 3}) {
		t.Fatalf("rage from +1 s: %+v", rows)
	}
	q = core.DefaultQuery()
	trend, err := rd.MeshTrend(pnum, q, minuteMs)
	if err != nil {
		t.Fatal(err)
	}
	wantTrend := []core.MeshTrendRow{{Mesh: "door", Bucket: base, Count: 6}, {Mesh: "lamp", Bucket: base + 60_000, Count: 3}}
	if fmt.Sprint(trend) != fmt.Sprint(wantTrend) {
		t.Fatalf("trend per minute: %+v, want %+v", trend, wantTrend)
	}
	trend, _ = rd.MeshTrend(pnum, q, hourMs)
	sort.Slice(trend, func(i, j int) bool { return trend[i].Mesh < trend[j].Mesh })
	if len(trend) != 2 || trend[0].Count != 6 || trend[1].Count != 3 || trend[1].Bucket != base {
		t.Fatalf("trend per hour: %+v", trend)
	}
	if dc, _ := rd.DeadClicks(pnum, q); dc.TotalClicks != 10 || dc.DeadClicks != 1 {
		t.Fatalf("dead clicks %+v", dc)
	}
}

// TestInteractionsEmpty: no data answers empty rows, not errors or nulls.
func TestInteractionsEmpty(t *testing.T) {
	s := openTest(t, Options{DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	rd := s.Reader()
	q := core.DefaultQuery()
	is, err1 := rd.InteractionSources(pnum, q)
	xr, err2 := rd.XRSources(pnum, q)
	rage, err3 := rd.RageClicks(pnum, q, 2, 3)
	dc, err4 := rd.DeadClicks(pnum, q)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		t.Fatal(err1, err2, err3, err4)
	}
	if is == nil || len(is) != 0 || xr == nil || len(xr) != 0 || rage == nil || len(rage) != 0 || dc != (core.DeadClickRow{}) {
		t.Fatalf("empty: %v %v %v %v", is, xr, rage, dc)
	}
	q.Source = "nose"
	if _, err := rd.MeshKinds(pnum, q); err != ErrBadSource {
		t.Fatalf("bad source: %v", err)
	}
}

// TestHLLError checks the distinct-session sketch against exact counts
// from 1 to 200,000: within 4 standard errors (3.3%), and to two sessions
// below 100.
func TestHLLError(t *testing.T) {
	for _, n := range []int{1, 2, 10, 99, 1000, 5000, 20000, 100000, 200000} {
		var s hllSketch
		for i := 0; i < n; i++ {
			reg, rank := hllRegister(sessionHash(fmt.Sprintf("session-%d-%s", i, strings.Repeat("x", i%7))))
			s.set(reg, rank)
		}
		got := s.estimate()
		err := math.Abs(float64(got-int64(n))) / float64(n)
		if n < 100 && math.Abs(float64(got-int64(n))) > 2 || err > 0.033 {
			t.Errorf("%d sessions: estimate %d (%.1f%%)", n, got, 100*err)
		}
	}
}

// TestXRAbandonment: a session is listed when it ever had headset input;
// its figures are those of the range and scene.
func TestXRAbandonment(t *testing.T) {
	s := openTest(t, Options{DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	t0 := int64(1795892400000)
	ev := func(typ, sess string, dt int64, extra string) [3]string {
		return [3]string{typ, sess, fmt.Sprint(t0+dt) + extra}
	}
	commitEvents(t, s, pnum, [][3]string{
		ev("scene_change", "vr", 0, `,"sceneId":"a"`),
		ev("pointer_click", "vr", 1000, `,"sceneId":"a","source":"xr-controller"`),
		ev("pointer_move", "vr", 2000, `,"sceneId":"b","source":"hand"`),
		ev("pointer_move", "vr", 3*hourMs, `,"sceneId":"a","source":"mouse"`),
		ev("pointer_click", "desk", 500, `,"sceneId":"a"`),
		ev("scene_change", "desk", 900, `,"sceneId":"a"`),
	})
	rd := s.Reader()
	rows, err := rd.XRAbandonment(pnum, core.DefaultQuery())
	if err != nil {
		t.Fatal(err)
	}
	want := []core.XRAbandonmentRow{{SessionID: "vr", Events: 4, XRInteractions: 2, StartedAt: iso(t0), EndedAt: iso(t0 + 3*hourMs)}}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Fatalf("all: %+v, want %+v", rows, want)
	}
	// Later hours only: still listed (headset input ever), with no headset
	// interactions in range.
	q := core.DefaultQuery()
	q.Since = t0 + 2*hourMs
	rows, _ = rd.XRAbandonment(pnum, q)
	if len(rows) != 1 || rows[0].Events != 1 || rows[0].XRInteractions != 0 || rows[0].StartedAt != iso(q.Since) {
		t.Fatalf("from +2 h: %+v", rows)
	}
	q = core.DefaultQuery()
	q.Scene = "b"
	rows, _ = rd.XRAbandonment(pnum, q)
	if len(rows) != 1 || rows[0].Events != 1 || rows[0].XRInteractions != 1 {
		t.Fatalf("scene b: %+v", rows)
	}
	q.Session = "desk"
	if rows, _ = rd.XRAbandonment(pnum, q); len(rows) != 0 {
		t.Fatalf("desk is no headset session: %+v", rows)
	}
}

// TestXRAbandonmentOrderAndLimit: rows are the latest-started sessions
// first, by id within one start, the sessions that started before since
// last (by id, as they all start the range), cut at the limit: the same as
// ranking every headset session, at every limit.
func TestXRAbandonmentOrderAndLimit(t *testing.T) {
	s := openTest(t, Options{DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	t0 := int64(1795892400000)
	var evs [][3]string
	// Sessions x0…x11 start in pairs at the same instant (ties), every
	// third one without headset input; each lasts 5 minutes.
	for i := 0; i < 12; i++ {
		sess := fmt.Sprintf("x%02d", 11-i) // ids descend as starts ascend
		start := t0 + int64(i/2)*10*60*1000
		src := "xr-controller"
		if i%3 == 2 {
			src = "mouse"
		}
		evs = append(evs,
			[3]string{"scene_change", sess, fmt.Sprint(start) + `,"sceneId":"a"`},
			[3]string{"pointer_click", sess, fmt.Sprint(start+1000) + `,"sceneId":"a","source":"` + src + `"`},
			[3]string{"pointer_move", sess, fmt.Sprint(start+5*60*1000) + `,"sceneId":"a","source":"mouse"`})
	}
	commitEvents(t, s, pnum, evs)
	rd := s.Reader()
	// The oracle: every headset session with events in range, ranked.
	oracle := func(q core.Query) []string {
		type cand struct {
			id   string
			from int64
		}
		var all []cand
		for i := 0; i < 12; i++ {
			if i%3 == 2 {
				continue
			}
			start := t0 + int64(i/2)*10*60*1000
			if start+5*60*1000 < q.Since || start > q.Until {
				continue
			}
			all = append(all, cand{fmt.Sprintf("x%02d", 11-i), max(start, q.Since)})
		}
		sort.Slice(all, func(a, b int) bool {
			if all[a].from != all[b].from {
				return all[a].from > all[b].from
			}
			return all[a].id < all[b].id
		})
		var ids []string
		for _, c := range all[:min(len(all), q.Limit)] {
			ids = append(ids, c.id)
		}
		return ids
	}
	for _, since := range []int64{0, t0 + 22*60*1000, t0 + 31*60*1000} {
		for limit := 1; limit <= 9; limit++ {
			q := core.DefaultQuery()
			q.Since, q.Limit = since, limit
			rows, err := rd.XRAbandonment(pnum, q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rows {
				got = append(got, r.SessionID)
			}
			if want := oracle(q); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("since %d, limit %d: %v, want %v", since-t0, limit, got, want)
			}
		}
	}
}

// stripXRCounts rewrites every session record of the project as a store
// folded before the records kept their headset count has it: no "xr".
func stripXRCounts(t *testing.T, s *Store, pnum uint32) {
	t.Helper()
	err := s.adb.Update(func(txn *badger.Txn) error {
		for _, ns := range []byte{nsSession, nsSessionIdx} {
			prefix := binary.BigEndian.AppendUint32([]byte{ns}, pnum)
			it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
			var keys, vals [][]byte
			for it.Rewind(); it.Valid(); it.Next() {
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					it.Close()
					return err
				}
				var rec SessionRecord
				if err := json.Unmarshal(v, &rec); err != nil {
					it.Close()
					return err
				}
				if rec.XR == nil {
					it.Close()
					return fmt.Errorf("record %s has no headset count", rec.ID)
				}
				rec.XR = nil
				b, _ := json.Marshal(&rec)
				keys, vals = append(keys, it.Item().KeyCopy(nil)), append(vals, b)
			}
			it.Close()
			for i := range keys {
				if err := txn.Set(keys[i], vals[i]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestXRAbandonmentRecordCount: the headset count a session's record
// keeps gives the same rows as reading its input cells, for every range,
// scene and limit; and a record folded before the count was kept stays
// without one when more events come, so it is read from its cells and
// stays right.
func TestXRAbandonmentRecordCount(t *testing.T) {
	s := openTest(t, Options{DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	t0 := int64(1795892400000)
	r := rand.New(rand.NewSource(3))
	sources := []string{"mouse", "touch", "xr-controller", "hand", "gaze", ""}
	batch := func(from, to int) [][3]string {
		var evs [][3]string
		for i := from; i < to; i++ {
			sess := fmt.Sprintf("s%03d", i%40)
			ts := t0 + int64(i)*7*60*1000 + r.Int63n(60_000)
			typ := []string{"pointer_click", "pointer_move", "scene_change", "camera_sample"}[r.Intn(4)]
			extra := fmt.Sprintf(`,"sceneId":"%c"`, 'a'+r.Intn(3))
			if src := sources[r.Intn(len(sources))]; src != "" && typ != "scene_change" && typ != "camera_sample" {
				extra += `,"source":"` + src + `"`
			}
			evs = append(evs, [3]string{typ, sess, fmt.Sprint(ts) + extra})
		}
		return evs
	}
	commitEvents(t, s, pnum, batch(0, 300))
	commitEvents(t, s, pnum, batch(300, 600)) // records updated by a second fold
	rd := s.Reader()
	queries := func() []core.Query {
		var qs []core.Query
		for _, since := range []int64{0, t0 + 5*hourMs + 123, t0 + 40*hourMs} {
			for _, until := range []int64{t0 + 20*hourMs, t0 + 100*hourMs} {
				for _, scene := range []string{"", "b"} {
					for _, limit := range []int{3, 500} {
						q := core.DefaultQuery()
						q.Since, q.Until, q.Scene, q.Limit = since, until, scene, limit
						qs = append(qs, q)
					}
				}
			}
		}
		return qs
	}
	answer := func() []string {
		var out []string
		for _, q := range queries() {
			rows, err := rd.XRAbandonment(pnum, q)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(rows))
		}
		return out
	}
	withCount := answer()
	if !strings.Contains(withCount[0], "s0") {
		t.Fatalf("no headset session in the mix: %s", withCount[0])
	}
	stripXRCounts(t, s, pnum)
	fromCells := answer()
	for i, q := range queries() {
		if withCount[i] != fromCells[i] {
			t.Errorf("since %d until %d scene %q limit %d:\nrecord %s\ncells  %s", q.Since, q.Until, q.Scene, q.Limit, withCount[i], fromCells[i])
		}
	}
	// More events for the same sessions after the strip: the records stay
	// without a count, and the rows are still those of the cells.
	commitEvents(t, s, pnum, batch(600, 700))
	rec, err := rd.sessionRecord(pnum, "s001")
	if err != nil {
		t.Fatal(err)
	}
	if rec.XR != nil {
		t.Fatalf("a record without a count got one from a later fold: %d", *rec.XR)
	}
	stripped := answer()
	s2 := openTest(t, Options{DisableAggregation: true})
	s2.Registry().CreateProject("p")
	p2 := s2.Registry().Project("p").Num
	r = rand.New(rand.NewSource(3))
	commitEvents(t, s2, p2, batch(0, 300))
	commitEvents(t, s2, p2, batch(300, 600))
	commitEvents(t, s2, p2, batch(600, 700))
	rd2 := s2.Reader()
	for i, q := range queries() {
		rows, err := rd2.XRAbandonment(p2, q)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(rows) != stripped[i] {
			t.Errorf("after a later fold, since %d scene %q limit %d:\ncounted %v\ncells   %s", q.Since, q.Scene, q.Limit, rows, stripped[i])
		}
	}
}
