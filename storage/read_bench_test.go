package storage

import (
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/uptimizr/edge/core"
)

// BenchmarkReadLatency measures each read endpoint's query over one project
// holding UPTIMIZR_BENCH_EVENTS aggregated events (default 10 million): the
// fixture batch repeated with its events spread over seven days and a new
// session every five batches. Building the store takes a few minutes; each
// sub-benchmark then reports the latency of one query, and its p99.
func BenchmarkReadLatency(b *testing.B) {
	total := 10_000_000
	if v, err := strconv.Atoi(os.Getenv("UPTIMIZR_BENCH_EVENTS")); err == nil && v > 0 {
		total = v
	}
	s := openTest(b, Options{DisableAggregation: true})
	if _, err := s.Registry().CreateProject("bench"); err != nil {
		b.Fatal(err)
	}
	pnum := s.Registry().Project("bench").Num
	tmpl := fixtureBatch(b, pnum)
	batches := total / len(tmpl.Events)
	const week = int64(7 * 24 * 3600 * 1000)
	start := time.Now()
	var sessionID string
	for i := 0; i < batches; i++ {
		if i%5 == 0 {
			sessionID = "bench-session-" + strconv.Itoa(i/5)
		}
		shift := int64(i) * week / int64(batches)
		bt := &core.Batch{ProjectID: "bench", ProjectNum: pnum, ReceivedAt: tmpl.ReceivedAt}
		for j := range tmpl.Events {
			e := tmpl.Events[j]
			bt.AppendEvent(e.Type, e.TS+shift, []byte(sessionID), tmpl.JSON(j))
		}
		if err := s.Sink().Commit(b.Context(), bt); err != nil {
			b.Fatal(err)
		}
		if i%foldRecords == foldRecords-1 || i == batches-1 {
			if err := s.Aggregator().foldUntilCaughtUp(nil, pnum); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Logf("built %d aggregated events (%d sessions) in %s", batches*len(tmpl.Events), (batches+4)/5, time.Since(start).Round(time.Second))
	r := s.Reader()
	q := core.DefaultQuery()
	q.Limit = 100
	day := q
	day.Since = tmpl.Events[0].TS + 3*24*3600*1000
	day.Until = day.Since + 24*3600*1000
	sess := q
	sess.Session = "bench-session-7"
	cases := []struct {
		name string
		fn   func() error
	}{
		{"event-counts", func() error { _, err := r.EventCounts(pnum, q); return err }},
		{"event-counts/one-day", func() error { _, err := r.EventCounts(pnum, day); return err }},
		{"event-counts/one-session", func() error { _, err := r.EventCounts(pnum, sess); return err }},
		{"timeseries/1h", func() error { _, err := r.Timeseries(pnum, q, time.Hour); return err }},
		{"sessions", func() error { _, err := r.Sessions(pnum, q); return err }},
		{"sessions/one-day", func() error { _, err := r.Sessions(pnum, day); return err }},
		{"session-meta", func() error { _, err := r.SessionMeta(pnum, "bench-session-7"); return err }},
		{"scenes", func() error { _, err := r.Scenes(pnum, q); return err }},
		{"meshes/top", func() error { _, err := r.MeshTop(pnum, q); return err }},
		{"meshes/dwell", func() error { _, err := r.MeshDwell(pnum, q); return err }},
		{"hover/dwell", func() error { _, err := r.HoverDwell(pnum, q); return err }},
		{"perf", func() error { _, err := r.Perf(pnum, q); return err }},
		{"perf/resources", func() error { _, err := r.Resources(pnum, q); return err }},
		{"heatmaps/pointer", func() error { _, err := r.HeatPointer(pnum, q, 20); return err }},
		{"heatmaps/gaze", func() error { _, err := r.HeatGaze(pnum, q, 1, nil); return err }},
		{"heatmaps/camera", func() error { _, err := r.HeatCamera(pnum, q, 36); return err }},
	}
	cases = append(cases, []struct {
		name string
		fn   func() error
	}{
		{"interactions/sources", func() error { _, err := r.InteractionSources(pnum, q); return err }},
		{"xr/sources", func() error { _, err := r.XRSources(pnum, q); return err }},
		{"xr/abandonment", func() error { _, err := r.XRAbandonment(pnum, q); return err }},
		{"xr/rotation", func() error { _, err := r.XRRotation(pnum, q, 0.5); return err }},
		{"meshes/kinds", func() error { _, err := r.MeshKinds(pnum, q); return err }},
		{"meshes/sources", func() error { _, err := r.MeshSources(pnum, q); return err }},
		{"meshes/trend", func() error { _, err := r.MeshTrend(pnum, q, hourMs); return err }},
		{"clicks/dead", func() error { _, err := r.DeadClicks(pnum, q); return err }},
		{"clicks/rage", func() error { _, err := r.RageClicks(pnum, q, 2, 3); return err }},
		{"input-actions/top", func() error { _, err := r.InputActions(pnum, q); return err }},
		{"camera-gestures", func() error { _, err := r.CameraGestures(pnum, q); return err }},
		{"camera/distance", func() error { _, err := r.CameraDistance(pnum, q, [3]float64{}, 1); return err }},
		{"perf/distribution", func() error { _, err := r.PerfDistribution(pnum, q); return err }},
		{"perf/fps-histogram", func() error { _, err := r.FPSHistogram(pnum, q, 10); return err }},
		{"perf/frame-time", func() error { _, err := r.FrameTime(pnum, q); return err }},
		{"perf/jank", func() error { _, err := r.Jank(pnum, q); return err }},
		{"perf/by-device", func() error { _, err := r.PerfByDevice(pnum, q); return err }},
		{"perf/by-scene", func() error { _, err := r.PerfByScene(pnum, q); return err }},
		{"perf/resource-percentiles", func() error { _, err := r.ResourcePercentiles(pnum, q); return err }},
		{"perf/stability", func() error { _, err := r.Stability(pnum, q); return err }},
		{"perf/render-scale", func() error { _, err := r.RenderScale(pnum, q); return err }},
		{"perf/compile-stalls", func() error { _, err := r.CompileStalls(pnum, q); return err }},
		{"graphics-diagnostics", func() error { _, err := r.GraphicsDiagnostics(pnum, q); return err }},
		{"rendering-technology", func() error { _, err := r.RenderingTechnology(pnum, q); return err }},
		{"heatmaps/world", func() error { _, err := r.HeatWorld(pnum, q, 0.5, nil); return err }},
		{"heatmaps/world/stats", func() error { _, err := r.WorldStats(pnum, q, 0.5, nil); return err }},
		{"heatmaps/gaze/stats", func() error { _, err := r.GazeStats(pnum, q, 0.5, nil); return err }},
		{"heatmaps/position", func() error { _, err := r.HeatPosition(pnum, q, 1, nil); return err }},
		{"heatmaps/click-rays", func() error { _, err := r.ClickRays(pnum, q, 0.5); return err }},
		{"heatmaps/flow", func() error { _, err := r.Flow(pnum, q, 24, 0.5, true, nil); return err }},
		{"coverage", func() error { _, err := r.Coverage(pnum, q, 1); return err }},
		{"navigation", func() error { _, err := r.Navigation(pnum, q, 0.05); return err }},
		{"capabilities", func() error { _, err := r.Capabilities(pnum, q); return err }},
		{"paths", func() error {
			pq := q
			pq.Limit = 20000
			_, err := r.Paths(pnum, pq, 1)
			return err
		}},
		{"sessions/trajectory", func() error {
			tq := q
			tq.Limit = 5000
			_, err := r.Trajectory(pnum, tq, "bench-session-7")
			return err
		}},
	}...)
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			took := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if err := c.fn(); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[(len(took)-1)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
