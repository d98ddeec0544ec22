package edge_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// readRoutes lists every aggregate read route with a valid query and the
// bad parameters it must refuse with a 400 naming them.
var readRoutes = []struct {
	path string
	bad  []string // "name=value"
}{
	{"event-counts", []string{"limit=0", "since=x"}},
	{"timeseries", []string{"interval=30", "until=1&since=2"}},
	{"sessions", []string{"limit=1001"}},
	{"scenes", []string{"scene=bad%20scene"}},
	{"meshes/top", []string{"limit=-1"}},
	{"meshes/dwell", []string{"since=-5"}},
	{"hover/dwell", []string{"until=abc"}},
	{"perf", []string{"limit=x"}},
	{"perf/resources", []string{"limit=0"}},
	{"heatmaps/pointer", []string{"bins=0"}},
	{"heatmaps/gaze", []string{"cellSize=0", "region=0,0,0,1,1", "region=1,0,0,0,1,1"}},
	{"heatmaps/gaze/stats", []string{"cellSize=-1"}},
	{"heatmaps/world", []string{"cellSize=x", "source=x", "region=a,b,c,d,e,f"}},
	{"heatmaps/world/stats", []string{"region=0,0,0,1,1,NaN"}},
	{"heatmaps/position", []string{"cellSize=0", "limit=10001"}},
	{"coverage", []string{"cellSize=1001", "limit=10001"}},
	{"navigation", []string{"moveThreshold=-1", "moveThreshold=1001"}},
	{"capabilities", []string{"limit=0"}},
	{"paths", []string{"cellSize=0", "limit=50001"}},
	{"heatmaps/click-rays", []string{"cellSize=0", "source=x", "limit=1001"}},
	{"heatmaps/flow", []string{"bins=0", "bins=501", "groupByOrigin=yes", "originVoxel=1,2", "originVoxel=a,b,c"}},
	{"heatmaps/camera", []string{"bins=501", "bins=0"}},
	{"interactions/sources", []string{"source=nose", "limit=0"}},
	{"xr/sources", []string{"limit=1001"}},
	{"xr/abandonment", []string{"scene=a%20b", "limit=1001"}},
	{"xr/rotation", []string{"rapidTurn=-1", "rapidTurn=4", "rapidTurn=x"}},
	{"meshes/kinds", []string{"source=Mouse"}},
	{"meshes/sources", []string{"source="}},
	{"meshes/trend", []string{"interval=90", "interval=0", "limit=5001", "source=x"}},
	{"clicks/dead", []string{"source=x", "since=x"}},
	{"clicks/rage", []string{"interval=0", "interval=61", "minRepeats=1", "minRepeats=101"}},
	{"input-actions/top", []string{"source=keyboards"}},
	{"camera-gestures", []string{"source=x", "limit=1001"}},
	{"camera/distance", []string{"bucketSize=0", "bucketSize=1001", "centerX=x", "centerZ=NaN", "centerY=1e16"}},
	{"perf/distribution", []string{"scene=bad%20scene"}},
	{"perf/fps-histogram", []string{"bucket=0", "bucket=241", "bucket=x"}},
	{"perf/frame-time", []string{"session="}},
	{"perf/jank", []string{"since=x"}},
	{"perf/by-device", []string{"until=x"}},
	{"perf/by-scene", []string{"limit=0"}},
	{"perf/resource-percentiles", []string{"since=-1"}},
	{"perf/stability", []string{"limit=1001"}},
	{"perf/render-scale", []string{"until=1&since=2"}},
	{"perf/compile-stalls", []string{"limit=1001"}},
	{"graphics-diagnostics", []string{"since=x"}},
	{"rendering-technology", []string{"limit=0"}},
}

// TestReadRoutesRefuse walks every read route: no key and a bad key get
// 401, an ingest key 403, a write method 405, each bad parameter a 400
// naming it, and project b's key sees none of project a's data.
func TestReadRoutesRefuse(t *testing.T) {
	h := newReadHarness(t, nil)
	h.do("PUT", "/api/v1/channels", []byte(allChannels), map[string]string{"x-api-key": h.a.Admin})
	for _, f := range loadFixtures(t) {
		h.collect(h.a.Ingest, f.body, nil)
	}
	// Three headset clicks on one mesh within a second: a rage click.
	rage := validEvent("pointer_click", `,"hitMesh":"door","source":"xr-controller"`)
	if r := h.collect(h.a.Ingest, batchOf(rage, rage, rage), nil); r.status != 200 {
		t.Fatal(r.status, string(r.body))
	}
	h.sync()
	for _, rt := range readRoutes {
		p := "/api/v1/" + rt.path
		if r := h.do("GET", p, nil, nil); r.status != 401 {
			t.Errorf("%s without a key: %d", rt.path, r.status)
		}
		if r := h.do("GET", p, nil, map[string]string{"x-api-key": "uk_nope"}); r.status != 401 {
			t.Errorf("%s with an unknown key: %d", rt.path, r.status)
		}
		if r := h.do("GET", p, nil, map[string]string{"x-api-key": h.a.Ingest}); r.status != 403 {
			t.Errorf("%s with an ingest key: %d", rt.path, r.status)
		}
		if r := h.do("POST", p, nil, map[string]string{"x-api-key": h.a.Query}); r.status != 405 {
			t.Errorf("POST %s: %d", rt.path, r.status)
		}
		for _, bad := range rt.bad {
			r := h.do("GET", p+"?"+bad, nil, map[string]string{"x-api-key": h.a.Query})
			name, _, _ := strings.Cut(bad, "=")
			if r.status != 400 || !strings.Contains(string(r.body), name) {
				t.Errorf("%s?%s: %d %s", rt.path, bad, r.status, r.body)
			}
		}
		var mineV, theirsV any
		if st := h.getJSON(p+"?projectId=a", h.a.Query, &mineV); st != 200 {
			t.Errorf("%s: %d", rt.path, st)
		}
		if st := h.getJSON(p+"?projectId=a", h.b.Query, &theirsV); st != 200 {
			t.Errorf("%s with b's key: %d", rt.path, st)
		}
		mine, theirs := asRows(mineV), asRows(theirsV)
		if len(theirs) != 0 && !allZero(theirs) {
			t.Errorf("%s: b's key sees %v", rt.path, theirs)
		}
		if len(mine) == 0 {
			t.Errorf("%s: a's key sees nothing of a's fixtures", rt.path)
		}
	}
}

// asRows is an answer as rows: an object answer is one row.
func asRows(v any) []map[string]any {
	switch x := v.(type) {
	case map[string]any:
		return []map[string]any{x}
	case []any:
		rows := make([]map[string]any, 0, len(x))
		for _, r := range x {
			m, _ := r.(map[string]any)
			rows = append(rows, m)
		}
		return rows
	}
	return nil
}

// allChannels turns every opt-in channel on.
const allChannels = `{"meshVisibility":true,"boundingBox":true,"hoverDwell":true,"resourceSample":true,"gaze":true,"captureErrors":true}`

// allZero reports whether every numeric field of every row is 0 or null
// (the one-row summaries answer zeros for a project without data).
func allZero(rows []map[string]any) bool {
	for _, r := range rows {
		for k, v := range r {
			if f, ok := v.(float64); ok && f != 0 && k != "cellSize" {
				return false
			}
		}
	}
	return true
}

// TestInteractionRoutesGolden ingests the fixtures through the server and
// checks the interaction routes against answers computed from the
// fixtures' events.
func TestInteractionRoutesGolden(t *testing.T) {
	h := newReadHarness(t, nil)
	h.do("PUT", "/api/v1/channels", []byte(allChannels), map[string]string{"x-api-key": h.a.Admin})
	var all []map[string]any
	for _, f := range loadFixtures(t) {
		r := h.collect(h.a.Ingest, compress(t, "gzip", f.body), map[string]string{"content-encoding": "gzip"})
		if r.status != 200 || num(r.json(t), "accepted") != len(f.events) {
			t.Fatalf("%s: %d %s", f.name, r.status, r.body)
		}
		all = append(all, f.events...)
	}
	h.sync()
	str := func(e map[string]any, k string) string { s, _ := e[k].(string); return s }
	src := func(e map[string]any) string {
		if s := str(e, "source"); s != "" {
			return s
		}
		return "mouse"
	}
	inputs := map[string]bool{"pointer_move": true, "pointer_click": true, "pointer_down": true, "pointer_up": true,
		"mesh_interaction": true, "hover_dwell": true, "camera_gesture": true, "input_action": true}
	pairs := map[string]int64{}
	pairSessions := map[string]map[string]bool{}
	kinds := map[string]int64{}
	active := map[string]int64{}
	actions := map[string]int64{}
	gestures := map[string][3]float64{}
	var clicks, dead int64
	for _, e := range all {
		typ := str(e, "type")
		if !inputs[typ] {
			continue
		}
		k := typ + "/" + src(e)
		pairs[k]++
		if pairSessions[k] == nil {
			pairSessions[k] = map[string]bool{}
		}
		pairSessions[k][str(e, "sessionId")] = true
		switch typ {
		case "mesh_interaction":
			kinds[str(e, "mesh")+"/"+str(e, "kind")]++
			active[str(e, "mesh")+"/"+src(e)]++
		case "pointer_click":
			clicks++
			if m := str(e, "hitMesh"); m == "" {
				dead++
			} else {
				active[m+"/"+src(e)]++
			}
		case "input_action":
			actions[str(e, "action")+"/"+src(e)]++
		case "camera_gesture":
			g := gestures[str(e, "kind")]
			d := num64(e["durationMs"])
			gestures[str(e, "kind")] = [3]float64{g[0] + 1, g[1] + d, math.Max(g[2], d)}
		}
	}
	if len(pairs) < 3 || len(kinds) == 0 || len(actions) == 0 || len(gestures) == 0 || clicks == 0 {
		t.Fatal("fixtures lack a kind of input event the test relies on")
	}
	q := h.a.Query
	var is []struct {
		EventType string `json:"event_type"`
		Source    string
		Count     int64
		Sessions  int64
	}
	h.getJSON("/api/v1/interactions/sources?limit=1000", q, &is)
	got := map[string]int64{}
	for _, r := range is {
		got[r.EventType+"/"+r.Source] = r.Count
		if want := int64(len(pairSessions[r.EventType+"/"+r.Source])); r.Sessions != want {
			t.Errorf("interactions/sources %s/%s: %d sessions, want %d", r.EventType, r.Source, r.Sessions, want)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(pairs) {
		t.Errorf("interactions/sources\n got %v\nwant %v", got, pairs)
	}
	var mk []struct {
		Mesh, Kind string
		Count      int64
	}
	h.getJSON("/api/v1/meshes/kinds?limit=1000", q, &mk)
	got = map[string]int64{}
	for _, r := range mk {
		got[r.Mesh+"/"+r.Kind] = r.Count
	}
	if fmt.Sprint(got) != fmt.Sprint(kinds) {
		t.Errorf("meshes/kinds\n got %v\nwant %v", got, kinds)
	}
	var ms []struct {
		Mesh, Source string
		Count        int64
	}
	h.getJSON("/api/v1/meshes/sources?limit=1000", q, &ms)
	got = map[string]int64{}
	for _, r := range ms {
		got[r.Mesh+"/"+r.Source] = r.Count
	}
	if fmt.Sprint(got) != fmt.Sprint(active) {
		t.Errorf("meshes/sources\n got %v\nwant %v", got, active)
	}
	var trend []struct {
		Mesh   string
		Bucket int64
		Count  int64
	}
	h.getJSON("/api/v1/meshes/trend?interval=60", q, &trend)
	var trendSum int64
	for i, r := range trend {
		trendSum += r.Count
		if r.Bucket%60000 != 0 || i > 0 && trend[i-1].Bucket > r.Bucket {
			t.Errorf("meshes/trend row %d: %+v", i, r)
		}
	}
	var activeSum int64
	for _, n := range active {
		activeSum += n
	}
	if trendSum != activeSum {
		t.Errorf("meshes/trend sums to %d, want %d", trendSum, activeSum)
	}
	var dc []struct {
		TotalClicks int64 `json:"total_clicks"`
		DeadClicks  int64 `json:"dead_clicks"`
	}
	h.getJSON("/api/v1/clicks/dead", q, &dc)
	if len(dc) != 1 || dc[0].TotalClicks != clicks || dc[0].DeadClicks != dead {
		t.Errorf("clicks/dead %+v, want %d/%d", dc, clicks, dead)
	}
	var ia []struct {
		Action, Source string
		Count          int64
	}
	h.getJSON("/api/v1/input-actions/top", q, &ia)
	got = map[string]int64{}
	for _, r := range ia {
		got[r.Action+"/"+r.Source] = r.Count
	}
	if fmt.Sprint(got) != fmt.Sprint(actions) {
		t.Errorf("input-actions/top\n got %v\nwant %v", got, actions)
	}
	var cg []struct {
		Kind     string
		Gestures int64
		TotalMs  float64 `json:"total_ms"`
		AvgMs    float64 `json:"avg_ms"`
		MaxMs    float64 `json:"max_ms"`
	}
	h.getJSON("/api/v1/camera-gestures", q, &cg)
	if len(cg) != len(gestures) {
		t.Errorf("camera-gestures %+v, want %v", cg, gestures)
	}
	for _, r := range cg {
		g := gestures[r.Kind]
		if float64(r.Gestures) != g[0] || !near(r.TotalMs, g[1]) || r.MaxMs != g[2] || !near(r.AvgMs, g[1]/g[0]) {
			t.Errorf("camera-gestures %+v, want %v", r, g)
		}
	}
	// A source filter keeps that source only.
	var touch []struct{ Source string }
	h.getJSON("/api/v1/interactions/sources?source=touch", q, &touch)
	for _, r := range touch {
		if r.Source != "touch" {
			t.Errorf("source=touch gave %+v", r)
		}
	}
}
