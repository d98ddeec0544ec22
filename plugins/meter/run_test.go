package meter

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// TestFuelWork checks that fuel consumption is deterministic (the same in
// fresh instances and in repeated calls) and exact: a call succeeds with
// the fuel it consumed, without yielding, and yields with one unit less.
// The calls' context is cancelled, so a yield ends the call.
func TestFuelWork(t *testing.T) {
	ctx := context.Background()
	done, cancel := context.WithCancel(ctx)
	cancel()
	rt := newRuntime(t, false)
	for _, g := range guests {
		for _, v := range variants {
			t.Run(g.name+"/"+v.name, func(t *testing.T) {
				cm := compile(t, rt, mustInstrument(t, g.wasm, v.opts))
				const budget = 1 << 40
				// consumed runs work(n) with budget in instance in and
				// returns the fuel it used.
				consumed := func(in *instance, n int64, budget int64) (int64, error) {
					fuel := FuelGlobal(in.mod)
					fuel.Set(uint64(budget))
					res, err := in.work.Call(done, uint64(n))
					if err == nil && int64(res[0]) != refWork(n) {
						t.Fatalf("work(%d) = %d, want %d", n, int64(res[0]), refWork(n))
					}
					return budget - int64(fuel.Get()), err
				}
				for _, n := range []int64{0, 1, 1000, 100_000} {
					var uses []int64
					for range 3 {
						in := start(t, rt, cm, 0)
						used, err := consumed(in, n, budget)
						if err != nil {
							t.Fatal(err)
						}
						again, err := consumed(in, n, budget)
						if err != nil {
							t.Fatal(err)
						}
						uses = append(uses, used, again)
						in.mod.Close(ctx)
					}
					if slices.Min(uses) != slices.Max(uses) {
						t.Fatalf("work(%d) used %v fuel: not deterministic", n, uses)
					}
					used := uses[0]
					in := start(t, rt, cm, 0)
					if _, err := consumed(in, n, used); err != nil {
						t.Fatalf("work(%d) with exactly the %d fuel it used: %v", n, used, err)
					}
					if used > 0 {
						if _, err := consumed(in, n, used-1); !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) {
							t.Fatalf("work(%d) with %d fuel, one less than it used: %v, want a yield that ends the call", n, used-1, err)
						}
					}
					in.mod.Close(ctx)
					t.Logf("work(%d) uses %d fuel", n, used)
				}
			})
		}
	}
}

// TestCloseOnContextDone checks the baseline the benchmarks compare with:
// wazero's own interruption of the uninstrumented guest.
func TestCloseOnContextDone(t *testing.T) {
	rt := newRuntime(t, true)
	for _, g := range guests {
		t.Run(g.name, func(t *testing.T) {
			in := start(t, rt, compile(t, rt, g.wasm), 0)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
			defer cancel()
			if _, err := in.spin.Call(ctx); err == nil {
				t.Fatal("spin returned")
			}
		})
	}
}

// TestYieldInterruptsSpin gives spin a context with a deadline and measures
// how late after the deadline the call returns, while another goroutine
// keeps asking for garbage collections: a yielding guest returns to Go at
// every slice, so collections neither hang nor wait long.
func TestYieldInterruptsSpin(t *testing.T) {
	rt := newRuntime(t, false)
	stopGC := make(chan struct{})
	var gcs atomic.Int64
	var gcMax atomic.Int64
	go func() {
		for {
			select {
			case <-stopGC:
				return
			default:
			}
			begin := time.Now()
			runtime.GC()
			if d := int64(time.Since(begin)); d > gcMax.Load() {
				gcMax.Store(d)
			}
			gcs.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	defer close(stopGC)
	for _, g := range guests {
		for _, v := range variants {
			t.Run(g.name+"/"+v.name, func(t *testing.T) {
				cm := compile(t, rt, mustInstrument(t, g.wasm, v.opts))
				var lat []time.Duration
				gcs.Store(0)
				gcMax.Store(0)
				for range envInt("METER_INTERRUPTS", 20) {
					in := start(t, rt, cm, 0)
					deadline := time.Now().Add(5 * time.Millisecond)
					ctx, cancel := context.WithDeadline(context.Background(), deadline)
					_, err := in.spin.Call(ctx)
					lat = append(lat, time.Since(deadline))
					cancel()
					if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.DeadlineExceeded) {
						t.Fatalf("spin: %v, want ErrInterrupted and DeadlineExceeded", err)
					}
					// The instance is dead: close it, never reuse it.
					in.mod.Close(ctx)
				}
				slices.Sort(lat)
				t.Logf("deadline → spin returned: median %v, max %v (%d runs; %d concurrent GCs, longest %v)",
					lat[len(lat)/2], lat[len(lat)-1], len(lat), gcs.Load(), time.Duration(gcMax.Load()))
				// A working interrupt ends the spin within a slice: the median
				// must be short. A loaded machine (or a concurrent GC) can
				// keep the thread off a core for a while, so the slowest run
				// gets a wide bound; a broken interrupt spins far beyond it.
				if med, worst := lat[len(lat)/2], lat[len(lat)-1]; med > 20*time.Millisecond || worst > 500*time.Millisecond {
					t.Fatalf("latency median %v (want ≤ 20ms), max %v (want ≤ 500ms)", med, worst)
				}
			})
		}
	}
}

// TestYieldWork runs work with a small slice, so that it yields thousands
// of times, and checks its results.
func TestYieldWork(t *testing.T) {
	rt := newRuntimeSlice(t, false, 1000)
	for _, g := range guests {
		t.Run(g.name, func(t *testing.T) {
			in := start(t, rt, compile(t, rt, mustInstrument(t, g.wasm, Options{Mode: ModeYield})), 0)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, n := range []int64{0, 1, 999, 1000, 1001, 1_000_000} {
				res, err := in.work.Call(ctx, uint64(n))
				if err != nil {
					t.Fatalf("work(%d): %v", n, err)
				}
				if int64(res[0]) != refWork(n) {
					t.Fatalf("work(%d) = %d, want %d", n, int64(res[0]), refWork(n))
				}
			}
			// A call whose context is already done fails at its first
			// yield.
			cancelled, cancel2 := context.WithCancel(context.Background())
			cancel2()
			if _, err := in.work.Call(cancelled, 1_000_000); !errors.Is(err, context.Canceled) {
				t.Fatalf("work with a cancelled context: %v", err)
			}
		})
	}
}
