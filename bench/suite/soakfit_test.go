package suite

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/uptimizr/edge/bench/report"
)

func TestFitLineExact(t *testing.T) {
	x := []float64{0, 1, 2, 3, 4, 5}
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = 3 + 2*v
	}
	f := fitLine(x, y)
	if math.Abs(f.Slope-2) > 1e-12 || math.Abs(f.Intercept-3) > 1e-12 || f.R2 != 1 || f.SE > 1e-12 || f.Mean != 8 {
		t.Fatalf("%+v", f)
	}
	if f := fitLine(x[:2], y[:2]); !math.IsNaN(f.Slope) {
		t.Errorf("two points fitted: %+v", f)
	}
	if f := fitLine([]float64{1, 1, 1}, []float64{1, 2, 3}); !math.IsNaN(f.Slope) {
		t.Errorf("x all equal fitted: %+v", f)
	}
}

// ar1 is a flat series of n points with AR(1) noise of coefficient rho
// and innovations of standard deviation sd.
func ar1(r *rand.Rand, n int, rho, sd float64) []float64 {
	y := make([]float64, n)
	e := 0.0
	for i := range y {
		e = rho*e + r.NormFloat64()*sd
		y[i] = 100 + e
	}
	return y
}

// Samples of a soak are autocorrelated (a GC cycle or a compaction spans
// several): a flat series must not often show a "significant" slope. The
// plain least-squares 99% interval excludes zero in far more than 1% of
// flat AR(1) series; fitLine's widened one about as often as it should.
func TestFitLineIntervalCoversAFlatSeries(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const runs, n = 400, 300
	x := make([]float64, n)
	for i := range x {
		x[i] = float64(i)
	}
	var widened, plain int
	for range runs {
		y := ar1(r, n, 0.8, 1)
		f := fitLine(x, y)
		if math.Abs(f.Slope) > f.CI {
			widened++
		}
		naive := f.SE * math.Sqrt((1-f.Rho)/(1+f.Rho)) // without the widening
		if math.Abs(f.Slope) > 2.59*naive {
			plain++
		}
	}
	t.Logf("a flat AR(1) series' slope found significant: %d of %d widened, %d plain", widened, runs, plain)
	if widened > runs*4/100 {
		t.Errorf("the widened interval excludes zero in %d of %d flat series", widened, runs)
	}
	if plain < runs*15/100 {
		t.Errorf("the plain interval excludes zero in only %d of %d flat series: the test shows nothing", plain, runs)
	}
	// A steady rise well above the noise is found.
	y := ar1(r, n, 0.8, 1)
	for i := range y {
		y[i] += 0.05 * float64(i)
	}
	if f := fitLine(x, y); f.Slope-f.CI <= 0 || math.Abs(f.Slope-0.05) > 0.02 {
		t.Errorf("rise of 0.05 per step: slope %v ± %v", f.Slope, f.CI)
	}
}

func TestTQuantile(t *testing.T) {
	prev := math.Inf(1)
	for df := 0.5; df < 200; df += 0.5 {
		q := tQuantile995(df)
		if q > prev || q < 2.5758 {
			t.Fatalf("t(%v) = %v after %v", df, q, prev)
		}
		prev = q
	}
	for df, want := range map[float64]float64{1: 63.657, 5: 4.032, 10: 3.169, 20: 2.845, 30: 2.750, 120: 2.617} {
		if got := tQuantile995(df); math.Abs(got-want)/want > 0.005 {
			t.Errorf("t(%v) = %v, want %v", df, got, want)
		}
	}
}

func TestSlopeVerdict(t *testing.T) {
	for _, c := range []struct {
		rel, ci float64
		want    string
	}{
		{0.01, 0.5, "flat"}, {-0.3, 0.1, "flat"}, {0.049, 0.001, "flat"},
		{0.2, 0.05, "rising"}, {0.2, 0.3, "within the noise"}, {math.NaN(), 0, "within the noise"},
	} {
		if got := slopeVerdict(c.rel, c.ci); got != c.want {
			t.Errorf("slopeVerdict(%v, %v) = %s, want %s", c.rel, c.ci, got, c.want)
		}
	}
}

func TestPhaseOf(t *testing.T) {
	const w, d = 3 * time.Minute, 30 * time.Minute
	for at, want := range map[time.Duration]int{0: -1, 179 * time.Second: -1, w: 0, 11*time.Minute + 59*time.Second: 0,
		12 * time.Minute: 1, 21 * time.Minute: 2, d: 2, d + time.Minute: 2} {
		if got := phaseOf(at, w, d); got != want {
			t.Errorf("phaseOf(%v) = %d, want %d", at, got, want)
		}
	}
}

// synthSoak is a 30-minute soak sampled every 5 s at 200k accepted
// events/s whose every series is flat but for noise, and whose data dir
// costs 66 bytes per event, its file-backed RSS following it.
func synthSoak(seed uint64) *report.Soak {
	r := rand.New(rand.NewPCG(seed, 7))
	s := &report.Soak{Machine: report.Machine{Cores: 2}, Scenario: "soak", Retention: true, Duration: 30 * time.Minute,
		Every: 5 * time.Second, Warmup: 3 * time.Minute, Rate: 1000, Requests: 360 * 5000, OK: 360 * 5000}
	var accepted int64
	for i := 1; i <= 360; i++ {
		at := time.Duration(i) * s.Every
		accepted += 5 * 200_000
		data := 66 * accepted
		s.Samples = append(s.Samples, report.SoakSample{
			At: at, Window: s.Every,
			Anon: int64((150 + 20*r.NormFloat64()) * mib), File: data + int64(r.IntN(8<<20)),
			HeapInuse: int64((110 + 25*r.NormFloat64()) * mib), HeapGoal: int64((150 + 30*r.NormFloat64()) * mib),
			Goroutines: 300 + int64(r.IntN(3)), OpenFiles: 270 + int64(r.IntN(2)) + data/(256<<20), DataFiles: data / (256 << 20),
			DataDirBytes: data + int64(r.IntN(32<<20)), Requests: 5000, OK: 5000, Events: 5000 * 200, Accepted: 5000 * 200, AcceptedTotal: accepted,
			P99: time.Duration(5+r.IntN(5)) * time.Millisecond, CPU: 1, SelfCPU: 0.15, MachineCPU: 1.8,
		})
		s.Samples[len(s.Samples)-1].RSS = s.Samples[len(s.Samples)-1].Anon + s.Samples[len(s.Samples)-1].File
	}
	for i := range s.Phases {
		s.Phases[i] = report.SoakPhase{From: s.Warmup + time.Duration(i)*9*time.Minute, To: s.Warmup + time.Duration(i+1)*9*time.Minute,
			Requests: 108 * 5000, P99: 8 * time.Millisecond}
	}
	s.StoppedCleanly = true
	return s
}

func checkByPrefix(t *testing.T, s *report.Soak, prefix string) report.Check {
	t.Helper()
	for _, c := range s.Checks {
		if strings.HasPrefix(c.Name, prefix) {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", prefix, s.Checks)
	return report.Check{}
}

// A steady soak passes every check but, now and then, the slopes': a flat
// series whose noise gives it a material slope that its 99% interval
// does not reach down to zero from. The heap series swing by about 20% of
// their level, as the collector's do, so this happens in about one run
// in a hundred.
func TestAnalyzeSoakSteady(t *testing.T) {
	const runs = 100
	falseRising := 0
	for seed := range uint64(runs) {
		s := synthSoak(seed)
		AnalyzeSoak(s)
		for _, c := range s.Checks {
			if !c.OK && !strings.HasPrefix(c.Name, "no upward slope") {
				t.Errorf("seed %d: %s: %s (want %s)", seed, c.Name, c.Got, c.Want)
			}
		}
		if !checkByPrefix(t, s, "no upward slope").OK {
			falseRising++
		}
		for _, f := range s.Fits {
			if f.Judged && f.Verdict == "rising" && f.Key != "rss_anon" && f.Key != "heap_inuse" && f.Key != "heap_goal" {
				t.Errorf("seed %d: %s %s: %+v", seed, f.Series, f.Verdict, f)
			}
		}
		if st := s.Storage; math.Abs(st.Overall-66) > 2 || st.R2 < 0.99 {
			t.Errorf("storage %+v, want 66 bytes per event", st)
		}
		// 66 bytes × 200k events/s × 86,400 s.
		if want := 66.0 * 200_000 * 86400 / (1 << 30); math.Abs(s.Storage.PerDayGiB-want)/want > 0.05 {
			t.Errorf("per day %.0f GiB, want %.0f", s.Storage.PerDayGiB, want)
		}
		if n := s.Fit("rss_anon").N; n != 360-36 {
			t.Errorf("%d samples fitted, want the 324 after the warm-up", n)
		}
		if c := s.CPU; math.Abs(c.Collector-1) > 1e-9 || math.Abs(c.Others-0.65) > 1e-9 || c.Saturated != 0 || c.Cores != 2 {
			t.Errorf("cpu %+v", c)
		}
	}
	t.Logf("%d of %d steady soaks found a series rising", falseRising, runs)
	if falseRising > runs*5/100 {
		t.Errorf("%d of %d steady soaks found a series rising", falseRising, runs)
	}
}

func TestAnalyzeSoakFindsALeak(t *testing.T) {
	s := synthSoak(1)
	// Anonymous memory gains 20% of its level per hour.
	for i := range s.Samples {
		s.Samples[i].Anon += int64(0.2 * 150 * mib * s.Samples[i].At.Hours())
	}
	AnalyzeSoak(s)
	if f := s.Fit("rss_anon"); f.Verdict != "rising" || math.Abs(f.Rel-0.2) > 0.08 {
		t.Errorf("anonymous RSS: %s, %.1f%% per hour", f.Verdict, f.Rel*100)
	}
	if c := checkByPrefix(t, s, "no upward slope"); c.OK || !strings.Contains(c.Got, "anonymous RSS (RssAnon) rising") {
		t.Errorf("%+v", c)
	}

	// A goroutine lost every minute, nothing else.
	s = synthSoak(2)
	for i := range s.Samples {
		s.Samples[i].Goroutines += int64(s.Samples[i].At.Minutes())
	}
	AnalyzeSoak(s)
	if f := s.Fit("goroutines_own"); f.Verdict != "rising" {
		t.Errorf("goroutines: %+v", f)
	}
	if c := checkByPrefix(t, s, "no upward slope"); c.OK || !strings.Contains(c.Got, "1 rising") || !strings.Contains(c.Got, "goroutines beyond one per socket rising") {
		t.Errorf("%+v", c)
	}
}

// A stall late in the run makes the load open 200 more connections: the
// collector's goroutines and sockets rise with them, which is no leak.
func TestAnalyzeSoakConnectionBurstIsNoLeak(t *testing.T) {
	s := synthSoak(8)
	for i := range s.Samples {
		s.Samples[i].Sockets = 20
		s.Samples[i].Goroutines += 20
		if s.Samples[i].At > 25*time.Minute {
			s.Samples[i].Sockets += 200
			s.Samples[i].Goroutines += 200
			s.Samples[i].OpenFiles += 200
		}
	}
	AnalyzeSoak(s)
	if f := s.Fit("goroutines"); f.Rel < 10*SoakMaxSlope {
		t.Errorf("the burst does not show in the goroutines: %+v", f)
	}
	for _, key := range []string{"goroutines_own", "open_other"} {
		if f := s.Fit(key); f.Verdict != VerdictFlat {
			t.Errorf("%s: %+v", key, f)
		}
	}
	if c := checkByPrefix(t, s, "no upward slope"); !c.OK {
		t.Errorf("%+v", c)
	}
}

func TestAnalyzeSoakShortRunIsWithinTheNoise(t *testing.T) {
	s := synthSoak(3)
	s.Duration, s.Warmup = 3*time.Minute, 18*time.Second
	s.Samples = s.Samples[:36]
	AnalyzeSoak(s)
	// Three minutes of a heap that swings by 25 MiB cannot bound its slope
	// to 5% per hour either way.
	if f := s.Fit("heap_inuse"); f.Verdict == "rising" || f.RelCI < 10*SoakMaxSlope {
		t.Errorf("heap in use over 3 minutes: %+v", f)
	}
}

func TestAnalyzeSoakStorageAndLatency(t *testing.T) {
	s := synthSoak(4)
	// From the last third on, every event costs twice as much: something
	// accumulates that compaction does not reclaim.
	third := s.Warmup + 18*time.Minute
	var extra int64
	for i := range s.Samples {
		if s.Samples[i].At > third {
			extra += 66 * s.Samples[i].Accepted
		}
		s.Samples[i].DataDirBytes += extra
	}
	s.Phases[2].P99 = 3 * s.Phases[0].P99
	s.Errors = map[int]int64{503: 2}
	s.StoppedCleanly = false
	AnalyzeSoak(s)
	for prefix, want := range map[string]bool{
		"data dir grows":           false,
		"p99 stable":               false,
		"every request answered":   false,
		"clean shutdown":           false,
		"no upward slope":          true,
		"RSS beyond anonymous mem": true,
	} {
		if c := checkByPrefix(t, s, prefix); c.OK != want {
			t.Errorf("%s: ok %v (%s)", c.Name, c.OK, c.Got)
		}
	}
	if st := s.Storage; math.Abs(st.BytesPerEvent[0]-66) > 3 || math.Abs(st.BytesPerEvent[2]-132) > 6 {
		t.Errorf("bytes per event by third %v", st.BytesPerEvent)
	}
}

func TestAnalyzeSoakFilePagesBeyondTheData(t *testing.T) {
	s := synthSoak(5)
	for i := range s.Samples {
		s.Samples[i].File *= 2 // twice what was written
	}
	AnalyzeSoak(s)
	if c := checkByPrefix(t, s, "RSS beyond anonymous"); c.OK {
		t.Errorf("%+v", c)
	}
}

func TestSoakPanels(t *testing.T) {
	s := synthSoak(6)
	AnalyzeSoak(s)
	panels := SoakPanels(s)
	if len(panels) != len(SoakSeries()) {
		t.Fatalf("%d panels for %d series", len(panels), len(SoakSeries()))
	}
	for _, p := range panels {
		if p.Fit == nil || p.Fit.Key != p.Key || len(p.Lines[0].Values) != len(s.Samples) {
			t.Errorf("panel %s: fit %v, %d values", p.Key, p.Fit, len(p.Lines[0].Values))
		}
		switch p.Key {
		case "p99":
			if len(p.Segments) != 3 || p.Segments[2].Value != 8 {
				t.Errorf("p99 segments %+v", p.Segments)
			}
		case "cpu":
			if len(p.Lines) != 4 || math.Abs(p.Lines[2].Values[0]-0.65) > 1e-9 {
				t.Errorf("cpu lines %+v", p.Lines)
			}
		}
	}
}

// A sample whose /metrics scrape failed (the collector did not answer in
// time) has no heap nor goroutine figures, and the run's last window, cut
// short, has per-second figures of noise: the fits leave both out.
func TestAnalyzeSoakSkipsFailedScrapesAndTheCutWindow(t *testing.T) {
	s := synthSoak(9)
	m := &s.Samples[200]
	m.HeapInuse, m.HeapAlloc, m.HeapGoal, m.Goroutines = 0, 0, 0, 0
	last := s.Samples[len(s.Samples)-1]
	s.Samples = append(s.Samples, report.SoakSample{At: last.At + 30*time.Millisecond, Window: 30 * time.Millisecond,
		Anon: 5000 * mib, HeapInuse: 5000 * mib, HeapGoal: 5000 * mib, Goroutines: 300, Requests: 3, OK: 3,
		AcceptedTotal: last.AcceptedTotal + 600, DataDirBytes: last.DataDirBytes, CPU: 12})
	AnalyzeSoak(s)
	for key, n := range map[string]int{"rss_anon": 324, "heap_inuse": 323, "goroutines_own": 323, "cpu": 324} {
		if f := s.Fit(key); f.N != n {
			t.Errorf("%s: %d samples fitted, want %d", key, f.N, n)
		}
	}
	if c := checkByPrefix(t, s, "no upward slope"); !c.OK {
		t.Errorf("%+v", c)
	}
	for _, p := range SoakPanels(s) {
		if v := p.Lines[0].Values[len(s.Samples)-1]; !math.IsNaN(v) {
			t.Errorf("panel %s draws the cut window: %v", p.Key, v)
		}
		if p.Key == "heap_inuse" && !math.IsNaN(p.Lines[0].Values[200]) {
			t.Errorf("heap panel draws the failed scrape as %v", p.Lines[0].Values[200])
		}
	}
}
