// Package report turns load-suite results into a markdown document, an SVG
// chart and a JSON dump, together with a description of the machine they
// were measured on.
package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Row is the outcome of one scenario.
type Row struct {
	Scenario  string
	Encoding  string // Content-Encoding of the request bodies
	Projects  int    // projects (API keys) the load rotated over
	Plugins   int    // plugins active on the collector
	Retention bool   // raw session retention on

	EventsPerSec, RequestsPerSec float64
	WireMBps, RawMBps            float64 // 10^6 bytes per second, compressed and decompressed

	P50, P90, P99, P999 time.Duration

	// Errors counts requests not answered 2xx by HTTP status; 0 stands for
	// transport errors.
	Errors map[int]int64
	// Accepted is the share of sent events the collector reported accepted,
	// 0–1; 0 means not reported.
	Accepted float64

	ServerCPU       float64 // cores the server used on average, e.g. 1.43
	ServerPeakRSS   int64   // bytes
	ServerMedianRSS int64   // bytes, 0 when not sampled
	Note            string
}

// Machine describes where the results were measured.
type Machine struct {
	CPUModel  string
	Cores     int   // logical CPUs this process may use
	MemTotal  int64 // bytes
	Kernel    string
	GoVersion string
	When      time.Time
}

// Check is one performance target and whether the run met it.
type Check struct {
	Name string
	Want string // e.g. "≥ 600,000 events/s"
	Got  string
	OK   bool
}

// DetectMachine describes the current machine from /proc (Linux); fields it
// cannot find are left empty.
func DetectMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), When: time.Now().UTC()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		m.CPUModel = cpuModel(f)
		f.Close()
	}
	if m.CPUModel == "" {
		m.CPUModel = runtime.GOARCH
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		m.MemTotal = memTotal(f)
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return m
}

// cpuModel is the first model name in /proc/cpuinfo; ARM kernels name it
// differently.
func cpuModel(r io.Reader) string {
	var fallback string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "model name":
			if v != "" {
				return v
			}
		case "Hardware", "cpu model", "Model", "uarch":
			if fallback == "" {
				fallback = v
			}
		}
	}
	return fallback
}

// memTotal is MemTotal of /proc/meminfo in bytes.
func memTotal(r io.Reader) int64 {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0
			}
			if len(f) >= 3 && strings.EqualFold(f[2], "kB") {
				n *= 1024
			}
			return n
		}
	}
	return 0
}

// Thousands formats v rounded to an integer with comma thousands
// separators: 1234567.8 → "1,234,568".
func Thousands(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	s := strconv.FormatFloat(math.Abs(math.Round(v)), 'f', 0, 64)
	var b strings.Builder
	if v < 0 && s != "0" {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Millis formats a duration in milliseconds with two decimals: "1.25".
func Millis(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64)
}

// MiB formats bytes in mebibytes without decimals; 0 is "–".
func MiB(n int64) string {
	if n <= 0 {
		return "–"
	}
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 0, 64)
}

// MBps formats megabytes per second with two significant decimals for small
// values.
func MBps(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// Errors formats error counts compactly by status, "429×3 503×1", with
// transport errors as "net×N"; none is "0".
func Errors(e map[int]int64) string {
	var codes []int
	for c, n := range e {
		if n != 0 {
			codes = append(codes, c)
		}
	}
	if len(codes) == 0 {
		return "0"
	}
	slices.Sort(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		name := strconv.Itoa(c)
		if c == 0 {
			name = "net"
		}
		parts[i] = name + "×" + strconv.FormatInt(e[c], 10)
	}
	return strings.Join(parts, " ")
}

// cell makes s safe inside a markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\r\n", " ")
	s = strings.ReplaceAll(s, "\n", " ")
	return s
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// Markdown writes the results as a markdown document: the machine, one
// table row per scenario, and the targets with PASS or FAIL (left out when
// there are none).
func Markdown(w io.Writer, m Machine, rows []Row, targets []Check) error {
	var b bytes.Buffer
	b.WriteString("# Uptimizr Edge load results\n\n## Machine\n\n| | |\n|---|---|\n")
	cpu := m.CPUModel
	if cpu == "" {
		cpu = "unknown"
	}
	fmt.Fprintf(&b, "| CPU | %s |\n", cell(cpu))
	fmt.Fprintf(&b, "| logical CPUs | %d |\n", m.Cores)
	if m.MemTotal > 0 {
		fmt.Fprintf(&b, "| memory | %.1f GiB |\n", float64(m.MemTotal)/(1<<30))
	}
	if m.Kernel != "" {
		fmt.Fprintf(&b, "| kernel | %s |\n", cell(m.Kernel))
	}
	if m.GoVersion != "" {
		fmt.Fprintf(&b, "| Go | %s |\n", cell(m.GoVersion))
	}
	if !m.When.IsZero() {
		fmt.Fprintf(&b, "| measured | %s |\n", m.When.UTC().Format("2006-01-02 15:04 MST"))
	}

	b.WriteString("\n## Results\n\n")
	if len(rows) == 0 {
		b.WriteString("No scenario ran.\n")
	} else {
		accepted, median, notes := false, false, false
		for _, r := range rows {
			accepted = accepted || r.Accepted > 0
			median = median || r.ServerMedianRSS > 0
			notes = notes || r.Note != ""
		}
		head := []string{"scenario", "encoding", "projects", "plugins", "retention", "events/s", "req/s",
			"wire MB/s", "raw MB/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "errors"}
		if accepted {
			head = append(head, "accepted")
		}
		head = append(head, "server CPU")
		if median {
			head = append(head, "RSS MiB median")
		}
		head = append(head, "RSS MiB peak")
		if notes {
			head = append(head, "note")
		}
		b.WriteString("| " + strings.Join(head, " | ") + " |\n|")
		for _, h := range head {
			switch h {
			case "scenario", "encoding", "retention", "errors", "note":
				b.WriteString("---|")
			default:
				b.WriteString("---:|")
			}
		}
		b.WriteByte('\n')
		for _, r := range rows {
			c := []string{cell(r.Scenario), cell(r.Encoding), strconv.Itoa(r.Projects), strconv.Itoa(r.Plugins), onOff(r.Retention),
				Thousands(r.EventsPerSec), Thousands(r.RequestsPerSec), MBps(r.WireMBps), MBps(r.RawMBps),
				Millis(r.P50), Millis(r.P90), Millis(r.P99), Millis(r.P999), Errors(r.Errors)}
			if accepted {
				a := "–"
				if r.Accepted > 0 {
					a = strconv.FormatFloat(r.Accepted*100, 'f', 1, 64) + " %"
				}
				c = append(c, a)
			}
			cpu := "–"
			if r.ServerCPU > 0 {
				cpu = strconv.FormatFloat(r.ServerCPU, 'f', 2, 64)
			}
			c = append(c, cpu)
			if median {
				c = append(c, MiB(r.ServerMedianRSS))
			}
			c = append(c, MiB(r.ServerPeakRSS))
			if notes {
				c = append(c, cell(r.Note))
			}
			b.WriteString("| " + strings.Join(c, " | ") + " |\n")
		}
		b.WriteString("\nLatency is from sending a request to reading its whole response " +
			"(open-loop rows: from its scheduled time). MB/s are 10^6 bytes per second on the wire " +
			"and after decompression. Errors are counts by HTTP status; `net` is a transport error. " +
			"Server CPU is the average number of cores the collector process used; RSS is its resident memory.\n")
	}

	if len(targets) > 0 {
		b.WriteString("\n## Targets\n\n| target | want | got | result |\n|---|---|---|---|\n")
		met := 0
		for _, t := range targets {
			res := "**FAIL**"
			if t.OK {
				res = "PASS"
				met++
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", cell(t.Name), cell(t.Want), cell(t.Got), res)
		}
		fmt.Fprintf(&b, "\n%d of %d targets met.\n", met, len(targets))
	}
	_, err := w.Write(b.Bytes())
	return err
}

type jsonMachine struct {
	CPUModel  string    `json:"cpu_model"`
	Cores     int       `json:"cores"`
	MemTotal  int64     `json:"mem_total_bytes"`
	Kernel    string    `json:"kernel"`
	GoVersion string    `json:"go_version"`
	When      time.Time `json:"when"`
}

type jsonRow struct {
	Scenario        string        `json:"scenario"`
	Encoding        string        `json:"encoding"`
	Projects        int           `json:"projects"`
	Plugins         int           `json:"plugins"`
	Retention       bool          `json:"retention"`
	EventsPerSec    float64       `json:"events_per_sec"`
	RequestsPerSec  float64       `json:"requests_per_sec"`
	WireMBps        float64       `json:"wire_mb_per_sec"`
	RawMBps         float64       `json:"raw_mb_per_sec"`
	P50             float64       `json:"p50_ms"`
	P90             float64       `json:"p90_ms"`
	P99             float64       `json:"p99_ms"`
	P999            float64       `json:"p999_ms"`
	Errors          map[int]int64 `json:"errors_by_status,omitempty"`
	Accepted        float64       `json:"accepted_share,omitempty"`
	ServerCPU       float64       `json:"server_cpu_cores"`
	ServerPeakRSS   int64         `json:"server_peak_rss_bytes"`
	ServerMedianRSS int64         `json:"server_median_rss_bytes,omitempty"`
	Note            string        `json:"note,omitempty"`
}

// finite maps NaN and infinities, which JSON cannot carry, to 0.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// JSON writes the machine and the rows as one indented JSON object
// {"machine":{…},"rows":[…]}, latencies in milliseconds and sizes in bytes.
func JSON(w io.Writer, m Machine, rows []Row) error {
	doc := struct {
		Machine jsonMachine `json:"machine"`
		Rows    []jsonRow   `json:"rows"`
	}{
		Machine: jsonMachine(m),
		Rows:    make([]jsonRow, 0, len(rows)),
	}
	for _, r := range rows {
		doc.Rows = append(doc.Rows, rowJSON(r))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

func rowJSON(r Row) jsonRow {
	return jsonRow{
		Scenario: r.Scenario, Encoding: r.Encoding, Projects: r.Projects, Plugins: r.Plugins, Retention: r.Retention,
		EventsPerSec: finite(r.EventsPerSec), RequestsPerSec: finite(r.RequestsPerSec),
		WireMBps: finite(r.WireMBps), RawMBps: finite(r.RawMBps),
		P50: ms(r.P50), P90: ms(r.P90), P99: ms(r.P99), P999: ms(r.P999),
		Errors: r.Errors, Accepted: finite(r.Accepted),
		ServerCPU: finite(r.ServerCPU), ServerPeakRSS: r.ServerPeakRSS, ServerMedianRSS: r.ServerMedianRSS, Note: r.Note,
	}
}
