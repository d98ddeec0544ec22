package storage

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/uptimizr/edge/core"
)

// BenchmarkReadLatency measures each read endpoint's query over one project
// holding UPTIMIZR_BENCH_EVENTS aggregated events (default 10 million): the
// fixture batch repeated with its events spread over seven days and a new
// session every five batches. Building the store takes a minute or so; each
// sub-benchmark then reports the latency of one query.
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
			for {
				n, err := s.Aggregator().foldProject(pnum, foldRecords)
				if err != nil {
					b.Fatal(err)
				}
				if n < foldRecords {
					break
				}
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
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := c.fn(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
