package meter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestFuelSpinTraps(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t, false)
	for _, g := range guests {
		for _, v := range variantsOf(ModeFuel) {
			t.Run(g.name+"/"+v.name, func(t *testing.T) {
				cm := compile(t, rt, mustInstrument(t, g.wasm, v.opts))
				in := start(t, rt, cm, 0)
				fuel := FuelGlobal(in.mod)
				fuel.Set(10_000_000)
				begin := time.Now()
				_, err := in.spin.Call(ctx)
				if err == nil || !strings.Contains(err.Error(), "unreachable") {
					t.Fatalf("spin: %v, want an unreachable trap", err)
				}
				if left := int64(fuel.Get()); left >= 0 {
					t.Fatalf("fuel after the trap: %d, want < 0", left)
				}
				t.Logf("10M fuel lasted %v", time.Since(begin))
			})
		}
	}
}

// TestFuelWork checks that fuel consumption is deterministic (the same in
// fresh instances and in repeated calls) and exact: a call succeeds with
// the fuel it consumed and traps with one unit less.
func TestFuelWork(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t, false)
	for _, g := range guests {
		for _, v := range variantsOf(ModeFuel) {
			t.Run(g.name+"/"+v.name, func(t *testing.T) {
				cm := compile(t, rt, mustInstrument(t, g.wasm, v.opts))
				const budget = 1 << 40
				// consumed runs work(n) with budget in instance in and
				// returns the fuel it used.
				consumed := func(in *instance, n int64, budget int64) (int64, error) {
					fuel := FuelGlobal(in.mod)
					fuel.Set(uint64(budget))
					res, err := in.work.Call(ctx, uint64(n))
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
						if _, err := consumed(in, n, used-1); err == nil {
							t.Fatalf("work(%d) with %d fuel, one less than it used: no trap", n, used-1)
						}
					}
					in.mod.Close(ctx)
					t.Logf("work(%d) uses %d fuel", n, used)
				}
			})
		}
	}
}

// noGC keeps the garbage collector from starting a cycle until the test
// ends. A guest running compiled code cannot be preempted, so a
// stop-the-world phase that begins while it runs waits for it to return,
// and meanwhile no goroutine runs: not even the one that would set the
// stop flag. TestFlagStallsUnderGC shows the consequence; the flag tests
// measure the mechanism itself.
func noGC(t *testing.T) {
	runtime.GC()
	old := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(old) })
}

// TestFlagInterruptsSpin sets the stop flag from a timer goroutine while
// spin runs, and measures how long the guest takes to notice.
func TestFlagInterruptsSpin(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t, false)
	noGC(t)
	for _, g := range guests {
		for _, v := range variantsOf(ModeFlag) {
			t.Run(g.name+"/"+v.name, func(t *testing.T) {
				cm := compile(t, rt, mustInstrument(t, g.wasm, v.opts))
				var lat []time.Duration
				for range envInt("METER_INTERRUPTS", 20) {
					in := start(t, rt, cm, 0)
					stop := StopGlobal(in.mod)
					var setAt atomic.Int64
					timer := time.AfterFunc(5*time.Millisecond, func() {
						setAt.Store(time.Now().UnixNano())
						stop.Set(1)
					})
					_, err := in.spin.Call(ctx)
					done := time.Now().UnixNano()
					timer.Stop()
					if err == nil || !strings.Contains(err.Error(), "unreachable") {
						t.Fatalf("spin: %v, want an unreachable trap", err)
					}
					lat = append(lat, time.Duration(done-setAt.Load()))
					// The instance is dead: close it, never reuse it.
					in.mod.Close(ctx)
				}
				slices.Sort(lat)
				t.Logf("flag set → spin returned: median %v, max %v (%d runs)", lat[len(lat)/2], lat[len(lat)-1], len(lat))
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

func TestAlarm(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t, false)
	noGC(t)
	for _, g := range guests {
		t.Run(g.name, func(t *testing.T) {
			cm := compile(t, rt, mustInstrument(t, g.wasm, Options{Mode: ModeFlag}))
			buf := batch(46<<10, 1)
			in := start(t, rt, cm, uint32(len(buf)))
			in.load(t, buf)
			alarm := NewAlarm(StopGlobal(in.mod))
			if alarm.Disarm() {
				t.Fatal("Disarm before Arm reports a firing")
			}
			// Calls that finish in time, many of them, with the alarm
			// re-armed each time.
			for range 100 {
				alarm.Arm(time.Second)
				res, err := in.scan.Call(ctx, uint64(in.ptr), uint64(len(buf)))
				if late := alarm.Disarm(); err != nil || late {
					t.Fatalf("scan: %v, late %v", err, late)
				}
				if int32(res[0]) != refScan(buf) {
					t.Fatalf("scan = %#x, want %#x", int32(res[0]), refScan(buf))
				}
			}
			// A deadline that passes after the call returned leaves the
			// instance usable: Disarm clears the flag.
			alarm.Arm(time.Nanosecond)
			time.Sleep(5 * time.Millisecond)
			if !alarm.Disarm() {
				t.Fatal("Disarm after the deadline reports no firing")
			}
			if _, err := in.scan.Call(ctx, uint64(in.ptr), uint64(len(buf))); err != nil {
				t.Fatalf("scan after a cleared flag: %v", err)
			}
			// An endless loop is interrupted.
			begin := time.Now()
			alarm.Arm(10 * time.Millisecond)
			_, err := in.spin.Call(ctx)
			late := alarm.Disarm()
			if err == nil || !late {
				t.Fatalf("spin: %v, late %v", err, late)
			}
			if d := time.Since(begin); d > 30*time.Millisecond {
				t.Fatalf("10ms deadline interrupted after %v", d)
			}
		})
	}
}

// TestFlagStallsUnderGC shows why ModeFlag is unsafe on its own: a
// garbage collection that starts while a guest spins stops every goroutine
// but the guest's, including the timer that would set the flag, and waits
// for the guest to return, which it never does. The whole process hangs.
// The test runs that in a child process and expects it to still be hanging
// after a few seconds. ModeFuel does not depend on another goroutine, so a
// spinning guest stops by itself (TestFuelUnderGC).
func TestFlagStallsUnderGC(t *testing.T) {
	if os.Getenv("METER_STALL_CHILD") == "1" {
		stallChild(t)
		return
	}
	if testing.Short() {
		t.Skip("takes seconds")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFlagStallsUnderGC$", "-test.v")
	cmd.Env = append(os.Environ(), "METER_STALL_CHILD=1")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		t.Fatalf("child exited (%v) instead of hanging:\n%s", err, out.String())
	case <-time.After(3 * time.Second):
		cmd.Process.Kill()
		<-exited
		if !strings.Contains(out.String(), "spinning") {
			t.Fatalf("child did not reach spin:\n%s", out.String())
		}
		t.Log("a GC during a spinning ModeFlag guest hung the process (flag due after 200ms)")
	}
}

func stallChild(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t, false)
	in := start(t, rt, compile(t, rt, mustInstrument(t, asGuest.wasm, Options{Mode: ModeFlag})), 0)
	alarm := NewAlarm(StopGlobal(in.mod))
	go func() {
		// Keep collecting: the first collection that starts after spin
		// does never finishes.
		for {
			time.Sleep(time.Millisecond)
			runtime.GC()
		}
	}()
	fmt.Println("spinning")
	alarm.Arm(200 * time.Millisecond)
	_, err := in.spin.Call(ctx)
	alarm.Disarm()
	fmt.Println("spin returned:", err)
}

// TestFuelUnderGC runs a spinning ModeFuel guest while another goroutine
// asks for a garbage collection: the guest stops when its fuel is gone,
// and the collection, which had to wait for it, completes.
func TestFuelUnderGC(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t, false)
	in := start(t, rt, compile(t, rt, mustInstrument(t, asGuest.wasm, Options{Mode: ModeFuel})), 0)
	FuelGlobal(in.mod).Set(200_000_000)
	gcDone := make(chan time.Duration, 1)
	go func() {
		time.Sleep(5 * time.Millisecond)
		begin := time.Now()
		runtime.GC()
		gcDone <- time.Since(begin)
	}()
	begin := time.Now()
	if _, err := in.spin.Call(ctx); err == nil {
		t.Fatal("spin returned")
	}
	t.Logf("200M fuel lasted %v; runtime.GC() took %v", time.Since(begin), <-gcDone)
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
		for _, v := range variantsOf(ModeYield) {
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
