package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

func sampleRows() []Row {
	return []Row{
		{
			Scenario: "ingest", Encoding: "identity", Projects: 1, Plugins: 0,
			EventsPerSec: 612345.6, RequestsPerSec: 3061.7, WireMBps: 187.25, RawMBps: 187.25,
			P50: 1250 * time.Microsecond, P90: 2500 * time.Microsecond, P99: 8754 * time.Microsecond, P999: 31 * time.Millisecond,
			Accepted: 1, ServerCPU: 1.434, ServerPeakRSS: 212 << 20, ServerMedianRSS: 180 << 20,
		},
		{
			Scenario: "ingest-gzip", Encoding: "gzip", Projects: 1000, Plugins: 3, Retention: true,
			EventsPerSec: 1234567, RequestsPerSec: 6172.8, WireMBps: 21.4, RawMBps: 190.5,
			P50: 3 * time.Millisecond, P90: 4 * time.Millisecond, P99: 12345 * time.Microsecond, P999: 50 * time.Millisecond,
			Errors: map[int]int64{503: 1, 429: 3, 0: 2}, ServerCPU: 1.9, ServerPeakRSS: 300 << 20,
			Note: "open loop at 3000 req/s",
		},
	}
}

func TestMarkdown(t *testing.T) {
	m := Machine{CPUModel: "AMD EPYC 7B13", Cores: 2, MemTotal: 8 << 30, Kernel: "Linux 6.8.0", GoVersion: "go1.26.8",
		When: time.Date(2025, 11, 28, 21, 3, 0, 0, time.UTC)}
	checks := []Check{
		{Name: "ingest, no plugin", Want: "≥ 600,000 events/s", Got: "612,346 events/s", OK: true},
		{Name: "p99 at half | the maximum", Want: "< 10 ms", Got: "12.35 ms", OK: false},
	}
	var b bytes.Buffer
	if err := Markdown(&b, m, sampleRows(), checks); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"## Machine", "AMD EPYC 7B13", "| logical CPUs | 2 |", "8.0 GiB", "Linux 6.8.0", "go1.26.8", "2025-11-28 21:03 UTC",
		"## Results",
		"| ingest | identity | 1 | 0 | off | 612,346 | 3,062 | 187 | 187 | 1.25 | 2.50 | 8.75 | 31.00 | 0 | 100.0 % | 1.43 | 180 | 212 |",
		"| ingest-gzip | gzip | 1000 | 3 | on | 1,234,567 |",
		"1,234,567", "6,173", "21.4", "190", "3.00", "4.00", "12.35", "50.00", "net×2 429×3 503×1", "1.90", "300",
		"open loop at 3000 req/s",
		"## Targets", "| ingest, no plugin | ≥ 600,000 events/s | 612,346 events/s | PASS |",
		`| p99 at half \| the maximum | < 10 ms | 12.35 ms | **FAIL** |`, "1 of 2 targets met.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q\n%s", want, md)
		}
	}
	// Every table row has as many cells as the header.
	var widths []int
	results, _, _ := strings.Cut(md, "## Targets")
	for _, line := range strings.Split(results, "\n") {
		if strings.HasPrefix(line, "| scenario") || strings.HasPrefix(line, "| ingest") {
			widths = append(widths, strings.Count(strings.ReplaceAll(line, `\|`, ""), "|"))
		}
	}
	if len(widths) != 3 || widths[0] != widths[1] || widths[0] != widths[2] {
		t.Errorf("table cells per line %v", widths)
	}

	b.Reset()
	if err := Markdown(&b, Machine{}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "No scenario ran.") || strings.Contains(b.String(), "## Targets") {
		t.Errorf("empty report:\n%s", b.String())
	}
}

func TestFormatting(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.5: "1,234,568", -45678: "-45,678", 100000: "100,000", 0.4: "0", -0.4: "0"} {
		if got := Thousands(v); got != want {
			t.Errorf("Thousands(%v) = %q, want %q", v, got, want)
		}
	}
	if Thousands(math.NaN()) != "–" {
		t.Error("NaN")
	}
	if got := Millis(1234567 * time.Nanosecond); got != "1.23" {
		t.Errorf("Millis = %q", got)
	}
	if got := Errors(map[int]int64{429: 3}); got != "429×3" {
		t.Errorf("Errors = %q", got)
	}
	if got := Errors(map[int]int64{500: 0}); got != "0" {
		t.Errorf("Errors of zero counts = %q", got)
	}
	if got := MiB(0); got != "–" {
		t.Errorf("MiB(0) = %q", got)
	}
}

// svgDoc is the part of the chart the tests look at.
type svgNode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Nodes   []svgNode  `xml:",any"`
}

func (n svgNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n svgNode) walk(f func(svgNode)) {
	f(n)
	for _, c := range n.Nodes {
		c.walk(f)
	}
}

func parseSVG(t *testing.T, b []byte) svgNode {
	t.Helper()
	// Strict well-formedness first: every token must decode.
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, b)
		}
	}
	var root svgNode
	if err := xml.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	if root.XMLName.Local != "svg" || root.XMLName.Space != "http://www.w3.org/2000/svg" {
		t.Fatalf("root element %v", root.XMLName)
	}
	return root
}

func TestSVG(t *testing.T) {
	rows := sampleRows()
	rows = append(rows, Row{Scenario: "idle", EventsPerSec: 0})
	var b bytes.Buffer
	if err := SVG(&b, "Uptimizr Edge load suite", rows); err != nil {
		t.Fatal(err)
	}
	root := parseSVG(t, b.Bytes())
	bars := map[string][]svgNode{}
	var texts []string
	root.walk(func(n svgNode) {
		if n.XMLName.Local == "rect" && n.attr("class") != "" {
			bars[n.attr("class")] = append(bars[n.attr("class")], n)
		}
		if n.XMLName.Local == "text" {
			texts = append(texts, strings.TrimSpace(n.Text))
		}
	})
	if len(bars["events"]) != len(rows) || len(bars["p99"]) != len(rows) {
		t.Fatalf("%d events bars and %d p99 bars for %d rows", len(bars["events"]), len(bars["p99"]), len(rows))
	}
	// Bar lengths follow the values: ingest-gzip has the most events/s and
	// the highest p99; idle has no bar.
	width := func(n svgNode) float64 {
		var w float64
		if _, err := fmt.Sscan(n.attr("width"), &w); err != nil {
			t.Fatal(err)
		}
		return w
	}
	ev, p := bars["events"], bars["p99"]
	if !(width(ev[1]) > width(ev[0]) && width(ev[0]) > 0 && width(ev[2]) == 0) {
		t.Errorf("events bar widths %v %v %v", width(ev[0]), width(ev[1]), width(ev[2]))
	}
	if !(width(p[1]) > width(p[0]) && width(p[0]) > 0) {
		t.Errorf("p99 bar widths %v %v", width(p[0]), width(p[1]))
	}
	joined := strings.Join(texts, "\n")
	for _, want := range []string{"Uptimizr Edge load suite", "ingest", "ingest-gzip", "idle", "612,346", "1,234,567", "8.75", "12.35",
		"events per second", "milliseconds", "0", "250k", "1.25M", "12.5"} {
		if !strings.Contains(joined, want) {
			t.Errorf("SVG text lacks %q", want)
		}
	}
}

func TestSVGEscapes(t *testing.T) {
	rows := []Row{{Scenario: `a<b & "c" > d`, EventsPerSec: 10, P99: time.Millisecond},
		{Scenario: strings.Repeat("very-long-scenario-name-", 20), EventsPerSec: 5, P99: 2 * time.Millisecond}}
	var b bytes.Buffer
	if err := SVG(&b, `R&D <bench>`, rows); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<b &") || strings.Contains(b.String(), "R&D") {
		t.Fatalf("unescaped text in\n%s", b.String())
	}
	root := parseSVG(t, b.Bytes())
	var found, title bool
	root.walk(func(n svgNode) {
		if n.XMLName.Local == "text" && strings.Contains(n.Text, `a<b & "c" > d`) {
			found = true
		}
		if n.XMLName.Local == "title" && n.Text == "R&D <bench>" {
			title = true
		}
	})
	if !found || !title {
		t.Errorf("escaped names do not decode back (label %v, title %v)", found, title)
	}
	var md bytes.Buffer
	if err := Markdown(&md, Machine{}, rows, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), `a<b & "c" > d`) {
		t.Error("markdown lost the scenario name")
	}

	// No rows still makes a valid chart.
	b.Reset()
	if err := SVG(&b, "empty", nil); err != nil {
		t.Fatal(err)
	}
	parseSVG(t, b.Bytes())
}

func TestNiceAxis(t *testing.T) {
	for _, c := range []struct{ v, max, step float64 }{
		{0, 1, 0.2}, {1, 1, 0.2}, {7, 8, 2}, {612345, 800000, 200000}, {1234567, 1250000, 250000}, {12.35, 12.5, 2.5}, {0.003, 0.003, 0.001}, {100, 100, 20},
	} {
		a := niceAxis(c.v)
		if math.Abs(a.max-c.max) > 1e-9*c.max || math.Abs(a.step-c.step) > 1e-9*c.step {
			t.Errorf("niceAxis(%v) = %+v, want max %v step %v", c.v, a, c.max, c.step)
		}
		if a.max < c.v || len(a.ticks()) < 3 || len(a.ticks()) > 11 {
			t.Errorf("niceAxis(%v): %+v, ticks %v", c.v, a, a.ticks())
		}
	}
}

func TestTickLabels(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.001: "0.001", 2.5: "2.5", 12.5: "12.5", 250: "250", 1500: "1500"} {
		if got := trim(v); got != want {
			t.Errorf("trim(%v) = %q, want %q", v, got, want)
		}
	}
	for v, want := range map[float64]string{0: "0", 800: "800", 250000: "250k", 1250000: "1.25M", 2e9: "2G"} {
		if got := si(v); got != want {
			t.Errorf("si(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestJSON(t *testing.T) {
	m := Machine{CPUModel: "x", Cores: 4, When: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	rows := sampleRows()
	rows[0].RawMBps = math.Inf(1)
	var b bytes.Buffer
	if err := JSON(&b, m, rows); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Machine map[string]any   `json:"machine"`
		Rows    []map[string]any `json:"rows"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Machine["cores"] != 4.0 || doc.Machine["when"] != "2025-01-02T03:04:05Z" || len(doc.Rows) != 2 {
		t.Fatalf("%s", b.String())
	}
	r := doc.Rows[1]
	if r["scenario"] != "ingest-gzip" || r["p99_ms"] != 12.345 || r["events_per_sec"] != 1234567.0 || r["retention"] != true {
		t.Errorf("row %v", r)
	}
	if e, _ := r["errors_by_status"].(map[string]any); e["429"] != 3.0 || e["0"] != 2.0 {
		t.Errorf("errors %v", r["errors_by_status"])
	}
	if doc.Rows[0]["raw_mb_per_sec"] != 0.0 {
		t.Errorf("infinite value written as %v", doc.Rows[0]["raw_mb_per_sec"])
	}
}

func TestDetectMachine(t *testing.T) {
	m := DetectMachine()
	if m.Cores <= 0 || m.GoVersion == "" || m.CPUModel == "" || m.When.IsZero() {
		t.Errorf("%+v", m)
	}
	t.Logf("%+v", m)
}

func TestProcParsers(t *testing.T) {
	cpuinfo := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n"
	if got := cpuModel(strings.NewReader(cpuinfo)); got != "AMD EPYC 7B13 64-Core Processor" {
		t.Errorf("cpuModel = %q", got)
	}
	arm := "processor\t: 0\nBogoMIPS\t: 108.00\n\nHardware\t: BCM2835\nModel\t: Raspberry Pi 4 Model B Rev 1.4\n"
	if got := cpuModel(strings.NewReader(arm)); got != "BCM2835" {
		t.Errorf("cpuModel(arm) = %q", got)
	}
	meminfo := "MemTotal:        8141508 kB\nMemFree:          123456 kB\n"
	if got := memTotal(strings.NewReader(meminfo)); got != 8141508*1024 {
		t.Errorf("memTotal = %d", got)
	}
}
