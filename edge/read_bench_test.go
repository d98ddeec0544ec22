package edge_test

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/uptimizr/edge/core"
)

// BenchmarkReadAPI measures each read endpoint over HTTP on loopback against
// a project holding UPTIMIZR_BENCH_EVENTS aggregated events (default 10
// million): the 200-event fixture repeated with its events spread over seven
// days and a new session every five batches, committed through the storage
// sink and folded by the aggregator before timing starts.
func BenchmarkReadAPI(b *testing.B) {
	total := 10_000_000
	if v, err := strconv.Atoi(os.Getenv("UPTIMIZR_BENCH_EVENTS")); err == nil && v > 0 {
		total = v
	}
	h := startHarness(b, nil, true)
	defer h.close()
	var tmpl []map[string]any
	for _, f := range loadFixtures(b) {
		if strings.HasPrefix(f.name, "batch200_00") {
			tmpl = f.events
		}
	}
	type ev struct {
		t    core.EventType
		ts   int64
		json []byte
	}
	var evs []ev
	for _, e := range tmpl {
		t, _ := core.ParseEventType([]byte(e["type"].(string)))
		js, _ := json.Marshal(e)
		evs = append(evs, ev{t, int64(e["ts"].(float64)), js})
	}
	p := h.store.Registry().Project("a")
	batches := total / len(evs)
	const week = int64(7 * 24 * 3600 * 1000)
	start := time.Now()
	var sess string
	for i := 0; i < batches; i++ {
		if i%5 == 0 {
			sess = "bench-session-" + strconv.Itoa(i/5)
		}
		shift := int64(i) * week / int64(batches)
		bt := &core.Batch{ProjectID: "a", ProjectNum: p.Num}
		for _, e := range evs {
			bt.AppendEvent(e.t, e.ts+shift, []byte(sess), e.json)
		}
		if err := h.store.Sink().Commit(b.Context(), bt); err != nil {
			b.Fatal(err)
		}
	}
	if err := h.store.Aggregator().Sync(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Logf("built %d aggregated events in %s", batches*len(evs), time.Since(start).Round(time.Second))
	hc := &fasthttp.HostClient{Addr: strings.TrimPrefix(h.base, "http://")}
	day := strconv.FormatInt(evs[0].ts+3*24*3600*1000, 10)
	dayEnd := strconv.FormatInt(evs[0].ts+4*24*3600*1000, 10)
	for _, path := range []string{
		"event-counts", "event-counts?since=" + day + "&until=" + dayEnd, "event-counts?session=bench-session-7",
		"timeseries?interval=3600", "sessions", "sessions/bench-session-7/meta", "scenes", "meshes/top",
		"meshes/dwell", "hover/dwell", "perf", "perf/resources", "heatmaps/pointer?bins=20",
		"heatmaps/gaze?cellSize=1", "heatmaps/camera?bins=36",
	} {
		b.Run(strings.NewReplacer("?", "_", "&", "_", "=", "-").Replace(path), func(b *testing.B) {
			req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(res)
			req.SetRequestURI(h.base + "/api/v1/" + path)
			req.Header.Set("x-api-key", h.a.Query)
			for i := 0; i < b.N; i++ {
				if err := hc.Do(req, res); err != nil || res.StatusCode() != 200 {
					b.Fatalf("%v %d %s", err, res.StatusCode(), res.Body())
				}
			}
		})
	}
}
