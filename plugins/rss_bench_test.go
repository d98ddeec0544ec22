package plugins

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uptimizr/edge/core"
)

func rssMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkThousandProjects uploads a plugin for each of UPTIMIZR_BENCH_PROJECTS
// projects (default 1,000), sends each one batch, and reports the process's
// RSS with every pool holding an instance, and after idle pools shrink.
// UPTIMIZR_BENCH_PLUGIN picks the module (default: the AssemblyScript
// pii-redact; examples/pii-redact/go/pii-redact.wasm for the Go one).
func BenchmarkThousandProjects(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("UPTIMIZR_BENCH_PROJECTS")); err == nil && v > 0 {
		n = v
	}
	file := os.Getenv("UPTIMIZR_BENCH_PLUGIN")
	if file == "" {
		file = "examples/pii-redact/pii-redact.wasm"
	}
	wasm, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		h := newTestHost(b, Options{PoolSize: 2})
		db := testStore(b)
		m := NewManager(h, db.Plugins(), NewFilter(db.Quarantine(), nil), nil)
		ctx := context.Background()
		base := rssMiB()
		start := time.Now()
		for p := 1; p <= n; p++ {
			if _, err := m.Upload(ctx, uint32(p), "proj", "pii-redact", wasm, nil, ""); err != nil {
				b.Fatal(err)
			}
		}
		uploadEach := time.Since(start) / time.Duration(n)
		batch := fixtureBatch(b, "batch50_00.json")
		for p := 1; p <= n; p++ {
			c := &batchCopy{}
			copyBatch(&c.b, batch)
			c.b.ProjectNum = uint32(p)
			if err := m.Filter().Apply(ctx, &c.b); err != nil || c.b.Quarantined != 0 {
				b.Fatalf("project %d: %v", p, err)
			}
		}
		runtime.GC()
		active := rssMiB()
		shrunk := m.ShrinkIdle(0)
		runtime.GC()
		debug.FreeOSMemory()
		idle := rssMiB()
		b.ReportMetric(active-base, "MiB-active")
		b.ReportMetric(idle-base, "MiB-after-shrink")
		b.ReportMetric(float64(uploadEach.Microseconds())/1000, "ms/upload")
		b.Logf("%d projects (%s): RSS %.0f MiB at start, %.0f with every pool warm, %.0f after shrinking %d pools",
			n, file, base, active, idle, shrunk)
	}
}

type batchCopy struct{ b core.Batch }
