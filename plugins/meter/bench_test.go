package meter

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkScan runs each guest's scan over a 46 KB batch: uninstrumented
// (plain), instrumented in each variant, and uninstrumented under wazero's
// WithCloseOnContextDone. Each call pays what a host would pay per call to
// limit it: making a context with a deadline. The batch is written into
// guest memory once, outside the timed loop.
//
//	go test ./plugins/meter -run '^$' -bench Scan -count 5
func BenchmarkScan(b *testing.B) {
	buf := batch(46<<10, 42)
	want := refScan(buf)
	for _, g := range guests {
		b.Run(g.name, func(b *testing.B) {
			type limit func(call func(ctx context.Context))
			cases := []struct {
				name        string
				opts        *Options
				closeOnDone bool
				limit       limit
			}{{"plain", nil, false, func(call func(context.Context)) { call(context.Background()) }}}
			for _, v := range variants {
				cases = append(cases, struct {
					name        string
					opts        *Options
					closeOnDone bool
					limit       limit
				}{v.name, &v.opts, false, deadlineLimit})
			}
			cases = append(cases, struct {
				name        string
				opts        *Options
				closeOnDone bool
				limit       limit
			}{"closeOnContextDone", nil, true, deadlineLimit})
			for _, c := range cases {
				b.Run(c.name, func(b *testing.B) {
					rt := newRuntime(b, c.closeOnDone)
					wasm := g.wasm
					if c.opts != nil {
						wasm = mustInstrument(b, g.wasm, *c.opts)
					}
					in := start(b, rt, compile(b, rt, wasm), uint32(len(buf)))
					in.load(b, buf)
					stack := make([]uint64, 2)
					call := func(ctx context.Context) {
						stack[0], stack[1] = uint64(in.ptr), uint64(len(buf))
						if err := in.scan.CallWithStack(ctx, stack); err != nil {
							b.Fatal(err)
						}
					}
					c.limit(call) // warm up, and check
					if int32(stack[0]) != want {
						b.Fatalf("scan = %#x, want %#x", int32(stack[0]), want)
					}
					b.SetBytes(int64(len(buf)))
					b.ReportAllocs()
					b.ResetTimer()
					for b.Loop() {
						c.limit(call)
					}
				})
			}
		})
	}
}

// deadlineLimit gives the call a context with a deadline, for the
// instrumented guest and WithCloseOnContextDone.
func deadlineLimit(call func(context.Context)) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	call(ctx)
	cancel()
}

// TestScanRatios measures what BenchmarkScan measures, but interleaved:
// in each round every variant runs a burst of calls, in rotating order, so
// that load from other processes spreads over all of them. It reports the
// median and the minimum (over rounds) time per call, and their ratio to
// plain. It runs only when METER_RATIOS is set (to the number of rounds).
//
//	METER_RATIOS=30 go test ./plugins/meter -run TestScanRatios -v
func TestScanRatios(t *testing.T) {
	rounds := envInt("METER_RATIOS", 0)
	if rounds == 0 {
		t.Skip("set METER_RATIOS to the number of rounds")
	}
	buf := batch(46<<10, 42)
	for _, g := range guests {
		type variant struct {
			name  string
			run   func()
			times []time.Duration
		}
		var vs []*variant
		add := func(name string, opts *Options, closeOnDone bool, limit func(func(context.Context))) {
			rt := newRuntime(t, closeOnDone)
			wasm := g.wasm
			if opts != nil {
				wasm = mustInstrument(t, g.wasm, *opts)
			}
			in := start(t, rt, compile(t, rt, wasm), uint32(len(buf)))
			in.load(t, buf)
			stack := make([]uint64, 2)
			call := func(ctx context.Context) {
				stack[0], stack[1] = uint64(in.ptr), uint64(len(buf))
				if err := in.scan.CallWithStack(ctx, stack); err != nil {
					t.Fatal(err)
				}
			}
			vs = append(vs, &variant{name: name, run: func() { limit(call) }})
		}
		add("plain", nil, false, func(call func(context.Context)) { call(context.Background()) })
		for _, v := range variants {
			add(v.name, &v.opts, false, deadlineLimit)
		}
		add("closeOnContextDone", nil, true, deadlineLimit)
		const burst = 20
		for r := range rounds {
			for i := range vs {
				v := vs[(i+r)%len(vs)]
				v.run()
				begin := time.Now()
				for range burst {
					v.run()
				}
				v.times = append(v.times, time.Since(begin)/burst)
			}
		}
		var base []time.Duration
		for _, v := range vs {
			slices.Sort(v.times)
			if base == nil {
				base = v.times
			}
			med, bmed := v.times[len(v.times)/2], base[len(base)/2]
			t.Logf("%s/%-20s median %8.1fµs ×%.2f   min %8.1fµs ×%.2f", g.name, v.name,
				float64(med)/1e3, float64(med)/float64(bmed), float64(v.times[0])/1e3, float64(v.times[0])/float64(base[0]))
		}
	}
}
