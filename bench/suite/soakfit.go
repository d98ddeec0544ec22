package suite

import (
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/uptimizr/edge/bench/report"
)

// The soak's verdict rules (bench/README.md, "The soak", says why).
const (
	// SoakMaxSlope is the largest slope, relative to the series' mean per
	// hour, that counts as flat: 5% per hour.
	SoakMaxSlope = 0.05
	// SoakP99Factor bounds the p99 of the last third after the warm-up
	// against the first third's.
	SoakP99Factor = 2.0
	// SoakFileFactor bounds the growth of the file-backed RSS against the
	// data dir's: pages of the files written, nothing else.
	SoakFileFactor = 1.1
	// SoakStorageFactor bounds the data dir's marginal bytes per accepted
	// event in the last third against the first third's.
	SoakStorageFactor = 1.5
)

// soakSeries is one series of a soak's samples, as fitted and charted.
type soakSeries struct {
	Key, Name, Unit string
	// Judged series take part in the verdict: a leak would show in them.
	Judged bool
	Note   string
	Value  func(report.SoakSample) float64
}

const mib = 1 << 20

// scraped makes a series of the collector's /metrics NaN in the samples
// whose scrape failed (no goroutine at all: the collector did not answer
// within the scrape's timeout).
func scraped(f func(report.SoakSample) float64) func(report.SoakSample) float64 {
	return func(s report.SoakSample) float64 {
		if s.Goroutines == 0 {
			return math.NaN()
		}
		return f(s)
	}
}

// fullWindow reports whether a sample's window is at least half the
// sampling interval: the run's last window, cut short, is left out of the
// fits and the chart (its per-second figures are noise).
func fullWindow(s *report.Soak, m report.SoakSample) bool {
	return s.Every <= 0 || m.Window >= s.Every/2
}

// SoakSeries lists the series of a soak in chart order.
func SoakSeries() []soakSeries {
	perSec := func(n int64, s report.SoakSample) float64 {
		if s.Window <= 0 {
			return 0
		}
		return float64(n) / s.Window.Seconds()
	}
	return []soakSeries{
		{Key: "rss", Name: "RSS (VmRSS)", Unit: "MiB", Note: "anonymous memory plus the pages of files the collector maps (judged as the two parts)",
			Value: func(s report.SoakSample) float64 { return float64(s.RSS) / mib }},
		{Key: "rss_anon", Name: "anonymous RSS (RssAnon)", Unit: "MiB", Judged: true,
			Value: func(s report.SoakSample) float64 { return float64(s.Anon) / mib }},
		{Key: "rss_file", Name: "file-backed RSS (RssFile)", Unit: "MiB", Note: "pages of Badger's mapped files: grow with the data, reclaimable",
			Value: func(s report.SoakSample) float64 { return float64(s.File) / mib }},
		{Key: "heap_inuse", Name: "Go heap in use", Unit: "MiB", Judged: true,
			Value: scraped(func(s report.SoakSample) float64 { return float64(s.HeapInuse) / mib })},
		{Key: "heap_goal", Name: "Go heap goal (next GC)", Unit: "MiB", Judged: true,
			Value: scraped(func(s report.SoakSample) float64 { return float64(s.HeapGoal) / mib })},
		{Key: "goroutines", Name: "goroutines", Unit: "count", Note: "one per open connection, which follow the load's bursts: judged beyond them",
			Value: scraped(func(s report.SoakSample) float64 { return float64(s.Goroutines) })},
		{Key: "goroutines_own", Name: "goroutines beyond one per socket", Unit: "count", Judged: true,
			Value: scraped(func(s report.SoakSample) float64 { return float64(s.GoroutinesBeyondConns()) })},
		{Key: "open_files", Name: "open files", Unit: "count", Note: "all descriptors: data files follow the data dir's files, sockets the connections",
			Value: func(s report.SoakSample) float64 { return float64(s.OpenFiles) }},
		{Key: "sockets", Name: "open sockets", Unit: "count", Note: "the load generator's connections, more of them after a stall",
			Value: func(s report.SoakSample) float64 { return float64(s.Sockets) }},
		{Key: "open_other", Name: "open files other than data files and sockets", Unit: "count", Judged: true,
			Value: func(s report.SoakSample) float64 { return float64(s.OtherFiles()) }},
		{Key: "data_dir", Name: "data dir", Unit: "GiB", Note: "grows by design with retention on: judged per accepted event",
			Value: func(s report.SoakSample) float64 { return float64(s.DataDirBytes) / (1 << 30) }},
		{Key: "p99", Name: "p99 latency per window", Unit: "ms", Note: "judged by phase",
			Value: func(s report.SoakSample) float64 { return float64(s.P99) / 1e6 }},
		{Key: "accepted_per_sec", Name: "accepted events/s", Unit: "events/s",
			Value: func(s report.SoakSample) float64 { return perSec(s.Accepted, s) }},
		{Key: "cpu", Name: "collector CPU", Unit: "cores",
			Value: func(s report.SoakSample) float64 { return s.CPU }},
	}
}

// lineFit is a least-squares line y = a + b·x with the standard error of b.
type lineFit struct {
	N          int
	Slope      float64 // b
	Intercept  float64 // a
	SE         float64 // standard error of b, widened for autocorrelation
	CI         float64 // half-width of b's ~99% interval
	Mean       float64 // of y
	ResidualSD float64
	R2         float64
	Rho        float64 // lag-1 autocorrelation of the residuals (≥ 0)
}

// fitLine fits y against x by least squares. Successive samples of a soak
// are not independent (a GC cycle, a memtable or a compaction spans
// several), so the slope's standard error is widened by the residuals'
// lag-1 autocorrelation ρ: the effective number of samples is
// n·(1−ρ)/(1+ρ). The 99% interval uses Student's t for that many samples. With
// fewer than 3 points, or x all equal, the fit is NaN.
func fitLine(x, y []float64) lineFit {
	n := len(x)
	f := lineFit{N: n, Slope: math.NaN(), Intercept: math.NaN(), SE: math.NaN(), CI: math.NaN(), Mean: math.NaN(),
		ResidualSD: math.NaN(), R2: math.NaN()}
	if n != len(y) || n < 3 {
		return f
	}
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx /= float64(n)
	my /= float64(n)
	f.Mean = my
	var sxx, sxy, syy float64
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxx += dx * dx
		sxy += dx * dy
		syy += dy * dy
	}
	if sxx == 0 {
		return f
	}
	f.Slope = sxy / sxx
	f.Intercept = my - f.Slope*mx
	var sse, lag float64
	prev := 0.0
	for i := range x {
		e := y[i] - (f.Intercept + f.Slope*x[i])
		sse += e * e
		if i > 0 {
			lag += e * prev
		}
		prev = e
	}
	f.ResidualSD = math.Sqrt(sse / float64(n-2))
	f.R2 = 1
	if syy > 0 {
		f.R2 = 1 - sse/syy
	}
	if sse > 0 {
		f.Rho = math.Min(math.Max(lag/sse, 0), 0.99)
	}
	neff := float64(n) * (1 - f.Rho) / (1 + f.Rho)
	f.SE = math.Sqrt(sse/float64(n-2)/sxx) * math.Sqrt((1+f.Rho)/(1-f.Rho))
	f.CI = tQuantile995(neff-2) * f.SE
	return f
}

// tQuantile995 is the 99.5th percentile of Student's t with df degrees of
// freedom (df < 1 counts as 1): from a table below 10, then the
// Cornish-Fisher expansion around the normal's 2.5758, within 0.5% there.
func tQuantile995(df float64) float64 {
	table := []float64{63.657, 9.925, 5.841, 4.604, 4.032, 3.707, 3.499, 3.355, 3.250}
	if df < 1 {
		df = 1
	}
	if df < 10 {
		return table[int(df)-1]
	}
	const z = 2.575829
	z3, z5 := z*z*z, z*z*z*z*z
	return z + (z3+z)/(4*df) + (5*z5+16*z3+3*z)/(96*df*df)
}

// afterWarmup returns the samples whose windows start after the warm-up,
// but for a last window cut short.
func afterWarmup(s *report.Soak) []report.SoakSample {
	var out []report.SoakSample
	for _, m := range s.Samples {
		if m.At-m.Window >= s.Warmup && fullWindow(s, m) {
			out = append(out, m)
		}
	}
	return out
}

// AnalyzeSoak fits every series after the warm-up, judges the storage
// growth per accepted event and the p99 by phase, and sets s.Fits,
// s.Storage and s.Checks.
func AnalyzeSoak(s *report.Soak) {
	post := afterWarmup(s)
	span := 0.0
	if len(post) > 1 {
		span = (post[len(post)-1].At - post[0].At).Hours()
	}
	s.Fits = s.Fits[:0]
	s.Checks = s.Checks[:0]
	counts := map[string]int{}
	judged := 0
	var bounds []string
	for _, ser := range SoakSeries() {
		var hours, ys []float64
		for _, m := range post {
			if v := ser.Value(m); !math.IsNaN(v) {
				hours, ys = append(hours, m.At.Hours()), append(ys, v)
			}
		}
		lf := fitLine(hours, ys)
		f := report.SoakFit{Key: ser.Key, Series: ser.Name, Unit: ser.Unit, N: lf.N, Mean: lf.Mean, Slope: lf.Slope, SlopeCI: lf.CI,
			Intercept: lf.Intercept, Growth: lf.Slope * span, ResidualSD: lf.ResidualSD, Judged: ser.Judged, Note: ser.Note}
		if lf.Mean > 0 {
			f.Rel, f.RelCI = lf.Slope/lf.Mean, lf.CI/lf.Mean
		} else {
			f.Rel, f.RelCI = math.NaN(), math.NaN()
		}
		if ser.Judged {
			f.Verdict = slopeVerdict(f.Rel, f.RelCI)
			judged++
			counts[f.Verdict]++
			if f.Verdict != VerdictFlat {
				bounds = append(bounds, fmt.Sprintf("%s %s, %s ± %s of its mean per hour", ser.Name, f.Verdict,
					signedNum(100*f.Rel)+"%", strconvF(100*f.RelCI)+"%"))
			}
		}
		s.Fits = append(s.Fits, f)
	}
	got := fmt.Sprintf("%d flat, %d within the noise, %d rising", counts[VerdictFlat], counts[VerdictNoise], counts[VerdictRising])
	if len(bounds) > 0 {
		got += " (" + strings.Join(bounds, "; ") + ")"
	}
	s.Checks = append(s.Checks, report.Check{Name: "no upward slope after the warm-up: anonymous RSS, Go heap in use and goal, goroutines beyond one per socket, open files other than data files and sockets",
		Want: fmt.Sprintf("none rising: slope < %.0f%% of the mean per hour, or not told from zero (99%%)", SoakMaxSlope*100), Got: got,
		OK: judged > 0 && counts[VerdictRising] == 0})

	if rf, dd := s.Fit("rss_file"), s.Fit("data_dir"); rf != nil && dd != nil {
		written := dd.Slope * 1024 // MiB per hour
		s.Checks = append(s.Checks, report.Check{Name: "RSS beyond anonymous memory is the data written: file-backed RSS against the data dir, slopes",
			Want: fmt.Sprintf("≤ %.1f× (or flat)", SoakFileFactor),
			Got:  fmt.Sprintf("%s against %s MiB/h", signedNum(rf.Slope), signedNum(written)),
			OK:   rf.Rel < SoakMaxSlope || rf.Slope <= SoakFileFactor*written})
	}

	p0, p2 := s.Phases[0].P99, s.Phases[2].P99
	s.Checks = append(s.Checks, report.Check{Name: "p99 stable: last third after the warm-up against the first",
		Want: fmt.Sprintf("≤ %.0f×", SoakP99Factor),
		Got:  fmt.Sprintf("%s ms against %s ms (%.2f×)", report.Millis(p2), report.Millis(p0), ratio(float64(p2), float64(p0))),
		OK:   p0 > 0 && p2 > 0 && float64(p2) <= SoakP99Factor*float64(p0)})

	s.Storage = soakStorage(s, post)
	s.CPU = soakCPU(s.Samples, s.Machine.Cores)
	st := s.Storage
	s.Checks = append(s.Checks, report.Check{Name: "data dir grows with the events stored: marginal bytes per accepted event, last third against the first",
		Want: fmt.Sprintf("≤ %.1f×", SoakStorageFactor),
		Got: fmt.Sprintf("%.0f against %.0f bytes per event (%.2f×)", st.BytesPerEvent[2], st.BytesPerEvent[0],
			ratio(st.BytesPerEvent[2], st.BytesPerEvent[0])),
		OK: st.BytesPerEvent[0] > 0 && st.BytesPerEvent[2] > 0 && st.BytesPerEvent[2] <= SoakStorageFactor*st.BytesPerEvent[0]})

	var errs int64
	for _, n := range s.Errors {
		errs += n
	}
	s.Checks = append(s.Checks, report.Check{Name: "every request answered 2xx, none dropped", Want: "0 errors, 0 not sent",
		Got: fmt.Sprintf("%d errors (%s), %d not sent, of %s requests", errs, report.Errors(s.Errors), s.Dropped, report.Thousands(float64(s.Requests))),
		OK:  s.Requests > 0 && errs == 0 && s.Dropped == 0})
	s.Checks = append(s.Checks, report.Check{Name: "clean shutdown on SIGTERM", Want: "exit 0", Got: map[bool]string{true: "exit 0", false: "failed"}[s.StoppedCleanly],
		OK: s.StoppedCleanly})
}

// slopeVerdict judges a slope relative to its series' mean per hour: a
// series is rising when its slope is both material (SoakMaxSlope or more)
// and real (its 99% interval excludes zero). Below SoakMaxSlope it is
// flat; a material slope that the run's noise cannot tell from none is
// within the noise. NaN (too few samples) is within the noise too.
func slopeVerdict(rel, relCI float64) string {
	switch {
	case math.IsNaN(rel):
		return VerdictNoise
	case rel < SoakMaxSlope:
		return VerdictFlat
	case rel-relCI > 0:
		return VerdictRising
	}
	return VerdictNoise
}

// The verdicts of a judged series.
const (
	VerdictFlat   = "flat"
	VerdictNoise  = "within the noise"
	VerdictRising = "rising"
)

// soakStorage fits the data dir's size against the accepted events so far:
// the slope is the marginal cost of an event, bytes per event, in each
// third after the warm-up and over all of it.
func soakStorage(s *report.Soak, post []report.SoakSample) report.SoakStorage {
	var st report.SoakStorage
	fit := func(ms []report.SoakSample) lineFit {
		x, y := make([]float64, len(ms)), make([]float64, len(ms))
		for i, m := range ms {
			x[i], y[i] = float64(m.AcceptedTotal), float64(m.DataDirBytes)
		}
		return fitLine(x, y)
	}
	var thirds [3][]report.SoakSample
	for _, m := range post {
		if k := phaseOf(m.At-m.Window/2, s.Warmup, s.Duration); k >= 0 {
			thirds[k] = append(thirds[k], m)
		}
	}
	for k, ms := range thirds {
		st.BytesPerEvent[k] = finiteOr0(fit(ms).Slope)
	}
	all := fit(post)
	st.Overall, st.R2 = finiteOr0(all.Slope), finiteOr0(all.R2)
	if n := len(post); n > 1 {
		events := float64(post[n-1].AcceptedTotal - post[0].AcceptedTotal)
		secs := (post[n-1].At - post[0].At).Seconds()
		if secs > 0 {
			st.PerDayGiB = st.Overall * events / secs * float64(24*time.Hour/time.Second) / (1 << 30)
		}
	}
	return st
}

func finiteOr0(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// SoakPanels are the chart's panels: one per series with its fit, the
// p99 panel with each phase's pooled p99, the CPU panel with the load
// generator's and the other processes' share of the machine.
func SoakPanels(s *report.Soak) []report.SoakPanel {
	var out []report.SoakPanel
	for _, ser := range SoakSeries() {
		vals := make([]float64, len(s.Samples))
		for i, m := range s.Samples {
			vals[i] = math.NaN()
			if fullWindow(s, m) {
				vals[i] = ser.Value(m)
			}
		}
		p := report.SoakPanel{Key: ser.Key, Title: ser.Name, Unit: ser.Unit, Lines: []report.SoakLine{{Name: ser.Name, Values: vals}}, Fit: s.Fit(ser.Key)}
		switch ser.Key {
		case "p99":
			for i, ph := range s.Phases {
				p.Segments = append(p.Segments, report.SoakSegment{From: ph.From, To: ph.To, Value: float64(ph.P99) / 1e6,
					Label: fmt.Sprintf("third %d: p99 %s ms over %s requests", i+1, report.Millis(ph.P99), report.Thousands(float64(ph.Requests)))})
			}
		case "cpu":
			gen, others, iowait := make([]float64, len(s.Samples)), make([]float64, len(s.Samples)), make([]float64, len(s.Samples))
			for i, m := range s.Samples {
				gen[i], others[i], iowait[i] = math.NaN(), math.NaN(), math.NaN()
				if fullWindow(s, m) {
					gen[i], others[i], iowait[i] = m.SelfCPU, m.OthersCPU(), m.IOWait
				}
			}
			p.Title = "CPU"
			p.Lines[0].Name = "collector"
			p.Lines = append(p.Lines, report.SoakLine{Name: "load generator", Values: gen, Color: "#72b7b2"},
				report.SoakLine{Name: "other processes", Values: others, Color: "#b279a2"},
				report.SoakLine{Name: "I/O wait", Values: iowait, Color: "#9d755d"})
		}
		out = append(out, p)
	}
	return out
}

// soakCPU averages the CPU figures of every sample, the warm-up included:
// how much of the machine the collector, the load generator and the rest
// took.
func soakCPU(ms []report.SoakSample, cores int) report.SoakCPU {
	if cores <= 0 {
		cores = runtime.NumCPU()
	}
	c := report.SoakCPU{Cores: cores}
	var wall float64
	saturated := 0.0
	for _, m := range ms {
		w := m.Window.Seconds()
		wall += w
		c.Collector += m.CPU * w
		c.Generator += m.SelfCPU * w
		c.Others += m.OthersCPU() * w
		if m.MachineCPU >= 0.95*float64(cores) {
			saturated += w
		}
	}
	if wall > 0 {
		c.Collector /= wall
		c.Generator /= wall
		c.Others /= wall
		c.Saturated = saturated / wall
	}
	return c
}

func signedNum(v float64) string {
	if v >= 0 {
		return "+" + strconvF(v)
	}
	return strconvF(v)
}

func strconvF(v float64) string {
	if math.Abs(v) >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
