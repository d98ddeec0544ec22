package edge

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/uptimizr/edge/core"
)

// route labels for request metrics.
type route uint8

const (
	routeCollect route = iota
	routeChannels
	routeHealth
	routeReady
	routeMetrics
	routePreflight
	routeOther
	routeRead        // aggregate endpoints
	routeSessionMeta // GET /api/v1/sessions/:id/meta
	routeSessionRaw  // GET /api/v1/sessions/:id/events
	routeScenes      // scene representations
	routeKeys        // key administration
	routePlugins     // plugin and quarantine administration
	routeLive        // live token, presence and streams
	numRoutes
)

var routeNames = [numRoutes]string{"collect", "channels", "health", "ready", "metrics", "preflight", "other",
	"read", "session_meta", "session_events", "scenes", "keys", "plugins", "live"}

// serverMetrics are pre-registered so that recording one allocates nothing.
type serverMetrics struct {
	set *metrics.Set

	requests   [numRoutes][len(knownStatusesArr)]*metrics.Counter
	events     [core.NumEventTypes][3]*metrics.Counter // accepted, rejected, filtered
	stripped   [core.NumStrips]*metrics.Counter
	bytesIn    [numEncodings]*metrics.Counter
	bytesDec   *metrics.Counter
	requestDur *metrics.PrometheusHistogram
	admitDur   *metrics.PrometheusHistogram
	decodeDur  *metrics.PrometheusHistogram
	commitDur  *metrics.PrometheusHistogram
	groupDur   *metrics.PrometheusHistogram
	groupReqs  *metrics.PrometheusHistogram
	commitErrs *metrics.Counter
	busy       *metrics.Counter
	pluginBusy *metrics.Counter
	admitWaits *metrics.Counter
	quarantine *metrics.Counter
	origins    [numOriginOutcomes]*metrics.Counter
}

// originOutcome labels uptimizr_origin_checks_total.
type originOutcome uint8

const (
	originAllowed      originOutcome = iota // Origin present and allowed
	originRefused                           // Origin present, not allowed: 403
	originAbsent                            // no Origin (server to server): allowed
	originAbsentDenied                      // no Origin, COLLECTOR_REQUIRE_ORIGIN: 403
	numOriginOutcomes
)

var originOutcomeNames = [numOriginOutcomes]string{"allowed", "refused", "absent", "absent_refused"}

var knownStatusesArr = [13]int{200, 201, 204, 400, 401, 403, 404, 405, 413, 415, 429, 500, 503}

var latencyBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

func newServerMetrics() *serverMetrics {
	m := &serverMetrics{set: metrics.NewSet()}
	for r := route(0); r < numRoutes; r++ {
		for i, st := range knownStatusesArr {
			m.requests[r][i] = m.set.NewCounter(fmt.Sprintf(`uptimizr_http_requests_total{route=%q,status="%d"}`, routeNames[r], st))
		}
	}
	outcomes := [3]string{"accepted", "rejected", "filtered"}
	for t := core.EventType(0); t < core.NumEventTypes; t++ {
		for o, name := range outcomes {
			m.events[t][o] = m.set.NewCounter(fmt.Sprintf(`uptimizr_events_total{type=%q,outcome=%q}`, t.String(), name))
		}
	}
	for s := core.Strip(0); s < core.NumStrips; s++ {
		m.stripped[s] = m.set.NewCounter(fmt.Sprintf(`uptimizr_events_stripped_total{channel=%q}`, s.String()))
	}
	for e := Encoding(0); e < numEncodings; e++ {
		m.bytesIn[e] = m.set.NewCounter(fmt.Sprintf(`uptimizr_ingest_bytes_total{encoding=%q}`, e.String()))
	}
	m.bytesDec = m.set.NewCounter(`uptimizr_ingest_decompressed_bytes_total`)
	m.requestDur = m.set.NewPrometheusHistogramExt(`uptimizr_ingest_request_seconds`, latencyBuckets)
	m.admitDur = m.set.NewPrometheusHistogramExt(`uptimizr_ingest_admission_wait_seconds`, latencyBuckets)
	m.decodeDur = m.set.NewPrometheusHistogramExt(`uptimizr_ingest_decode_seconds`, latencyBuckets)
	m.commitDur = m.set.NewPrometheusHistogramExt(`uptimizr_ingest_commit_seconds`, latencyBuckets)
	m.groupDur = m.set.NewPrometheusHistogramExt(`uptimizr_storage_group_commit_seconds`, latencyBuckets)
	m.groupReqs = m.set.NewPrometheusHistogramExt(`uptimizr_storage_group_commit_requests`, []float64{1, 2, 4, 8, 16, 32, 64, 128, 256})
	m.commitErrs = m.set.NewCounter(`uptimizr_storage_commit_errors_total`)
	m.busy = m.set.NewCounter(`uptimizr_ingest_busy_total`)
	m.pluginBusy = m.set.NewCounter(`uptimizr_ingest_plugin_busy_total`)
	m.admitWaits = m.set.NewCounter(`uptimizr_ingest_admission_waits_total`)
	m.quarantine = m.set.NewCounter(`uptimizr_events_quarantined_total`)
	for o := originOutcome(0); o < numOriginOutcomes; o++ {
		m.origins[o] = m.set.NewCounter(fmt.Sprintf(`uptimizr_origin_checks_total{outcome=%q}`, originOutcomeNames[o]))
	}
	return m
}

func (m *serverMetrics) request(r route, status int) {
	for i, st := range knownStatusesArr {
		if st == status {
			m.requests[r][i].Inc()
			return
		}
	}
	m.set.GetOrCreateCounter(`uptimizr_http_requests_total{route="` + routeNames[r] + `",status="` + strconv.Itoa(status) + `"}`).Inc()
}

// ObserveGroupCommit records one storage group commit; wire it to the
// storage committer's hook.
func (s *Server) ObserveGroupCommit(d time.Duration, requests, events int, err error) {
	s.m.groupDur.Update(d.Seconds())
	s.m.groupReqs.Update(float64(requests))
	if err != nil {
		s.m.commitErrs.Inc()
	}
}

// AddGauge exposes a value computed at scrape time (main wires storage and
// aggregator figures this way; edge does not know them).
func (s *Server) AddGauge(name string, f func() float64) { s.m.set.NewGauge(name, f) }

// write writes the server's metrics, then the standard Go runtime
// (go_memstats_*, go_goroutines, go_gc_*, …) and process ones
// (process_resident_memory_bytes, process_cpu_seconds_total,
// process_open_fds, …), in the Prometheus text format.
func (m *serverMetrics) write(w io.Writer) {
	m.set.WritePrometheus(w)
	metrics.WriteProcessMetrics(w)
	metrics.WriteFDMetrics(w)
}
