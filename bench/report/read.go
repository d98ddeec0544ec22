package report

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Read is a run of the read scenario (bench/suite/read.go): a collector
// loaded with events through its ingest endpoint, then every read route
// requested in turn once the aggregator has caught up.
type Read struct {
	Machine   Machine
	Started   time.Time
	Retention bool // ENABLE_RAW_SESSION_RETENTION

	// The load.
	Events            int64 // events sent in batches answered 200
	Batches           int64
	BatchSize         int
	Sessions          int
	BatchesPerSession int
	Concurrency       int
	// From and To bound the events' timestamps.
	From, To     time.Time
	LoadTime     time.Duration
	IngestP50    time.Duration
	IngestP99    time.Duration
	Retries      int64 // 429 or 503 answers, whose batch was sent again
	Accepted     int64
	Rejected     int64
	Filtered     int64
	LoadCPU      float64 // cores the collector used during the load
	LoadPeakRSS  int64
	LagAtLoadEnd int64 // uptimizr_aggregator_lag_records when the last batch was answered
	// CatchUp runs from the last batch's answer until the aggregator's lag
	// was 0 (and stayed so).
	CatchUp      time.Duration
	FoldedEvents int64   // uptimizr_aggregator_folded_events once caught up
	DataDirBytes int64   // the data dir's size once caught up
	ReadCPU      float64 // cores the collector used during the reads

	// The reads.
	Requests int           // per route
	Target   time.Duration // the p99 a route must meet
	Session  string        // the session the session routes read
	Scene    string        // the scene the scene routes read
	// Week and Day are the range parameters the routes' Shown abbreviate
	// as {week} and {day}.
	Week, Day string
	Routes    []ReadRoute
	ReadTime  time.Duration
	Notes     []string
}

// ReadRoute is one read route's requests.
type ReadRoute struct {
	Name string // the route, e.g. "sessions/:id/meta", or a variant "event-counts (one day)"
	Path string // what was requested, with its query
	// Shown is Path for people: the range as {week} or {day} (Read.Week,
	// Read.Day), ids and the funnel's steps unescaped.
	Shown string
	// Raw marks a route that reads raw session events: without retention
	// it answers 403 by design.
	Raw       bool
	Latencies []time.Duration // in the order of the requests
	Sizes     []int           // response body bytes, in the same order
	Statuses  []int
	// FirstError is the first answer that was neither 200 nor the 403 of a
	// raw route without retention ("status body").
	FirstError string
}

// ByDesign reports whether the route answered 403 on every request because
// raw session retention is off, as documented.
func (r ReadRoute) ByDesign(retention bool) bool {
	if !r.Raw || retention || len(r.Statuses) == 0 {
		return false
	}
	for _, s := range r.Statuses {
		if s != 403 {
			return false
		}
	}
	return r.FirstError == ""
}

// Errors counts the requests answered neither 200 nor, for a raw route
// without retention, 403.
func (r ReadRoute) Errors(retention bool) int {
	n := 0
	for _, s := range r.Statuses {
		if s != 200 && !(r.Raw && !retention && s == 403) {
			n++
		}
	}
	if n == 0 && r.FirstError != "" {
		n = 1 // a 403 that was not the retention's
	}
	return n
}

// Quantile is the q-quantile (0–1) of the latencies, interpolated linearly
// between the two nearest ranks (as quantile_cont, or R's type 7): with 50
// requests, p99 lies between the two slowest.
func Quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(s)-1)
	f := pos - float64(lo)
	return s[lo] + time.Duration(math.Round(f*float64(s[hi]-s[lo])))
}

// P50, P99 and Max summarise the route's latencies.
func (r ReadRoute) P50() time.Duration { return Quantile(r.Latencies, 0.50) }
func (r ReadRoute) P99() time.Duration { return Quantile(r.Latencies, 0.99) }
func (r ReadRoute) Max() time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	return slices.Max(r.Latencies)
}

// Bytes is the median response size.
func (r ReadRoute) Bytes() int {
	if len(r.Sizes) == 0 {
		return 0
	}
	s := slices.Clone(r.Sizes)
	slices.Sort(s)
	return s[len(s)/2]
}

// Verdict is "PASS" when every request was answered 200 and the p99 is
// within target, "FAIL" otherwise, and "403 by design" for a raw route
// without retention.
func (r ReadRoute) Verdict(retention bool, target time.Duration) string {
	switch {
	case r.ByDesign(retention):
		return "403 by design"
	case r.Errors(retention) > 0 || len(r.Latencies) == 0 || r.P99() > target:
		return "FAIL"
	}
	return "PASS"
}

// statusCounts formats the statuses as "200×50" or "200×48 503×2".
func statusCounts(st []int) string {
	n := map[int]int{}
	for _, s := range st {
		n[s]++
	}
	codes := make([]int, 0, len(n))
	for c := range n {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		name := strconv.Itoa(c)
		if c == 0 {
			name = "net"
		}
		parts[i] = name + "×" + strconv.Itoa(n[c])
	}
	return strings.Join(parts, " ")
}

// SortedRoutes is the routes by p99, slowest first, the 403s by design
// last.
func (s *Read) SortedRoutes() []ReadRoute {
	rs := slices.Clone(s.Routes)
	slices.SortStableFunc(rs, func(a, b ReadRoute) int {
		da, db := a.ByDesign(s.Retention), b.ByDesign(s.Retention)
		if da != db {
			if da {
				return 1
			}
			return -1
		}
		return cmp.Compare(b.P99(), a.P99())
	})
	return rs
}

// EventsPerSec is the load's rate.
func (s *Read) EventsPerSec() float64 {
	if s.LoadTime <= 0 {
		return 0
	}
	return float64(s.Events) / s.LoadTime.Seconds()
}

// RequestsPerSec is the load's rate of batches.
func (s *Read) RequestsPerSec() float64 {
	if s.LoadTime <= 0 {
		return 0
	}
	return float64(s.Batches) / s.LoadTime.Seconds()
}

// Tally counts the routes by verdict.
func (s *Read) Tally() (pass, fail, byDesign, withErrors int) {
	for _, r := range s.Routes {
		switch r.Verdict(s.Retention, s.Target) {
		case "PASS":
			pass++
		case "FAIL":
			fail++
		default:
			byDesign++
		}
		if r.Errors(s.Retention) > 0 {
			withErrors++
		}
	}
	return pass, fail, byDesign, withErrors
}

func machineTable(b *bytes.Buffer, m Machine, started time.Time) {
	b.WriteString("## Machine\n\n| | |\n|---|---|\n")
	cpu := cmp.Or(m.CPUModel, "unknown")
	fmt.Fprintf(b, "| CPU | %s |\n| logical CPUs | %d |\n", cell(cpu), m.Cores)
	if m.MemTotal > 0 {
		fmt.Fprintf(b, "| memory | %.1f GiB |\n", float64(m.MemTotal)/(1<<30))
	}
	if m.Kernel != "" {
		fmt.Fprintf(b, "| kernel | %s |\n", cell(m.Kernel))
	}
	if m.GoVersion != "" {
		fmt.Fprintf(b, "| Go | %s |\n", cell(m.GoVersion))
	}
	if !started.IsZero() {
		fmt.Fprintf(b, "| started | %s |\n", started.UTC().Format("2006-01-02 15:04 MST"))
	}
}

// ReadMarkdown writes the read scenario's report: the machine, the load,
// the catch-up, and one row per route sorted by p99 with its verdict.
func ReadMarkdown(w io.Writer, s *Read) error {
	var b bytes.Buffer
	b.WriteString("# Uptimizr Edge read scenario\n\n")
	fmt.Fprintf(&b, "One collector (raw session retention %s) loaded with %s events through `POST /api/v1/collect`, "+
		"then every read route requested %d times in a row with the query key, on one connection, nothing else running against it. "+
		"Target: p99 ≤ %s ms per route.\n\n",
		onOff(s.Retention), Thousands(float64(s.Events)), s.Requests, Millis(s.Target))
	machineTable(&b, s.Machine, s.Started)

	b.WriteString("\n## Load\n\n| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| events | %s in %s batches of %d |\n", Thousands(float64(s.Events)), Thousands(float64(s.Batches)), s.BatchSize)
	fmt.Fprintf(&b, "| sessions | %s, %d batches each |\n", Thousands(float64(s.Sessions)), s.BatchesPerSession)
	if !s.From.IsZero() {
		fmt.Fprintf(&b, "| event timestamps | %s – %s |\n", s.From.UTC().Format("2006-01-02 15:04"), s.To.UTC().Format("2006-01-02 15:04 MST"))
	}
	fmt.Fprintf(&b, "| connections | %d, each sending back to back |\n", s.Concurrency)
	fmt.Fprintf(&b, "| load time | %.2f s |\n", s.LoadTime.Seconds())
	fmt.Fprintf(&b, "| **events/s** | **%s** (%s req/s) |\n", Thousands(s.EventsPerSec()), Thousands(s.RequestsPerSec()))
	fmt.Fprintf(&b, "| ingest p50 / p99 | %s / %s ms |\n", Millis(s.IngestP50), Millis(s.IngestP99))
	fmt.Fprintf(&b, "| accepted / rejected / filtered | %s / %s / %s |\n",
		Thousands(float64(s.Accepted)), Thousands(float64(s.Rejected)), Thousands(float64(s.Filtered)))
	fmt.Fprintf(&b, "| batches sent again (429, 503) | %s |\n", Thousands(float64(s.Retries)))
	if s.LoadCPU > 0 {
		fmt.Fprintf(&b, "| collector CPU during the load | %.2f cores, peak RSS %s MiB |\n", s.LoadCPU, MiB(s.LoadPeakRSS))
	}
	fmt.Fprintf(&b, "| aggregator lag at the load's end | %s records |\n", Thousands(float64(s.LagAtLoadEnd)))
	fmt.Fprintf(&b, "| **catch-up** | **%.1f s** (lag 0; %s events folded) |\n", s.CatchUp.Seconds(), Thousands(float64(s.FoldedEvents)))
	if s.DataDirBytes > 0 {
		fmt.Fprintf(&b, "| data dir | %s MiB |\n", MiB(s.DataDirBytes))
	}
	if s.ReadCPU > 0 {
		fmt.Fprintf(&b, "| collector CPU during the reads | %.2f cores |\n", s.ReadCPU)
	}

	pass, fail, byDesign, withErrors := s.Tally()
	fmt.Fprintf(&b, "\n## Routes\n\n%d routes, %d requests each (%.1f s in all). %d of %d meet the %s ms p99 target",
		len(s.Routes), s.Requests, s.ReadTime.Seconds(), pass, pass+fail, Millis(s.Target))
	if fail > 0 {
		fmt.Fprintf(&b, ", %d fail", fail)
	}
	if withErrors > 0 {
		fmt.Fprintf(&b, " (%d with errors, below)", withErrors)
	}
	b.WriteString(".")
	if byDesign > 0 {
		fmt.Fprintf(&b, " %d read raw session events and answer 403 by design with retention off (`-retention` turns it on).", byDesign)
	}
	if s.Session != "" {
		fmt.Fprintf(&b, " Session routes read `%s`", cell(s.Session))
		if s.Scene != "" {
			fmt.Fprintf(&b, "; scene routes `%s`", cell(s.Scene))
		}
		b.WriteString(".")
	}
	b.WriteString("\n\n| route | request | p50 ms | p99 ms | max ms | bytes | statuses | verdict |\n|---|---|---:|---:|---:|---:|---|---|\n")
	for _, r := range s.SortedRoutes() {
		v := r.Verdict(s.Retention, s.Target)
		if v == "FAIL" {
			v = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s | %s | %s | %s |\n", cell(r.Name), cell(cmp.Or(r.Shown, r.Path)),
			Millis(r.P50()), Millis(r.P99()), Millis(r.Max()), Thousands(float64(r.Bytes())), statusCounts(r.Statuses), v)
	}
	if s.Week != "" {
		fmt.Fprintf(&b, "\n`{week}` is `%s`, the week of the events' timestamps; `{day}` is `%s`, its fourth day.\n", s.Week, s.Day)
	}
	b.WriteString("\nLatency is from sending a request to reading its whole answer, on one keep-alive connection over loopback; " +
		"p50 and p99 are interpolated between ranks, so with 50 requests p99 lies between the two slowest; " +
		"each route's first request is its cold one. Bytes: the median answer's body.\n")

	if withErrors > 0 {
		b.WriteString("\n## Errors\n\n| route | statuses | first answer |\n|---|---|---|\n")
		for _, r := range s.Routes {
			if r.Errors(s.Retention) > 0 {
				fmt.Fprintf(&b, "| %s | %s | %s |\n", cell(r.Name), statusCounts(r.Statuses), cell(r.FirstError))
			}
		}
	}
	if len(s.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range s.Notes {
			b.WriteString("- " + n + "\n")
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

type jsonReadRoute struct {
	Name       string    `json:"route"`
	Path       string    `json:"request"`
	Raw        bool      `json:"raw_retention_route,omitempty"`
	P50        float64   `json:"p50_ms"`
	P99        float64   `json:"p99_ms"`
	Max        float64   `json:"max_ms"`
	Bytes      int       `json:"bytes"`
	Verdict    string    `json:"verdict"`
	Errors     int       `json:"errors"`
	FirstError string    `json:"first_error,omitempty"`
	Statuses   []int     `json:"statuses"`
	Latencies  []float64 `json:"latencies_ms"`
	Sizes      []int     `json:"sizes"`
}

type jsonRead struct {
	Machine           jsonMachine     `json:"machine"`
	Started           time.Time       `json:"started"`
	Retention         bool            `json:"retention"`
	Events            int64           `json:"events"`
	Batches           int64           `json:"batches"`
	BatchSize         int             `json:"batch_size"`
	Sessions          int             `json:"sessions"`
	BatchesPerSession int             `json:"batches_per_session"`
	Concurrency       int             `json:"concurrency"`
	From              time.Time       `json:"events_from"`
	To                time.Time       `json:"events_to"`
	LoadSeconds       float64         `json:"load_seconds"`
	EventsPerSec      float64         `json:"events_per_sec"`
	RequestsPerSec    float64         `json:"requests_per_sec"`
	IngestP50         float64         `json:"ingest_p50_ms"`
	IngestP99         float64         `json:"ingest_p99_ms"`
	Retries           int64           `json:"retries"`
	Accepted          int64           `json:"accepted"`
	Rejected          int64           `json:"rejected"`
	Filtered          int64           `json:"filtered"`
	LoadCPU           float64         `json:"load_server_cpu_cores"`
	LoadPeakRSS       int64           `json:"load_server_peak_rss_bytes"`
	LagAtLoadEnd      int64           `json:"lag_at_load_end_records"`
	CatchUpSeconds    float64         `json:"catch_up_seconds"`
	FoldedEvents      int64           `json:"folded_events"`
	DataDirBytes      int64           `json:"data_dir_bytes"`
	ReadCPU           float64         `json:"read_server_cpu_cores"`
	Requests          int             `json:"requests_per_route"`
	Target            float64         `json:"target_p99_ms"`
	Session           string          `json:"session"`
	Scene             string          `json:"scene"`
	Week              string          `json:"week_query"`
	Day               string          `json:"day_query"`
	ReadSeconds       float64         `json:"read_seconds"`
	Routes            []jsonReadRoute `json:"routes"`
	Notes             []string        `json:"notes,omitempty"`
}

// ReadJSON writes the run as one indented JSON object, the routes sorted
// as in the markdown, latencies in milliseconds.
func ReadJSON(w io.Writer, s *Read) error {
	doc := jsonRead{
		Machine: jsonMachine(s.Machine), Started: s.Started, Retention: s.Retention,
		Events: s.Events, Batches: s.Batches, BatchSize: s.BatchSize, Sessions: s.Sessions,
		BatchesPerSession: s.BatchesPerSession, Concurrency: s.Concurrency, From: s.From, To: s.To,
		LoadSeconds: s.LoadTime.Seconds(), EventsPerSec: finite(s.EventsPerSec()), RequestsPerSec: finite(s.RequestsPerSec()),
		IngestP50: ms(s.IngestP50), IngestP99: ms(s.IngestP99), Retries: s.Retries,
		Accepted: s.Accepted, Rejected: s.Rejected, Filtered: s.Filtered,
		LoadCPU: finite(s.LoadCPU), LoadPeakRSS: s.LoadPeakRSS, LagAtLoadEnd: s.LagAtLoadEnd,
		CatchUpSeconds: s.CatchUp.Seconds(), FoldedEvents: s.FoldedEvents, DataDirBytes: s.DataDirBytes,
		ReadCPU:  finite(s.ReadCPU),
		Requests: s.Requests, Target: ms(s.Target), Session: s.Session, Scene: s.Scene, Week: s.Week, Day: s.Day,
		ReadSeconds: s.ReadTime.Seconds(), Routes: []jsonReadRoute{}, Notes: s.Notes,
	}
	for _, r := range s.SortedRoutes() {
		jr := jsonReadRoute{Name: r.Name, Path: r.Path, Raw: r.Raw, P50: ms(r.P50()), P99: ms(r.P99()), Max: ms(r.Max()),
			Bytes: r.Bytes(), Verdict: r.Verdict(s.Retention, s.Target), Errors: r.Errors(s.Retention), FirstError: r.FirstError,
			Statuses: r.Statuses, Sizes: r.Sizes, Latencies: make([]float64, len(r.Latencies))}
		for i, d := range r.Latencies {
			jr.Latencies[i] = ms(d)
		}
		doc.Routes = append(doc.Routes, jr)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
