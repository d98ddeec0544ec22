package plugins

import (
	"context"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// BenchmarkExamplePlugins measures one filter call per example module on the
// 200-event fixture (copy in, run, copy out), under the host's sandbox and
// deadline.
func BenchmarkExamplePlugins(b *testing.B) {
	h := newTestHost(b, Options{})
	batch := fixtureBatch(b, "batch200_00.json")
	in := encodeBatch(nil, batch)
	for _, c := range []struct{ name, file, config string }{
		{"pii-redact/assemblyscript", "examples/pii-redact/pii-redact.wasm", ""},
		{"pii-redact/go", "examples/pii-redact/go/pii-redact.wasm", ""},
		{"schema-guard/go", "examples/schema-guard/go/schema-guard.wasm", ""},
		{"drop-internal/go", "examples/drop-internal/go/drop-internal.wasm", `{"hosts":[".internal.example.com"]}`},
	} {
		b.Run(c.name, func(b *testing.B) {
			wasm, err := os.ReadFile(c.file)
			if err != nil {
				b.Fatal(err)
			}
			mod, err := h.Compile(context.Background(), wasm)
			if err != nil {
				b.Fatal(err)
			}
			p, err := h.NewPlugin(context.Background(), c.name, 1, mod, []byte(c.config), PolicyQuarantine)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			var out []byte
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ResetTimer()
			cpu0 := threadCPU()
			for i := 0; i < b.N; i++ {
				if out, err = p.Run(context.Background(), in, out[:0]); err != nil {
					b.Fatal(err)
				}
			}
			// CPU time of the calling thread per call: on a shared machine,
			// wall-clock ns/op also counts the time other processes held the
			// core.
			b.ReportMetric(float64(threadCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkMeteringOverhead runs the example redaction plugins side by side:
// unlimited (the module as uploaded, no CPU limit at all), metered (the
// host: fuel slices that end in a check of the wall-clock deadline), and
// wazero's own context checks, each doing the same alloc, copy-in, filter
// and copy-out per batch. Compare the metered and unlimited ns/op: the
// target is at most 1.3×.
func BenchmarkMeteringOverhead(b *testing.B) {
	batch := encodeBatch(nil, fixtureBatch(b, "batch200_00.json"))
	for _, c := range []struct{ name, file string }{
		{"pii-redact-as", "examples/pii-redact/pii-redact.wasm"},
		{"pii-redact-go", "examples/pii-redact/go/pii-redact.wasm"},
	} {
		wasm, err := os.ReadFile(c.file)
		if err != nil {
			b.Fatal(err)
		}
		for _, mode := range []string{"unlimited", "metered", "closeOnContextDone"} {
			b.Run(c.name+"/"+mode, func(b *testing.B) {
				ctx := context.Background()
				if mode == "metered" {
					h := newTestHost(b, Options{})
					mod, err := h.Compile(ctx, wasm)
					if err != nil {
						b.Fatal(err)
					}
					p, err := h.NewPlugin(ctx, c.name, 1, mod, nil, PolicyQuarantine)
					if err != nil {
						b.Fatal(err)
					}
					defer p.Close()
					var out []byte
					b.SetBytes(int64(len(batch)))
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						if out, err = p.Run(ctx, batch, out[:0]); err != nil {
							b.Fatal(err)
						}
					}
					return
				}
				cfg := wazero.NewRuntimeConfigCompiler()
				if mode == "closeOnContextDone" {
					cfg = cfg.WithCloseOnContextDone(true)
				}
				rt := wazero.NewRuntimeWithConfig(ctx, cfg)
				defer rt.Close(ctx)
				wasi_snapshot_preview1.MustInstantiate(ctx, rt)
				m, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithStartFunctions().WithSysNanotime().WithSysWalltime())
				if err != nil {
					b.Fatal(err)
				}
				if f := m.ExportedFunction("_initialize"); f != nil {
					f.Call(ctx)
				}
				alloc, filter, initf := m.ExportedFunction("uptimizr_alloc"), m.ExportedFunction("uptimizr_filter"), m.ExportedFunction("uptimizr_init")
				r, _ := alloc.Call(ctx, 2)
				m.Memory().Write(uint32(r[0]), []byte("{}"))
				if res, err := initf.Call(ctx, r[0], 2); err != nil || res[0] != 0 {
					b.Fatalf("init: %v %v", res, err)
				}
				var out []byte
				stack := make([]uint64, 2)
				b.SetBytes(int64(len(batch)))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					cctx := ctx
					var cancel context.CancelFunc
					if mode == "closeOnContextDone" {
						cctx, cancel = context.WithTimeout(ctx, time.Second)
					}
					stack[0] = uint64(len(batch))
					alloc.CallWithStack(cctx, stack)
					m.Memory().Write(uint32(stack[0]), batch)
					stack[1] = uint64(len(batch))
					if err := filter.CallWithStack(cctx, stack); err != nil {
						b.Fatal(err)
					}
					res := stack[0]
					o, _ := m.Memory().Read(uint32(res>>32), uint32(res))
					out = append(out[:0], o...)
					if cancel != nil {
						cancel()
					}
				}
			})
		}
	}
}

// threadCPU is the CPU time of the calling OS thread, in ns (0 where
// RUSAGE_THREAD is not available).
func threadCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(1, &ru) != nil { // RUSAGE_THREAD (Linux)
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
