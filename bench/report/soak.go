package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// SoakSample is one sample of a soak: the collector process at the end of
// a window of the load, and the load generator's figures over the window.
type SoakSample struct {
	At     time.Duration // end of the window, since the load started
	Window time.Duration // its length

	RSS, Anon, File int64 // VmRSS, RssAnon, RssFile (bytes)
	// HeapInuse, HeapAlloc and HeapGoal are the collector's
	// go_memstats_heap_inuse_bytes, _heap_alloc_bytes and _next_gc_bytes
	// (0 when its /metrics does not carry them).
	HeapInuse, HeapAlloc, HeapGoal int64
	Goroutines                     int64
	// OpenFiles counts the collector's file descriptors; DataFiles those of
	// files in the data dir, DeletedFiles those of files deleted while
	// still open, Sockets its connections and listeners. The rest are
	// pipes, the epoll and the like.
	OpenFiles, DataFiles, DeletedFiles, Sockets int64
	// DataDirBytes is the space the data dir's files take on disk
	// (allocated blocks), DataDirFiles how many there are.
	DataDirBytes, DataDirFiles int64
	AggregatorLag              int64 // uptimizr_aggregator_lag_records
	// CPU, SelfCPU and MachineCPU are the cores the collector, the load
	// generator and every process of the machine used since the previous
	// sample; IOWait the cores the machine left idle waiting for I/O.
	CPU, SelfCPU, MachineCPU, IOWait float64
	MajorFaults                      int64 // the collector's, since the previous sample

	// The window's requests, as the load generator saw them.
	Requests, OK, Errors, Dropped int64
	Events, Accepted              int64
	AcceptedTotal                 int64 // accepted events since the start
	P50, P99, Max                 time.Duration
}

// OtherFiles is the number of descriptors that are neither files of the
// data dir nor sockets: pipes, the epoll, deleted files still open, ….
func (s SoakSample) OtherFiles() int64 { return s.OpenFiles - s.DataFiles - s.Sockets }

// GoroutinesBeyondConns is the number of goroutines beyond one per socket: the
// HTTP server serves each connection on a goroutine of its own, so the
// goroutine count follows the connections the load opens (bursts of them
// after a stall); the rest is the collector's own.
func (s SoakSample) GoroutinesBeyondConns() int64 { return s.Goroutines - s.Sockets }

// OthersCPU is the cores the machine's other processes used over the
// window: neither the collector nor the load generator.
func (s SoakSample) OthersCPU() float64 { return max(0, s.MachineCPU-s.CPU-s.SelfCPU) }

// SoakPhase is the latency of a part of a soak, every request of its
// windows pooled.
type SoakPhase struct {
	From, To            time.Duration
	Requests            int64
	P50, P99, P999, Max time.Duration
}

// SoakFit is the least-squares line of one series over the soak after its
// warm-up, and its verdict.
type SoakFit struct {
	Key    string // short name, as in the JSON samples
	Series string // what it is, for people
	Unit   string // of Mean, Slope, Intercept, …
	N      int    // samples fitted
	Mean   float64
	// Slope is the line's slope in Unit per hour, SlopeCI the half-width
	// of its 99% confidence interval (residuals' lag-1 autocorrelation
	// taken into account).
	Slope, SlopeCI float64
	Intercept      float64 // the line's value at the start of the run
	// Rel and RelCI are Slope and SlopeCI relative to Mean: 0.05 is 5% of
	// the mean per hour.
	Rel, RelCI float64
	Growth     float64 // what the line gains over the fitted span, Unit
	ResidualSD float64 // standard deviation around the line, Unit
	// Judged says the series takes part in the verdict; Verdict is "flat",
	// "within the noise" or "rising" for a judged series, "" otherwise.
	Judged  bool
	Verdict string
	Note    string
}

// SoakStorage judges the data dir's growth against the events stored:
// its marginal cost, in bytes per accepted event, in each third after the
// warm-up and over all of it.
type SoakStorage struct {
	BytesPerEvent [3]float64
	Overall       float64
	R2            float64 // of the data dir's size against accepted events
	// PerDayGiB is what a day at the soak's accepted rate would add.
	PerDayGiB float64
}

// Soak is the outcome of one soak run.
type Soak struct {
	Machine   Machine
	Scenario  string
	Encoding  string
	Retention bool
	Plugins   []string
	BatchSize int

	Duration, Every, Warmup time.Duration
	Rate                    float64 // open-loop requests per second
	// Calibration is the closed-loop row Rate was derived from (half its
	// requests/s), nil when the rate was given.
	Calibration     *Row
	CalibrationTime time.Duration
	Started         time.Time

	Samples     []SoakSample
	Phases      [3]SoakPhase // the thirds after the warm-up
	AfterWarmup SoakPhase

	Requests, OK, Dropped         int64
	Errors                        map[int]int64
	Events, Accepted, Quarantined int64
	StoppedCleanly                bool

	Fits    []SoakFit
	Storage SoakStorage
	CPU     SoakCPU
	Checks  []Check
	Notes   []string
}

// SoakCPU is how the machine's CPU was shared over a soak, in cores on
// average: the collector, the load generator, every other process, and
// the share of the time the machine had no core left (Saturated, 0–1).
type SoakCPU struct {
	Cores                        int
	Collector, Generator, Others float64
	Saturated                    float64
}

// Fit returns the fit of the series named key, or nil.
func (s *Soak) Fit(key string) *SoakFit {
	for i := range s.Fits {
		if s.Fits[i].Key == key {
			return &s.Fits[i]
		}
	}
	return nil
}

func minutes(d time.Duration) string {
	return strconv.FormatFloat(d.Minutes(), 'f', 1, 64)
}

// pct formats a fraction as a signed percentage: 0.0123 → "+1.2 %".
func pct(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	return strconv.FormatFloat(v*100, 'f', 1, 64) + " %"
}

// signedPct is pct with a sign: "+1.2 %", "-0.4 %".
func signedPct(v float64) string {
	if v >= 0 {
		return "+" + pct(v)
	}
	return pct(v)
}

// num formats a value with about three significant digits.
func num(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "–"
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// SoakMarkdown writes a soak's summary: what ran, the verdicts, the fit of
// each series, the latency by phase and the storage growth.
func SoakMarkdown(w io.Writer, s *Soak) error {
	var b bytes.Buffer
	b.WriteString("# Uptimizr Edge soak\n\n")
	fmt.Fprintf(&b, "`%s`: the collector with raw session retention %s and %s, %s bodies of %d events, "+
		"an open loop at %s req/s (%s events/s) for %s, sampled every %s. ",
		cell(s.Scenario), onOff(s.Retention), pluginList(s.Plugins), cell(s.Encoding), s.BatchSize,
		Thousands(s.Rate), Thousands(s.Rate*float64(s.BatchSize)), s.Duration, s.Every)
	if s.Calibration != nil {
		fmt.Fprintf(&b, "The rate is half the closed-loop maximum of the same configuration, measured first for %s on a collector of its own: "+
			"%s req/s (%s events/s, p99 %s ms, collector CPU %.2f cores). ",
			s.CalibrationTime, Thousands(s.Calibration.RequestsPerSec), Thousands(s.Calibration.EventsPerSec), Millis(s.Calibration.P99), s.Calibration.ServerCPU)
	} else {
		b.WriteString("The rate was given. ")
	}
	fmt.Fprintf(&b, "The first %s minutes are the warm-up, left out of every fit and phase.\n\n", minutes(s.Warmup))

	b.WriteString("## Machine\n\n| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| CPU | %s |\n| logical CPUs | %d |\n", cell(s.Machine.CPUModel), s.Machine.Cores)
	if s.Machine.MemTotal > 0 {
		fmt.Fprintf(&b, "| memory | %.1f GiB |\n", float64(s.Machine.MemTotal)/(1<<30))
	}
	if s.Machine.Kernel != "" {
		fmt.Fprintf(&b, "| kernel | %s |\n", cell(s.Machine.Kernel))
	}
	if s.Machine.GoVersion != "" {
		fmt.Fprintf(&b, "| Go | %s |\n", cell(s.Machine.GoVersion))
	}
	if !s.Started.IsZero() {
		fmt.Fprintf(&b, "| started | %s |\n", s.Started.UTC().Format("2006-01-02 15:04 MST"))
	}

	if len(s.Checks) > 0 {
		b.WriteString("\n## Verdict\n\n| check | want | got | result |\n|---|---|---|---|\n")
		met := 0
		for _, c := range s.Checks {
			res := "**FAIL**"
			if c.OK {
				res = "PASS"
				met++
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", cell(c.Name), cell(c.Want), cell(c.Got), res)
		}
		fmt.Fprintf(&b, "\n%d of %d checks passed.\n", met, len(s.Checks))
	}

	if len(s.Fits) > 0 {
		fmt.Fprintf(&b, "\n## Fits after the warm-up (%s–%s min)\n\n", minutes(s.Warmup), minutes(s.Duration))
		b.WriteString("| series | unit | mean | slope per hour ± 99% CI | the same, % of the mean | growth over the fit | residual SD | verdict |\n")
		b.WriteString("|---|---|---:|---:|---:|---:|---:|---|\n")
		for _, f := range s.Fits {
			verdict := "not judged"
			if f.Judged {
				verdict = f.Verdict
				if f.Verdict == "rising" {
					verdict = "**" + f.Verdict + "**"
				}
			}
			if f.Note != "" {
				verdict += ": " + f.Note
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s ± %s | %s ± %s | %s | %s | %s |\n",
				cell(f.Series), cell(f.Unit), num(f.Mean), signed(f.Slope), num(f.SlopeCI),
				signedPct(f.Rel), pct(f.RelCI), signed(f.Growth), num(f.ResidualSD), cell(verdict))
		}
	}

	b.WriteString("\n## Latency by phase\n\n| phase | minutes | requests | p50 ms | p99 ms | p99.9 ms | max ms |\n|---|---|---:|---:|---:|---:|---:|\n")
	for i, p := range s.Phases {
		fmt.Fprintf(&b, "| third %d | %s–%s | %s | %s | %s | %s | %s |\n", i+1, minutes(p.From), minutes(p.To),
			Thousands(float64(p.Requests)), Millis(p.P50), Millis(p.P99), Millis(p.P999), Millis(p.Max))
	}
	a := s.AfterWarmup
	fmt.Fprintf(&b, "| after the warm-up | %s–%s | %s | %s | %s | %s | %s |\n", minutes(a.From), minutes(a.To),
		Thousands(float64(a.Requests)), Millis(a.P50), Millis(a.P99), Millis(a.P999), Millis(a.Max))
	fmt.Fprintf(&b, "\nOver the whole run: %s requests, %s answered 2xx, errors %s, %s not sent (late); %s events, %s accepted, %s quarantined.",
		Thousands(float64(s.Requests)), Thousands(float64(s.OK)), Errors(s.Errors), Thousands(float64(s.Dropped)),
		Thousands(float64(s.Events)), Thousands(float64(s.Accepted)), Thousands(float64(s.Quarantined)))
	if s.StoppedCleanly {
		b.WriteString(" The collector stopped cleanly on SIGTERM.\n")
	} else {
		b.WriteString(" The collector did **not** stop cleanly.\n")
	}

	st := s.Storage
	if st.Overall > 0 {
		fmt.Fprintf(&b, "\n## Storage\n\nThe data dir's marginal cost after the warm-up: %s bytes per accepted event (R² %.3f of size against accepted events); "+
			"by third: %s, %s, %s. A day at this rate would add %s GiB.\n",
			num(st.Overall), st.R2, num(st.BytesPerEvent[0]), num(st.BytesPerEvent[1]), num(st.BytesPerEvent[2]), num(st.PerDayGiB))
	}

	b.WriteString("\n## Notes\n\n")
	if c := s.CPU; c.Cores > 0 {
		fmt.Fprintf(&b, "- The machine's %d cores were shared: on average the collector used %.2f cores, the load generator %.2f "+
			"and other processes %.2f; %.0f%% of the time no core was left idle. Latency moves with what else runs; "+
			"the slopes of memory, goroutines and open files are what this run shows best.\n",
			c.Cores, c.Collector, c.Generator, c.Others, c.Saturated*100)
	}
	for _, n := range s.Notes {
		b.WriteString("- " + n + "\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}

func pluginList(p []string) string {
	switch len(p) {
	case 0:
		return "no plugin"
	case 1:
		return "the plugin `" + cell(p[0]) + "`"
	}
	return "the plugins `" + cell(strings.Join(p, "`, `")) + "`"
}

type jsonSoakSample struct {
	AtSeconds     float64 `json:"at_s"`
	WindowSeconds float64 `json:"window_s"`
	RSS           int64   `json:"rss_bytes"`
	Anon          int64   `json:"rss_anon_bytes"`
	File          int64   `json:"rss_file_bytes"`
	HeapInuse     int64   `json:"heap_inuse_bytes"`
	HeapAlloc     int64   `json:"heap_alloc_bytes"`
	HeapGoal      int64   `json:"heap_goal_bytes"`
	Goroutines    int64   `json:"goroutines"`
	OpenFiles     int64   `json:"open_files"`
	DataFiles     int64   `json:"open_data_files"`
	DeletedFiles  int64   `json:"open_deleted_files"`
	Sockets       int64   `json:"open_sockets"`
	DataDirBytes  int64   `json:"data_dir_bytes"`
	DataDirFiles  int64   `json:"data_dir_files"`
	AggregatorLag int64   `json:"aggregator_lag_records"`
	CPU           float64 `json:"cpu_cores"`
	SelfCPU       float64 `json:"load_generator_cpu_cores"`
	MachineCPU    float64 `json:"machine_cpu_cores"`
	IOWait        float64 `json:"machine_iowait_cores"`
	MajorFaults   int64   `json:"major_faults"`
	Requests      int64   `json:"requests"`
	OK            int64   `json:"ok"`
	Errors        int64   `json:"errors"`
	Dropped       int64   `json:"dropped"`
	Events        int64   `json:"events"`
	Accepted      int64   `json:"accepted"`
	AcceptedTotal int64   `json:"accepted_total"`
	P50           float64 `json:"p50_ms"`
	P99           float64 `json:"p99_ms"`
	Max           float64 `json:"max_ms"`
}

type jsonSoakPhase struct {
	FromSeconds float64 `json:"from_s"`
	ToSeconds   float64 `json:"to_s"`
	Requests    int64   `json:"requests"`
	P50         float64 `json:"p50_ms"`
	P99         float64 `json:"p99_ms"`
	P999        float64 `json:"p999_ms"`
	Max         float64 `json:"max_ms"`
}

type jsonSoakFit struct {
	Key        string  `json:"key"`
	Series     string  `json:"series"`
	Unit       string  `json:"unit"`
	N          int     `json:"n"`
	Mean       float64 `json:"mean"`
	Slope      float64 `json:"slope_per_hour"`
	SlopeCI    float64 `json:"slope_ci99_per_hour"`
	Intercept  float64 `json:"intercept"`
	Rel        float64 `json:"slope_share_of_mean_per_hour"`
	RelCI      float64 `json:"slope_share_ci99_per_hour"`
	Growth     float64 `json:"growth_over_fit"`
	ResidualSD float64 `json:"residual_sd"`
	Judged     bool    `json:"judged"`
	Verdict    string  `json:"verdict,omitempty"`
	Note       string  `json:"note,omitempty"`
}

type jsonSoakStorage struct {
	BytesPerEvent [3]float64 `json:"bytes_per_accepted_event_by_third"`
	Overall       float64    `json:"bytes_per_accepted_event"`
	R2            float64    `json:"r2_size_vs_events"`
	PerDayGiB     float64    `json:"gib_per_day_at_this_rate"`
}

type jsonSoakCPU struct {
	Cores     int     `json:"cores"`
	Collector float64 `json:"collector_cores"`
	Generator float64 `json:"load_generator_cores"`
	Others    float64 `json:"other_processes_cores"`
	Saturated float64 `json:"saturated_share"`
}

func phaseJSON(p SoakPhase) jsonSoakPhase {
	return jsonSoakPhase{FromSeconds: p.From.Seconds(), ToSeconds: p.To.Seconds(), Requests: p.Requests,
		P50: ms(p.P50), P99: ms(p.P99), P999: ms(p.P999), Max: ms(p.Max)}
}

type jsonCheck struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	OK   bool   `json:"ok"`
}

type jsonSoak struct {
	Machine         jsonMachine      `json:"machine"`
	Scenario        string           `json:"scenario"`
	Encoding        string           `json:"encoding"`
	Retention       bool             `json:"retention"`
	Plugins         []string         `json:"plugins"`
	BatchSize       int              `json:"batch_size"`
	DurationSeconds float64          `json:"duration_s"`
	EverySeconds    float64          `json:"every_s"`
	WarmupSeconds   float64          `json:"warmup_s"`
	Rate            float64          `json:"rate_requests_per_sec"`
	Calibration     *jsonRow         `json:"calibration,omitempty"`
	CalibrationSecs float64          `json:"calibration_s,omitempty"`
	Started         time.Time        `json:"started"`
	Requests        int64            `json:"requests"`
	OK              int64            `json:"ok"`
	Dropped         int64            `json:"dropped"`
	Errors          map[int]int64    `json:"errors_by_status,omitempty"`
	Events          int64            `json:"events"`
	Accepted        int64            `json:"accepted"`
	Quarantined     int64            `json:"quarantined"`
	StoppedCleanly  bool             `json:"stopped_cleanly"`
	Phases          []jsonSoakPhase  `json:"phases"`
	AfterWarmup     jsonSoakPhase    `json:"after_warmup"`
	Fits            []jsonSoakFit    `json:"fits"`
	Storage         jsonSoakStorage  `json:"storage"`
	CPU             jsonSoakCPU      `json:"cpu"`
	Checks          []jsonCheck      `json:"checks"`
	Notes           []string         `json:"notes,omitempty"`
	Samples         []jsonSoakSample `json:"samples"`
}

// SoakJSON writes the soak, every sample included, as one indented JSON
// object; durations in seconds, latencies in milliseconds, sizes in bytes.
func SoakJSON(w io.Writer, s *Soak) error {
	doc := jsonSoak{
		Machine: jsonMachine(s.Machine), Scenario: s.Scenario, Encoding: s.Encoding, Retention: s.Retention, Plugins: s.Plugins,
		BatchSize: s.BatchSize, DurationSeconds: s.Duration.Seconds(), EverySeconds: s.Every.Seconds(), WarmupSeconds: s.Warmup.Seconds(),
		Rate: finite(s.Rate), CalibrationSecs: s.CalibrationTime.Seconds(), Started: s.Started, Requests: s.Requests, OK: s.OK, Dropped: s.Dropped, Errors: s.Errors,
		Events: s.Events, Accepted: s.Accepted, Quarantined: s.Quarantined, StoppedCleanly: s.StoppedCleanly,
		AfterWarmup: phaseJSON(s.AfterWarmup), Notes: s.Notes,
		Storage: jsonSoakStorage{BytesPerEvent: s.Storage.BytesPerEvent, Overall: finite(s.Storage.Overall),
			R2: finite(s.Storage.R2), PerDayGiB: finite(s.Storage.PerDayGiB)},
		CPU: jsonSoakCPU{Cores: s.CPU.Cores, Collector: finite(s.CPU.Collector), Generator: finite(s.CPU.Generator),
			Others: finite(s.CPU.Others), Saturated: finite(s.CPU.Saturated)},
		Phases: []jsonSoakPhase{}, Fits: []jsonSoakFit{}, Checks: []jsonCheck{}, Samples: make([]jsonSoakSample, 0, len(s.Samples)),
	}
	if s.Calibration != nil {
		r := rowJSON(*s.Calibration)
		doc.Calibration = &r
	}
	for _, p := range s.Phases {
		doc.Phases = append(doc.Phases, phaseJSON(p))
	}
	for _, f := range s.Fits {
		doc.Fits = append(doc.Fits, jsonSoakFit{Key: f.Key, Series: f.Series, Unit: f.Unit, N: f.N, Mean: finite(f.Mean),
			Slope: finite(f.Slope), SlopeCI: finite(f.SlopeCI), Intercept: finite(f.Intercept), Rel: finite(f.Rel), RelCI: finite(f.RelCI),
			Growth: finite(f.Growth), ResidualSD: finite(f.ResidualSD), Judged: f.Judged, Verdict: f.Verdict, Note: f.Note})
	}
	for _, c := range s.Checks {
		doc.Checks = append(doc.Checks, jsonCheck(c))
	}
	for _, m := range s.Samples {
		doc.Samples = append(doc.Samples, jsonSoakSample{AtSeconds: m.At.Seconds(), WindowSeconds: m.Window.Seconds(),
			RSS: m.RSS, Anon: m.Anon, File: m.File, HeapInuse: m.HeapInuse, HeapAlloc: m.HeapAlloc, HeapGoal: m.HeapGoal,
			Goroutines: m.Goroutines, OpenFiles: m.OpenFiles, DataFiles: m.DataFiles, DeletedFiles: m.DeletedFiles, Sockets: m.Sockets,
			DataDirBytes: m.DataDirBytes, DataDirFiles: m.DataDirFiles, AggregatorLag: m.AggregatorLag,
			CPU: finite(m.CPU), SelfCPU: finite(m.SelfCPU), MachineCPU: finite(m.MachineCPU), IOWait: finite(m.IOWait), MajorFaults: m.MajorFaults,
			Requests: m.Requests, OK: m.OK, Errors: m.Errors, Dropped: m.Dropped, Events: m.Events, Accepted: m.Accepted,
			AcceptedTotal: m.AcceptedTotal, P50: ms(m.P50), P99: ms(m.P99), Max: ms(m.Max)})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// ReadSoakJSON reads back what SoakJSON wrote: the run, its samples and
// phases. Fits, storage, CPU and checks are left for the analysis to redo.
func ReadSoakJSON(r io.Reader) (*Soak, error) {
	var doc jsonSoak
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return nil, err
	}
	secs := func(v float64) time.Duration { return time.Duration(math.Round(v * float64(time.Second))) }
	msd := func(v float64) time.Duration { return time.Duration(math.Round(v * 1e6)) }
	phase := func(p jsonSoakPhase) SoakPhase {
		return SoakPhase{From: secs(p.FromSeconds), To: secs(p.ToSeconds), Requests: p.Requests,
			P50: msd(p.P50), P99: msd(p.P99), P999: msd(p.P999), Max: msd(p.Max)}
	}
	s := &Soak{Machine: Machine(doc.Machine), Scenario: doc.Scenario, Encoding: doc.Encoding, Retention: doc.Retention, Plugins: doc.Plugins,
		BatchSize: doc.BatchSize, Duration: secs(doc.DurationSeconds), Every: secs(doc.EverySeconds), Warmup: secs(doc.WarmupSeconds),
		Rate: doc.Rate, CalibrationTime: secs(doc.CalibrationSecs), Started: doc.Started, Requests: doc.Requests, OK: doc.OK,
		Dropped: doc.Dropped, Errors: doc.Errors, Events: doc.Events, Accepted: doc.Accepted, Quarantined: doc.Quarantined,
		StoppedCleanly: doc.StoppedCleanly, AfterWarmup: phase(doc.AfterWarmup), Notes: doc.Notes}
	if c := doc.Calibration; c != nil {
		s.Calibration = &Row{Scenario: c.Scenario, Encoding: c.Encoding, Projects: c.Projects, Plugins: c.Plugins, Retention: c.Retention,
			EventsPerSec: c.EventsPerSec, RequestsPerSec: c.RequestsPerSec, WireMBps: c.WireMBps, RawMBps: c.RawMBps,
			P50: msd(c.P50), P90: msd(c.P90), P99: msd(c.P99), P999: msd(c.P999), Errors: c.Errors, Accepted: c.Accepted,
			ServerCPU: c.ServerCPU, ServerPeakRSS: c.ServerPeakRSS, ServerMedianRSS: c.ServerMedianRSS, Note: c.Note}
	}
	for i, p := range doc.Phases {
		if i < len(s.Phases) {
			s.Phases[i] = phase(p)
		}
	}
	for _, m := range doc.Samples {
		s.Samples = append(s.Samples, SoakSample{At: secs(m.AtSeconds), Window: secs(m.WindowSeconds),
			RSS: m.RSS, Anon: m.Anon, File: m.File, HeapInuse: m.HeapInuse, HeapAlloc: m.HeapAlloc, HeapGoal: m.HeapGoal,
			Goroutines: m.Goroutines, OpenFiles: m.OpenFiles, DataFiles: m.DataFiles, DeletedFiles: m.DeletedFiles, Sockets: m.Sockets,
			DataDirBytes: m.DataDirBytes, DataDirFiles: m.DataDirFiles, AggregatorLag: m.AggregatorLag,
			CPU: m.CPU, SelfCPU: m.SelfCPU, MachineCPU: m.MachineCPU, IOWait: m.IOWait, MajorFaults: m.MajorFaults,
			Requests: m.Requests, OK: m.OK, Errors: m.Errors, Dropped: m.Dropped, Events: m.Events, Accepted: m.Accepted,
			AcceptedTotal: m.AcceptedTotal, P50: msd(m.P50), P99: msd(m.P99), Max: msd(m.Max)})
	}
	return s, nil
}
