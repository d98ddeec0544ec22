package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func sampleSoak() *Soak {
	s := &Soak{
		Machine: Machine{CPUModel: "AMD EPYC", Cores: 2, GoVersion: "go1.26.8"}, Scenario: "soak", Encoding: "identity", Retention: true,
		Plugins: []string{"pii-redact"}, BatchSize: 200, Duration: 10 * time.Minute, Every: 5 * time.Second, Warmup: time.Minute, Rate: 1019.5,
		Calibration:     &Row{Scenario: "soak-calibration", RequestsPerSec: 2039, EventsPerSec: 407800, P99: 27 * time.Millisecond, ServerCPU: 1.8},
		CalibrationTime: 20 * time.Second, Started: time.Date(2026, 12, 6, 19, 33, 0, 0, time.UTC),
		Requests: 600_000, OK: 599_998, Errors: map[int]int64{503: 2}, Events: 120_000_000, Accepted: 119_999_600, StoppedCleanly: true,
		Storage: SoakStorage{BytesPerEvent: [3]float64{66.5, 66.3, 65.7}, Overall: 66.2, R2: 0.9998, PerDayGiB: 1088},
		CPU:     SoakCPU{Cores: 2, Collector: 1.01, Generator: 0.13, Others: 0.8, Saturated: 0.4},
		Notes:   []string{"other engineers | compiled"},
	}
	for i := 1; i <= 120; i++ {
		s.Samples = append(s.Samples, SoakSample{At: time.Duration(i) * s.Every, Window: s.Every, RSS: int64(200+i) << 20,
			Anon: 150 << 20, Goroutines: 300, P99: time.Duration(5+i%3) * time.Millisecond})
	}
	for i := range s.Phases {
		s.Phases[i] = SoakPhase{From: time.Minute + time.Duration(i)*3*time.Minute, To: time.Minute + time.Duration(i+1)*3*time.Minute,
			Requests: 180_000, P50: time.Millisecond, P99: time.Duration(6+i) * time.Millisecond, P999: 20 * time.Millisecond, Max: 90 * time.Millisecond}
	}
	s.AfterWarmup = SoakPhase{From: time.Minute, To: 10 * time.Minute, Requests: 540_000, P99: 7 * time.Millisecond}
	s.Fits = []SoakFit{
		{Key: "rss", Series: "RSS (VmRSS)", Unit: "MiB", N: 108, Mean: 265, Slope: 720, SlopeCI: 3, Intercept: 200, Rel: 2.72, RelCI: 0.01, Growth: 108, Note: "not judged alone"},
		{Key: "rss_anon", Series: "anonymous RSS", Unit: "MiB", N: 108, Mean: 150, Slope: 0, SlopeCI: 4, Intercept: 150, Rel: 0, RelCI: 0.027, Judged: true, Verdict: "flat"},
		{Key: "goroutines", Series: "goroutines", Unit: "count", N: 108, Mean: 300, Slope: 40, SlopeCI: 5, Intercept: 296, Rel: 0.133, RelCI: 0.017, Judged: true, Verdict: "rising"},
	}
	s.Checks = []Check{{Name: "no upward slope", Want: "none rising", Got: "1 flat, 0 within the noise, 1 rising", OK: false},
		{Name: "p99 stable", Want: "≤ 2×", Got: "8.00 ms against 6.00 ms (1.33×)", OK: true}}
	return s
}

func TestSoakMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := SoakMarkdown(&b, sampleSoak()); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"# Uptimizr Edge soak", "retention on", "the plugin `pii-redact`", "1,020 req/s", "203,900 events/s", "for 10m0s", "every 5s",
		"half the closed-loop maximum", "measured first for 20s", "2,039 req/s", "The first 1.0 minutes are the warm-up",
		"| no upward slope | none rising | 1 flat, 0 within the noise, 1 rising | **FAIL** |", "| p99 stable | ≤ 2× | 8.00 ms against 6.00 ms (1.33×) | PASS |",
		"1 of 2 checks passed.",
		"## Fits after the warm-up (1.0–10.0 min)",
		"| anonymous RSS | MiB | 150 | +0.00 ± 4.00 | +0.0 % ± 2.7 % |", "| goroutines | count | 300 | +40.0 ± 5.00 | +13.3 % ± 1.7 % |", "**rising**",
		"not judged: not judged alone",
		"| third 1 | 1.0–4.0 | 180,000 | 1.00 | 6.00 | 20.00 | 90.00 |", "| third 3 | 7.0–10.0 |", "| after the warm-up | 1.0–10.0 | 540,000 |",
		"errors 503×2", "stopped cleanly",
		"66.2 bytes per accepted event", "R² 1.000", "66.5, 66.3, 65.7", "1088 GiB",
		"cores were shared", "the collector used 1.01 cores, the load generator 0.13 and other processes 0.80; 40% of the time",
		"- other engineers | compiled",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q\n%s", want, md)
		}
	}
	// Every row of a table has as many cells as its header.
	var width int
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			width = 0
			continue
		}
		n := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|")
		if width == 0 {
			width = n
		} else if n != width {
			t.Errorf("%d cells, header has %d: %s", n, width, line)
		}
	}

	s := sampleSoak()
	s.Calibration, s.StoppedCleanly = nil, false
	b.Reset()
	SoakMarkdown(&b, s)
	if !strings.Contains(b.String(), "The rate was given.") || !strings.Contains(b.String(), "did **not** stop cleanly") {
		t.Errorf("%s", b.String())
	}
}

func TestSoakSVG(t *testing.T) {
	s := sampleSoak()
	vals := func(f func(SoakSample) float64) []float64 {
		out := make([]float64, len(s.Samples))
		for i, m := range s.Samples {
			out[i] = f(m)
		}
		return out
	}
	panels := []SoakPanel{
		{Key: "rss", Title: "RSS", Unit: "MiB", Lines: []SoakLine{{Name: "RSS", Values: vals(func(m SoakSample) float64 { return float64(m.RSS) / (1 << 20) })}}, Fit: s.Fit("rss")},
		{Key: "p99", Title: "p99 <per window>", Unit: "ms", Lines: []SoakLine{{Name: "p99", Values: vals(func(m SoakSample) float64 { return float64(m.P99) / 1e6 })}},
			Segments: []SoakSegment{{From: time.Minute, To: 4 * time.Minute, Value: 6, Label: "third 1"}}},
		{Key: "cpu", Title: "CPU", Unit: "cores", Lines: []SoakLine{{Name: "collector", Values: vals(func(SoakSample) float64 { return 1 })},
			{Name: "other processes", Values: vals(func(SoakSample) float64 { return math.NaN() }), Color: "#b279a2"}}},
	}
	var b bytes.Buffer
	if err := SoakSVG(&b, "soak & <test>", s, panels); err != nil {
		t.Fatal(err)
	}
	root := parseSVG(t, b.Bytes())
	var groups, fits, segments, warm int
	var texts []string
	polylines := map[string]int{}
	var warmWidth float64
	root.walk(func(n svgNode) {
		switch {
		case n.XMLName.Local == "g" && n.attr("class") == "panel":
			groups++
		case n.XMLName.Local == "line" && n.attr("class") == "fit":
			fits++
		case n.XMLName.Local == "line" && n.attr("class") == "segment":
			segments++
		case n.XMLName.Local == "rect" && n.attr("class") == "warmup":
			warm++
			fmt.Sscan(n.attr("width"), &warmWidth)
		case n.XMLName.Local == "polyline":
			pts := strings.TrimSpace(n.attr("points"))
			k := 0
			if pts != "" {
				k = len(strings.Fields(pts))
			}
			polylines[strings.TrimSpace(n.Nodes[0].Text)] = k
		case n.XMLName.Local == "text":
			texts = append(texts, n.Text)
		}
	})
	if groups != 3 || fits != 1 || segments != 1 || warm != 3 {
		t.Errorf("%d panels, %d fit lines, %d segments, %d warm-up shades", groups, fits, segments, warm)
	}
	// 120 samples over 10 minutes on an axis to 10: the warm-up (1 min)
	// is a tenth of the plot's width.
	if plotW := float64(svgWidth - soakLeft - soakRight); math.Abs(warmWidth-plotW/10) > 0.5 {
		t.Errorf("warm-up width %v of %v", warmWidth, plotW)
	}
	if polylines["RSS"] != 120 || polylines["collector"] != 120 || polylines["other processes"] != 0 {
		t.Errorf("points per line %v", polylines)
	}
	joined := strings.Join(texts, "\n")
	for _, want := range []string{"soak & <test>", "RSS (MiB) · fit: +720 MiB/h, 272.0 % of the mean per hour", "p99 <per window> (ms)",
		"— collector", "— other processes", "warm-up (first 1.0 min, not fitted)", "10"} {
		if !strings.Contains(joined, want) {
			t.Errorf("SVG text lacks %q", want)
		}
	}

	// No samples still makes a valid chart.
	b.Reset()
	if err := SoakSVG(&b, "empty", &Soak{}, panels[:1]); err != nil {
		t.Fatal(err)
	}
	parseSVG(t, b.Bytes())
}

func TestSoakJSON(t *testing.T) {
	s := sampleSoak()
	s.Fits[0].Rel = math.Inf(1)
	var b bytes.Buffer
	if err := SoakJSON(&b, s); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Machine     map[string]any   `json:"machine"`
		Rate        float64          `json:"rate_requests_per_sec"`
		Duration    float64          `json:"duration_s"`
		Calibration map[string]any   `json:"calibration"`
		Errors      map[string]int64 `json:"errors_by_status"`
		Phases      []map[string]any `json:"phases"`
		Fits        []map[string]any `json:"fits"`
		Checks      []map[string]any `json:"checks"`
		Storage     map[string]any   `json:"storage"`
		CPU         map[string]any   `json:"cpu"`
		Samples     []map[string]any `json:"samples"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Rate != 1019.5 || doc.Duration != 600 || doc.Calibration["requests_per_sec"] != 2039.0 || doc.Errors["503"] != 2 {
		t.Errorf("rate %v duration %v calibration %v errors %v", doc.Rate, doc.Duration, doc.Calibration, doc.Errors)
	}
	if len(doc.Samples) != 120 || doc.Samples[9]["at_s"] != 50.0 || doc.Samples[9]["rss_bytes"] != float64(210<<20) || doc.Samples[0]["p99_ms"] != 6.0 {
		t.Errorf("%d samples, [9] %v", len(doc.Samples), doc.Samples[9])
	}
	if len(doc.Phases) != 3 || doc.Phases[2]["p99_ms"] != 8.0 || doc.Phases[1]["from_s"] != 240.0 {
		t.Errorf("phases %v", doc.Phases)
	}
	if len(doc.Fits) != 3 || doc.Fits[2]["verdict"] != "rising" || doc.Fits[0]["slope_share_of_mean_per_hour"] != 0.0 || doc.Fits[1]["slope_ci99_per_hour"] != 4.0 {
		t.Errorf("fits %v", doc.Fits)
	}
	if len(doc.Checks) != 2 || doc.Checks[0]["ok"] != false || doc.Storage["bytes_per_accepted_event"] != 66.2 || doc.CPU["other_processes_cores"] != 0.8 {
		t.Errorf("checks %v storage %v cpu %v", doc.Checks, doc.Storage, doc.CPU)
	}
}

// What SoakJSON writes, ReadSoakJSON reads back: the run, its samples and
// phases, to the resolution JSON keeps.
func TestSoakJSONRoundTrip(t *testing.T) {
	s := sampleSoak()
	s.Samples[3].IOWait, s.Samples[3].MajorFaults, s.Samples[3].Sockets = 0.25, 17, 259
	var b bytes.Buffer
	if err := SoakJSON(&b, s); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSoakJSON(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Samples) != len(s.Samples) {
		t.Fatalf("%d samples back of %d", len(got.Samples), len(s.Samples))
	}
	for i := range s.Samples {
		if got.Samples[i] != s.Samples[i] {
			t.Fatalf("sample %d: %+v, want %+v", i, got.Samples[i], s.Samples[i])
		}
	}
	if got.Phases != s.Phases || got.AfterWarmup != s.AfterWarmup {
		t.Errorf("phases %+v / %+v", got.Phases, got.AfterWarmup)
	}
	if got.Duration != s.Duration || got.Every != s.Every || got.Warmup != s.Warmup || got.Rate != s.Rate || got.CalibrationTime != s.CalibrationTime ||
		got.Requests != s.Requests || got.Errors[503] != 2 || !got.StoppedCleanly || got.Machine.Cores != 2 || len(got.Notes) != 1 ||
		got.Calibration == nil || got.Calibration.RequestsPerSec != 2039 || got.Calibration.P99 != 27*time.Millisecond {
		t.Errorf("%+v", got)
	}
	if _, err := ReadSoakJSON(strings.NewReader("{")); err == nil {
		t.Error("a truncated file read without an error")
	}
}
