package suite

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uptimizr/edge/bench/load"
)

// dirUsage counts the blocks files take, not their apparent sizes: a
// sparse file (as Badger's value-log files are while written) counts for
// what was written.
func TestDirUsageCountsAllocatedBlocks(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o755); err != nil {
		t.Fatal(err)
	}
	full := make([]byte, 1<<20)
	for i := range full {
		full[i] = byte(i)
	}
	if err := os.WriteFile(filepath.Join(dir, "db", "full"), full, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(256 << 20); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(full[:4096], 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	bytes, files := dirUsage(dir)
	if files != 2 {
		t.Errorf("%d files", files)
	}
	if bytes < 1<<20 || bytes > 4<<20 {
		t.Errorf("%d bytes allocated for 1 MiB and a sparse file of 256 MiB with 4 KiB written", bytes)
	}
	if b, n := dirUsage(filepath.Join(dir, "missing")); b != 0 || n != 0 {
		t.Errorf("missing dir: %d bytes, %d files", b, n)
	}
}

// openFiles sorts this process's own descriptors: files in the dir, and a
// file deleted while open.
func TestOpenFilesSortsDescriptors(t *testing.T) {
	dir := t.TempDir()
	all0, data0, deleted0, sockets0 := openFiles(os.Getpid(), dir)
	if all0 == 0 || data0 != 0 {
		t.Fatalf("before: %d open, %d in the dir", all0, data0)
	}
	var fs []*os.File
	for i := range 3 {
		f, err := os.Create(filepath.Join(dir, "f"+string(rune('0'+i))))
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	defer func() {
		for _, f := range fs {
			f.Close()
		}
	}()
	if err := os.Remove(fs[2].Name()); err != nil {
		t.Fatal(err)
	}
	// A file outside the dir whose name starts like it is not in it.
	other, err := os.Create(dir + "-other")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(other.Name())
	defer other.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	all, data, deleted, sockets := openFiles(os.Getpid(), dir)
	if data != 2 || deleted-deleted0 != 1 || sockets-sockets0 != 1 || all-all0 < 5 {
		t.Errorf("%d open (%d before), %d in the dir, %d deleted (%d before), %d sockets (%d before)", all, all0, data, deleted, deleted0, sockets, sockets0)
	}
}

func TestParseMetrics(t *testing.T) {
	page := `# HELP go_goroutines Number of goroutines
# TYPE go_goroutines gauge
go_goroutines 42
go_memstats_heap_inuse_bytes 1.2345e+08
uptimizr_events_total{type="scene_change",outcome="accepted"} 7
uptimizr_aggregator_lag_records 3 1700000000000
broken_line
not_a_number NaNish
`
	m, err := parseMetrics(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"go_goroutines": 42, "go_memstats_heap_inuse_bytes": 123450000, "uptimizr_aggregator_lag_records": 3}
	if len(m) != len(want) {
		t.Errorf("%v", m)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
}

func TestMachineBusyAdvances(t *testing.T) {
	b0, _, err := machineBusy()
	if err != nil {
		t.Skip("no /proc/stat:", err)
	}
	self0, _ := cpuTime(os.Getpid())
	// Burn some CPU: the machine's busy time must grow at least by ours.
	deadline := time.Now().Add(200 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	self1, _ := cpuTime(os.Getpid())
	b1, _, _ := machineBusy()
	if b1 < b0 || b1-b0 < (self1-self0)/2 {
		t.Errorf("machine busy %v → %v while this process used %v (%d)", b0, b1, self1-self0, x)
	}
}

// The sampler pools each window's latencies into the third after the
// warm-up its middle falls in, and leaves the warm-up out.
func TestSoakSamplerPhases(t *testing.T) {
	s := &soakSampler{pid: os.Getpid(), dataDir: t.TempDir(), metricsURL: "http://127.0.0.1:1/metrics",
		warmup: 30 * time.Second, duration: 120 * time.Second}
	start := time.Now()
	for i := range 24 { // 5 s windows
		w := &load.WindowStats{Index: i, Start: start.Add(time.Duration(i) * 5 * time.Second), End: start.Add(time.Duration(i+1) * 5 * time.Second),
			Requests: 10, OK: 10, Accepted: 100}
		for range 10 {
			w.Latency.Record(time.Duration(i+1) * time.Millisecond)
		}
		s.window(w)
	}
	if len(s.samples) != 24 || s.samples[23].AcceptedTotal != 2400 || s.samples[0].At != 5*time.Second || s.samples[0].RSS == 0 {
		t.Fatalf("%d samples, last %+v", len(s.samples), s.samples[len(s.samples)-1])
	}
	// Windows 6–11 (30–60 s), 12–17 and 18–23: latencies 7–12, 13–18 and
	// 19–24 ms.
	for k, want := range [3][2]int{{7, 12}, {13, 18}, {19, 24}} {
		p := s.phases[k].summary()
		if p.Requests != 60 || p.Max.Round(time.Millisecond) != time.Duration(want[1])*time.Millisecond ||
			s.phases[k].hist.Min().Round(time.Millisecond) != time.Duration(want[0])*time.Millisecond {
			t.Errorf("third %d: %+v, min %v", k, p, s.phases[k].hist.Min())
		}
	}
	if a := s.after.summary(); a.Requests != 180 || a.From != 30*time.Second || a.To != 120*time.Second {
		t.Errorf("after the warm-up: %+v", a)
	}
}
