package edge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"
)

// golden holds what the read API must answer, computed here from the
// fixture events independently of the aggregator.
type golden struct {
	counts   map[string]int64
	hourly   map[int64][2]float64 // bucket → events, fps sum; fps count in fpsN
	fpsN     map[int64]float64
	sessions map[string][3]int64 // events, first ts, last ts
	scenes   map[string][2]int64 // events, last ts
	meshTop  map[string]int64
	dwell    map[string][4]float64
	hover    map[string][3]float64
	fps      []float64
	pointer  map[[2]int]int64
	gaze     map[[3]int64]int64
	camera   map[[2]int]int64
}

func num64(v any) float64 { f, _ := v.(float64); return f }

func computeGolden(events []map[string]any, pointerBins, cameraBins int, cell float64) *golden {
	g := &golden{counts: map[string]int64{}, hourly: map[int64][2]float64{}, fpsN: map[int64]float64{},
		sessions: map[string][3]int64{}, scenes: map[string][2]int64{}, meshTop: map[string]int64{},
		dwell: map[string][4]float64{}, hover: map[string][3]float64{}, pointer: map[[2]int]int64{},
		gaze: map[[3]int64]int64{}, camera: map[[2]int]int64{}}
	for _, e := range events {
		typ := e["type"].(string)
		ts := int64(num64(e["ts"]))
		g.counts[typ]++
		b := ts - ts%3600000
		h := g.hourly[b]
		h[0]++
		s := g.sessions[e["sessionId"].(string)]
		if s[0] == 0 {
			s[1], s[2] = ts, ts
		}
		s[0]++
		s[1], s[2] = min(s[1], ts), max(s[2], ts)
		g.sessions[e["sessionId"].(string)] = s
		scene, _ := e["sceneId"].(string)
		if scene == "" {
			scene = "default"
		}
		sc := g.scenes[scene]
		sc[0]++
		sc[1] = max(sc[1], ts)
		g.scenes[scene] = sc
		switch typ {
		case "frame_perf":
			f := num64(e["fps"])
			h[1] += f
			g.fpsN[b]++
			g.fps = append(g.fps, f)
		case "mesh_interaction":
			g.meshTop[e["mesh"].(string)]++
		case "mesh_visibility":
			d := g.dwell[e["mesh"].(string)]
			d[0] += num64(e["visibleMs"])
			d[1] += num64(e["centeredMs"])
			d[2] = math.Max(d[2], num64(e["maxScreenFraction"]))
			d[3]++
			g.dwell[e["mesh"].(string)] = d
		case "hover_dwell":
			d := g.hover[e["mesh"].(string)]
			d[0] += num64(e["dwellMs"])
			d[1] = math.Max(d[1], num64(e["dwellMs"]))
			d[2]++
			g.hover[e["mesh"].(string)] = d
		case "pointer_move", "pointer_click":
			if sc, ok := e["screen"].([]any); ok {
				x, y := num64(sc[0]), num64(sc[1])
				gx := min(99, int(math.Floor(x*100))) * pointerBins / 100
				gy := min(99, int(math.Floor(y*100))) * pointerBins / 100
				g.pointer[[2]int{gx, gy}]++
			}
		case "camera_sample":
			if hp, ok := e["hitPoint"].([]any); ok {
				var v [3]int64
				for i := range v {
					v[i] = int64(math.Floor(math.Floor(num64(hp[i])/0.1) / math.Round(cell/0.1)))
				}
				g.gaze[v]++
			}
			if d, ok := e["direction"].([]any); ok {
				x, y, z := num64(d[0]), num64(d[1]), num64(d[2])
				n := math.Sqrt(x*x + y*y + z*z)
				az := math.Atan2(x, z) * 180 / math.Pi
				if az < 0 {
					az += 360
				}
				el := math.Asin(y/n) * 180 / math.Pi
				ai, ei := min(359, int(math.Floor(az))), max(0, min(179, int(math.Floor(el+90))))
				// The reference's azimuth, atan2(z, x) + π, of the 1° cell's middle.
				ref := math.Mod(269.5-float64(ai)+360, 360)
				g.camera[[2]int{int(ref / 360 * float64(cameraBins)), int((float64(ei) + 0.5) / 180 * float64(cameraBins))}]++
			}
		}
		g.hourly[b] = h
	}
	return g
}

func (h *harness) getJSON(path, key string, v any) int {
	h.t.Helper()
	r := h.do("GET", path, nil, map[string]string{"x-api-key": key})
	if r.status == 200 {
		if err := json.Unmarshal(r.body, v); err != nil {
			h.t.Fatalf("%s: %v: %s", path, err, r.body)
		}
	}
	return r.status
}

func (h *harness) sync() {
	h.t.Helper()
	if err := h.store.Aggregator().Sync(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

func TestReadAPIGolden(t *testing.T) {
	h := newReadHarness(t, nil)
	h.do("PUT", "/api/v1/channels", []byte(`{"meshVisibility":true,"boundingBox":true,"hoverDwell":true,"resourceSample":true,"gaze":true,"captureErrors":true}`), map[string]string{"x-api-key": h.a.Admin})
	var all []map[string]any
	for _, f := range loadFixtures(t) {
		r := h.collect(h.a.Ingest, compress(t, "zstd", f.body), map[string]string{"content-encoding": "zstd"})
		if r.status != 200 || num(r.json(t), "accepted") != len(f.events) {
			t.Fatalf("%s: %d %s", f.name, r.status, r.body)
		}
		all = append(all, f.events...)
	}
	// A few resource samples of a scene of their own, whose figures are
	// known (the fixtures carry one in another scene).
	var res []string
	var heap []float64
	for i := 0; i < 5; i++ {
		hb := float64(1000 * (i + 1))
		heap = append(heap, hb)
		res = append(res, validEvent("resource_sample", fmt.Sprintf(`,"sceneId":"res-test","jsHeapBytes":%v,"triangles":%d`, hb, 10*i)))
	}
	if r := h.collect(h.a.Ingest, batchOf(res...), nil); num(r.json(t), "accepted") != 5 {
		t.Fatal(string(r.body))
	}
	h.sync()
	g := computeGolden(all, 10, 36, 1)
	if len(g.meshTop) == 0 || len(g.dwell) == 0 || len(g.hover) == 0 || len(g.pointer) == 0 || len(g.camera) == 0 || len(g.fps) == 0 {
		t.Fatal("fixtures lack a kind of event the golden test relies on")
	}
	q := h.a.Query

	var counts []struct {
		EventType string `json:"event_type"`
		Count     int64
	}
	h.getJSON("/api/v1/event-counts?limit=1000", q, &counts)
	got := map[string]int64{}
	for _, c := range counts {
		got[c.EventType] = c.Count
	}
	g.counts["resource_sample"] += 5
	if fmt.Sprint(got) != fmt.Sprint(g.counts) {
		t.Errorf("event-counts\n got %v\nwant %v", got, g.counts)
	}
	for i := 1; i < len(counts); i++ {
		if counts[i].Count > counts[i-1].Count {
			t.Error("event-counts not ordered by count")
		}
	}

	var ts []struct {
		Bucket int64
		Events int64
		AvgFPS *float64 `json:"avg_fps"`
	}
	h.getJSON("/api/v1/timeseries?interval=3600&limit=1000", q, &ts)
	var evSum int64
	rb := int64(1795892750979 - 1795892750979%3600000) // the resource samples' hour
	hr := g.hourly[rb]
	hr[0] += 5
	g.hourly[rb] = hr
	if len(ts) != len(g.hourly) {
		t.Errorf("timeseries has %d buckets, want %d", len(ts), len(g.hourly))
	}
	for _, row := range ts {
		want := g.hourly[row.Bucket]
		evSum += row.Events
		if int64(want[0]) != row.Events {
			t.Errorf("timeseries bucket %d: events %d want %v", row.Bucket, row.Events, want[0])
		}
		if n := g.fpsN[row.Bucket]; n > 0 {
			if row.AvgFPS == nil || !near(*row.AvgFPS, want[1]/n) {
				t.Errorf("timeseries bucket %d: avg_fps %v want %v", row.Bucket, row.AvgFPS, want[1]/n)
			}
		} else if row.AvgFPS != nil {
			t.Errorf("timeseries bucket %d: avg_fps %v without frame_perf", row.Bucket, *row.AvgFPS)
		}
	}
	if evSum != int64(len(all))+5 {
		t.Errorf("timeseries events sum %d, want %d", evSum, len(all)+5)
	}

	var sessions []struct {
		SessionID string `json:"session_id"`
		VisitorID string `json:"visitor_id"`
		Events    int64
		StartedAt string `json:"started_at"`
		EndedAt   string `json:"ended_at"`
	}
	h.getJSON("/api/v1/sessions?limit=1000", q, &sessions)
	iso := func(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z") }
	g.sessions["s1"] = [3]int64{5, 1795892750979, 1795892750979}
	if len(sessions) != len(g.sessions) {
		t.Fatalf("%d sessions, want %d", len(sessions), len(g.sessions))
	}
	for _, s := range sessions {
		w := g.sessions[s.SessionID]
		if s.Events != w[0] || s.StartedAt != iso(w[1]) || s.EndedAt != iso(w[2]) || len(s.VisitorID) != 32 {
			t.Errorf("session %s: %+v want %v", s.SessionID, s, w)
		}
	}

	var scenes []struct {
		SceneID  string `json:"scene_id"`
		Events   int64
		LastSeen string `json:"last_seen"`
	}
	h.getJSON("/api/v1/scenes?limit=1000", q, &scenes)
	g.scenes["res-test"] = [2]int64{5, 1795892750979}
	if len(scenes) != len(g.scenes) {
		t.Fatalf("scenes %v want %v", scenes, g.scenes)
	}
	for _, s := range scenes {
		w := g.scenes[s.SceneID]
		if s.Events != w[0] || s.LastSeen != iso(w[1]) {
			t.Errorf("scene %s: %+v want %v", s.SceneID, s, w)
		}
	}

	var top []struct {
		Mesh  string
		Count int64
	}
	h.getJSON("/api/v1/meshes/top?limit=1000", q, &top)
	if len(top) != len(g.meshTop) {
		t.Fatalf("meshes/top %d rows want %d", len(top), len(g.meshTop))
	}
	for _, m := range top {
		if m.Count != g.meshTop[m.Mesh] {
			t.Errorf("meshes/top %s: %d want %d", m.Mesh, m.Count, g.meshTop[m.Mesh])
		}
	}

	var dwell []struct {
		Mesh       string
		VisibleMs  float64 `json:"visible_ms"`
		CenteredMs float64 `json:"centered_ms"`
		MaxFrac    float64 `json:"max_screen_fraction"`
		Samples    int64
	}
	h.getJSON("/api/v1/meshes/dwell?limit=1000", q, &dwell)
	if len(dwell) != len(g.dwell) {
		t.Fatalf("meshes/dwell %d rows want %d", len(dwell), len(g.dwell))
	}
	for _, d := range dwell {
		w := g.dwell[d.Mesh]
		if !near(d.VisibleMs, w[0]) || !near(d.CenteredMs, w[1]) || !near(d.MaxFrac, w[2]) || d.Samples != int64(w[3]) {
			t.Errorf("meshes/dwell %s: %+v want %v", d.Mesh, d, w)
		}
	}

	var hover []struct {
		Mesh     string
		DwellMs  float64 `json:"dwell_ms"`
		MaxDwell float64 `json:"max_dwell_ms"`
		Episodes int64
	}
	h.getJSON("/api/v1/hover/dwell?limit=1000", q, &hover)
	if len(hover) != len(g.hover) {
		t.Fatalf("hover/dwell %d rows want %d", len(hover), len(g.hover))
	}
	for _, d := range hover {
		w := g.hover[d.Mesh]
		if !near(d.DwellMs, w[0]) || !near(d.MaxDwell, w[1]) || d.Episodes != int64(w[2]) {
			t.Errorf("hover/dwell %s: %+v want %v", d.Mesh, d, w)
		}
	}

	var perf []struct {
		Samples int64
		AvgFPS  float64 `json:"avg_fps"`
		MinFPS  float64 `json:"min_fps"`
		P50FPS  float64 `json:"p50_fps"`
	}
	h.getJSON("/api/v1/perf", q, &perf)
	sort.Float64s(g.fps)
	var sum float64
	for _, f := range g.fps {
		sum += f
	}
	median := g.fps[(len(g.fps)+1)/2-1]
	if len(perf) != 1 || perf[0].Samples != int64(len(g.fps)) || !near(perf[0].AvgFPS, sum/float64(len(g.fps))) ||
		!near(perf[0].MinFPS, g.fps[0]) || math.Abs(perf[0].P50FPS-median) > 0.25 {
		t.Errorf("perf %+v want samples %d avg %v min %v p50≈%v", perf, len(g.fps), sum/float64(len(g.fps)), g.fps[0], median)
	}

	var resources []map[string]any
	h.getJSON("/api/v1/perf/resources?scene=res-test", q, &resources)
	if len(resources) != 1 || num64(resources[0]["samples"]) != 5 || num64(resources[0]["avg_js_heap_bytes"]) != 3000 ||
		num64(resources[0]["max_js_heap_bytes"]) != 5000 || num64(resources[0]["max_triangles"]) != 40 || resources[0]["avg_vertices"] != nil {
		t.Errorf("perf/resources %v (heap %v)", resources, heap)
	}

	var ptr []struct {
		GX, GY int
		Count  int64
	}
	h.getJSON("/api/v1/heatmaps/pointer?bins=10&limit=1000", q, &ptr)
	gotPtr := map[[2]int]int64{}
	for _, c := range ptr {
		gotPtr[[2]int{c.GX, c.GY}] = c.Count
	}
	if fmt.Sprint(gotPtr) != fmt.Sprint(g.pointer) {
		t.Errorf("pointer heatmap\n got %v\nwant %v", gotPtr, g.pointer)
	}

	var gaze []struct{ VX, VY, VZ, Count int64 }
	h.getJSON("/api/v1/heatmaps/gaze?cellSize=1&limit=1000", q, &gaze)
	gotGaze := map[[3]int64]int64{}
	for _, c := range gaze {
		gotGaze[[3]int64{c.VX, c.VY, c.VZ}] = c.Count
	}
	if len(g.gaze) == 0 || fmt.Sprint(gotGaze) != fmt.Sprint(g.gaze) {
		t.Errorf("gaze heatmap\n got %v\nwant %v", gotGaze, g.gaze)
	}

	var cam []struct {
		Az    int `json:"azimuth_bin"`
		El    int `json:"elevation_bin"`
		Count int64
	}
	h.getJSON("/api/v1/heatmaps/camera?bins=36&limit=1000", q, &cam)
	gotCam := map[[2]int]int64{}
	for _, c := range cam {
		gotCam[[2]int{c.Az, c.El}] = c.Count
	}
	if fmt.Sprint(gotCam) != fmt.Sprint(g.camera) {
		t.Errorf("camera heatmap\n got %v\nwant %v", gotCam, g.camera)
	}
}

func TestReadAPIFiltersAndParams(t *testing.T) {
	h := newReadHarness(t, nil)
	fx := loadFixtures(t)
	for _, f := range fx {
		h.collect(h.a.Ingest, f.body, nil)
	}
	h.sync()
	q := h.a.Query
	// Session filter: counts of one session only.
	sess := fx[0].events[0]["sessionId"].(string)
	want := map[string]int64{}
	var first, last int64 = math.MaxInt64, 0
	for _, f := range fx {
		for _, e := range f.events {
			if t := e["type"]; e["sessionId"] == sess && t != "mesh_visibility" && t != "hover_dwell" && t != "resource_sample" && t != "runtime_error" {
				want[e["type"].(string)]++
				ts := int64(num64(e["ts"]))
				first, last = min(first, ts), max(last, ts)
			}
		}
	}
	var counts []struct {
		EventType string `json:"event_type"`
		Count     int64
	}
	h.getJSON("/api/v1/event-counts?session="+sess+"&projectId=b&unknown=1", q, &counts)
	got := map[string]int64{}
	for _, c := range counts {
		got[c.EventType] = c.Count
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("session filter\n got %v\nwant %v", got, want)
	}
	// since/until outside the data → nothing; limit bounds rows.
	h.getJSON(fmt.Sprintf("/api/v1/event-counts?since=%d", last+3600000), q, &counts)
	if len(counts) != 0 {
		t.Errorf("since after the data: %v", counts)
	}
	h.getJSON("/api/v1/event-counts?limit=2", q, &counts)
	if len(counts) != 2 {
		t.Errorf("limit=2 gave %d rows", len(counts))
	}
	for _, bad := range []string{"limit=0", "limit=1001", "since=-1", "since=abc", "until=1&since=2", "scene=bad%20scene", "interval=30", "interval=90"} {
		path := "/api/v1/timeseries?" + bad
		r := h.do("GET", path, nil, map[string]string{"x-api-key": q})
		if r.status != 400 || !strings.Contains(string(r.body), `"error"`) {
			t.Errorf("%s: %d %s", bad, r.status, r.body)
		}
	}
	for _, bad := range []string{"heatmaps/pointer?bins=0", "heatmaps/pointer?bins=501", "heatmaps/camera?bins=501", "heatmaps/gaze?cellSize=0", "heatmaps/gaze?cellSize=1001", "heatmaps/gaze?region=1,2,3"} {
		if r := h.do("GET", "/api/v1/"+bad, nil, map[string]string{"x-api-key": q}); r.status != 400 {
			t.Errorf("%s: %d", bad, r.status)
		}
	}
	// Capabilities: ingest-only keys cannot read.
	if r := h.do("GET", "/api/v1/event-counts", nil, map[string]string{"x-api-key": h.a.Ingest}); r.status != 403 {
		t.Errorf("ingest key read: %d", r.status)
	}
	if r := h.do("GET", "/api/v1/event-counts", nil, nil); r.status != 401 {
		t.Errorf("no key: %d", r.status)
	}
	// Session meta.
	var meta map[string]any
	if st := h.getJSON("/api/v1/sessions/"+sess+"/meta", q, &meta); st != 200 || meta["device"] == nil || meta["connector"] == nil ||
		meta["sessionId"] != sess || meta["startedAt"] != meta["started_at"] || meta["startedAt"] == "" {
		t.Errorf("meta: %d %v", st, meta)
	}
	if dev, _ := meta["device"].(map[string]any); dev["browser"] != "bot" || dev["engine"] != sessionStartDevice(t, fx, sess)["engine"] {
		t.Errorf("meta device %v", meta["device"])
	}
	if r := h.do("GET", "/api/v1/sessions/nope/meta", nil, map[string]string{"x-api-key": q}); r.status != 404 {
		t.Errorf("unknown session meta: %d", r.status)
	}
	// Tenant isolation: b's key sees nothing of a's data, whatever it asks.
	for _, path := range []string{"/api/v1/event-counts", "/api/v1/sessions", "/api/v1/scenes", "/api/v1/meshes/top", "/api/v1/heatmaps/pointer", "/api/v1/event-counts?session=" + sess, "/api/v1/event-counts?projectId=a"} {
		var rows []any
		if st := h.getJSON(path, h.b.Query, &rows); st != 200 || len(rows) != 0 {
			t.Errorf("b sees a's data at %s: %d %v", path, st, rows)
		}
	}
	if r := h.do("GET", "/api/v1/sessions/"+sess+"/meta", nil, map[string]string{"x-api-key": h.b.Query}); r.status != 404 {
		t.Errorf("b reads a's session meta: %d", r.status)
	}
}

// sessionStartDevice is the device object of session sess's session_start
// in the fixtures.
func sessionStartDevice(t *testing.T, fx []fixture, sess string) map[string]any {
	t.Helper()
	for _, f := range fx {
		for _, e := range f.events {
			if e["sessionId"] == sess && e["type"] == "session_start" {
				if d, ok := e["device"].(map[string]any); ok {
					return d
				}
			}
		}
	}
	t.Fatalf("no session_start with a device for session %s in the fixtures", sess)
	return nil
}
