package edge_test

import (
	"math"
	"sort"
	"testing"
)

// median is the oracle's quantile_cont(·, 0.5).
func median(v []float64) float64 {
	v = append([]float64(nil), v...)
	sort.Float64s(v)
	pos := float64(len(v)-1) / 2
	lo, hi := int(math.Floor(pos)), int(math.Ceil(pos))
	return v[lo] + (pos-float64(lo))*(v[hi]-v[lo])
}

// TestPerfRoutesGolden ingests the fixtures through the server and checks
// the performance routes against answers computed from their events.
func TestPerfRoutesGolden(t *testing.T) {
	h := newReadHarness(t, nil)
	h.do("PUT", "/api/v1/channels", []byte(allChannels), map[string]string{"x-api-key": h.a.Admin})
	var all []map[string]any
	for _, f := range loadFixtures(t) {
		if r := h.collect(h.a.Ingest, f.body, nil); r.status != 200 || num(r.json(t), "accepted") != len(f.events) {
			t.Fatalf("%s: %d %s", f.name, r.status, r.body)
		}
		all = append(all, f.events...)
	}
	h.sync()
	fps := map[string][]float64{}
	var frames, stalls, lost, starts, incidents float64
	for _, e := range all {
		switch e["type"] {
		case "frame_perf":
			s := e["sessionId"].(string)
			fps[s] = append(fps[s], num64(e["fps"]))
			frames++
		case "compile_stall":
			stalls++
		case "context_lost":
			lost++
		case "session_start":
			starts++
		case "graphics_diagnostic":
			n := num64(e["count"])
			if n == 0 {
				n = 1
			}
			incidents += n
		}
	}
	if len(fps) < 2 || stalls == 0 || starts == 0 || incidents == 0 {
		t.Fatal("fixtures lack a kind of event the test relies on")
	}
	var medians []float64
	for _, v := range fps {
		medians = append(medians, median(v))
	}
	q := h.a.Query
	var dist []struct {
		Sessions int
		Samples  float64
		P50      float64 `json:"p50_fps"`
	}
	h.getJSON("/api/v1/perf/distribution", q, &dist)
	if len(dist) != 1 || dist[0].Sessions != len(fps) || dist[0].Samples != frames || math.Abs(dist[0].P50-median(medians)) > 0.25 {
		t.Errorf("perf/distribution %+v, want %d sessions, %v samples, p50 %v", dist, len(fps), frames, median(medians))
	}
	var dev []struct{ Sessions, Samples float64 }
	h.getJSON("/api/v1/perf/by-device", q, &dev)
	var devSessions, devSamples float64
	for _, d := range dev {
		devSessions += d.Sessions
		devSamples += d.Samples
	}
	if devSessions != float64(len(fps)) || devSamples != frames {
		t.Errorf("perf/by-device %+v", dev)
	}
	var st []struct {
		ContextLosses float64 `json:"context_losses"`
		CompileStalls float64 `json:"compile_stalls"`
		Incidents     float64
	}
	h.getJSON("/api/v1/perf/stability", q, &st)
	if len(st) != 1 || st[0].CompileStalls != stalls || st[0].ContextLosses != lost || st[0].Incidents != stalls+lost {
		t.Errorf("perf/stability %+v", st)
	}
	var cs []struct{ Stalls float64 }
	h.getJSON("/api/v1/perf/compile-stalls", q, &cs)
	var csSum float64
	for _, c := range cs {
		csSum += c.Stalls
	}
	if csSum != stalls {
		t.Errorf("perf/compile-stalls %+v, want %v stalls", cs, stalls)
	}
	var tech []struct{ Sessions float64 }
	h.getJSON("/api/v1/rendering-technology", q, &tech)
	var techSum float64
	for _, r := range tech {
		techSum += r.Sessions
	}
	if techSum != starts {
		t.Errorf("rendering-technology %+v, want %v session_starts", tech, starts)
	}
	var gd []struct{ Incidents float64 }
	h.getJSON("/api/v1/graphics-diagnostics", q, &gd)
	var gdSum float64
	for _, r := range gd {
		gdSum += r.Incidents
	}
	if gdSum != incidents {
		t.Errorf("graphics-diagnostics %+v, want %v", gd, incidents)
	}
	var rs []map[string]any
	h.getJSON("/api/v1/perf/render-scale", q, &rs)
	if len(rs) != 1 || num64(rs[0]["samples"]) != frames {
		t.Errorf("perf/render-scale %v", rs)
	}
	// An empty project answers one row of zeros and nulls, and no groups.
	var empty []map[string]any
	h.getJSON("/api/v1/perf/jank", h.b.Query, &empty)
	if len(empty) != 1 || empty[0]["sessions"] != 0.0 || empty[0]["median_rate"] != nil {
		t.Errorf("empty perf/jank %v", empty)
	}
	h.getJSON("/api/v1/perf/by-scene", h.b.Query, &empty)
	if len(empty) != 0 {
		t.Errorf("empty perf/by-scene %v", empty)
	}
}

// TestTrajectoryRoute: a session's path, one point per second of its
// camera samples, oldest first; another project's key sees none of it.
func TestTrajectoryRoute(t *testing.T) {
	h := newReadHarness(t, nil)
	fx := loadFixtures(t)
	seconds := map[string]map[int64]bool{}
	for _, f := range fx {
		h.collect(h.a.Ingest, f.body, nil)
		for _, e := range f.events {
			if e["type"] == "camera_sample" {
				s := e["sessionId"].(string)
				if seconds[s] == nil {
					seconds[s] = map[int64]bool{}
				}
				seconds[s][int64(num64(e["ts"]))/1000] = true
			}
		}
	}
	h.sync()
	for sess, secs := range seconds {
		var rows []struct {
			TS      int64
			X, Y, Z float64
		}
		if st := h.getJSON("/api/v1/sessions/"+sess+"/trajectory", h.a.Query, &rows); st != 200 || len(rows) != len(secs) {
			t.Errorf("%s: %d, %d points, want %d", sess, st, len(rows), len(secs))
		}
		for i := 1; i < len(rows); i++ {
			if rows[i].TS <= rows[i-1].TS {
				t.Errorf("%s: not oldest first", sess)
			}
		}
		var theirs []any
		if st := h.getJSON("/api/v1/sessions/"+sess+"/trajectory", h.b.Query, &theirs); st != 200 || len(theirs) != 0 {
			t.Errorf("b reads a's trajectory: %d %v", st, theirs)
		}
		if r := h.do("GET", "/api/v1/sessions/"+sess+"/trajectory?limit=10001", nil, map[string]string{"x-api-key": h.a.Query}); r.status != 400 {
			t.Errorf("limit 10001: %d", r.status)
		}
		if r := h.do("GET", "/api/v1/sessions/"+sess+"/trajectory", nil, map[string]string{"x-api-key": h.a.Ingest}); r.status != 403 {
			t.Errorf("ingest key: %d", r.status)
		}
	}
	if len(seconds) == 0 {
		t.Fatal("fixtures have no camera samples")
	}
}
