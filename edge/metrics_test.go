package edge_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// metricValues reads the unlabelled samples of a Prometheus text page, and
// counts the # TYPE lines per family.
func metricValues(t *testing.T, page string) (values map[string]float64, types map[string]int) {
	t.Helper()
	values, types = map[string]float64{}, map[string]int{}
	for _, line := range strings.Split(page, "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			types[strings.Fields(name)[0]]++
			continue
		}
		if line == "" || line[0] == '#' || strings.ContainsRune(line, '{') {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("metrics line %q", line)
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		values[f[0]] = v
	}
	return values, types
}

// /metrics carries the Go runtime's and the process's own figures (what a
// soak or an operator watches for leaks) next to the server's, and they
// follow the process: blocked goroutines and open files show.
func TestMetricsExposeRuntimeAndProcess(t *testing.T) {
	h := newHarness(t, nil)
	before, types := metricValues(t, h.metrics())
	for _, name := range []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "go_memstats_heap_alloc_bytes",
		"go_memstats_next_gc_bytes", "process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds"} {
		if before[name] <= 0 {
			t.Errorf("%s = %v", name, before[name])
		}
	}
	for name, n := range types {
		if n != 1 {
			t.Errorf("family %s typed %d times", name, n)
		}
	}
	if types["uptimizr_ingest_request_seconds"] != 1 || types["go_goroutines"] != 1 {
		t.Errorf("families %v", types)
	}

	const extra = 64
	release := make(chan struct{})
	defer close(release)
	for range extra {
		go func() { <-release }()
	}
	var files []*os.File
	for range extra {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	// The server's own goroutines and connections come and go between the
	// two scrapes (a worker, a timer, the scrape's own connection): the
	// figures must show ours, less a few of those at most.
	const churn = 8
	after, _ := metricValues(t, h.metrics())
	if got := after["go_goroutines"] - before["go_goroutines"]; got < extra-churn {
		t.Errorf("goroutines rose by %v with %d more blocked", got, extra)
	}
	if got := after["process_open_fds"] - before["process_open_fds"]; got < extra-churn {
		t.Errorf("open fds rose by %v with %d more files open", got, extra)
	}
}
