package meter

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
)

// TestBulkCharge: each bulk instruction is charged one unit per
// 1<<BulkShift bytes or elements of its length, before it runs; at the old
// flat cost a 4 MiB fill cost a handful of units.
func TestBulkCharge(t *testing.T) {
	wasm, err := os.ReadFile("testdata/bulk/bulk.wasm")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := newRuntime(t, false)
	const fuel = 1 << 40
	cm := compile(t, rt, mustInstrument(t, wasm, Options{Mode: ModeYield}))
	for _, c := range []struct {
		fn string
		n  uint64
	}{{"fill", 4 << 20}, {"copy", 4 << 20}, {"init", 32}, {"tfill", 2048}, {"tcopy", 2048}, {"tinit", 4}} {
		mod, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName(""))
		if err != nil {
			t.Fatal(err)
		}
		g := FuelGlobal(mod)
		for _, n := range []uint64{0, c.n} {
			g.Set(fuel)
			if _, err := mod.ExportedFunction(c.fn).Call(ctx, n); err != nil {
				t.Fatalf("%s(%d): %v", c.fn, n, err)
			}
			used := fuel - g.Get()
			if want := n >> BulkShift; used < want || used > want+16 {
				t.Errorf("%s(%d) used %d units of fuel, want %d plus the check's", c.fn, n, used, want)
			}
		}
		mod.Close(ctx)
	}
}

// TestBulkSpinYields: a guest looping on 4 MiB fills yields
// every few fills, so its deadline is seen within about a millisecond;
// charged a flat cost, one slice of fuel lasted seconds.
func TestBulkSpinYields(t *testing.T) {
	wasm, err := os.ReadFile("../testdata/fillspin/fillspin.wasm")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := newRuntime(t, false)
	cm := compile(t, rt, mustInstrument(t, wasm, Options{Mode: ModeYield}))
	mod, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close(ctx)
	// The deadline is read by the yield function only: no timer runs.
	const deadline = 30 * time.Millisecond
	cctx, cancel := context.WithDeadline(ctx, time.Now().Add(deadline))
	defer cancel()
	start := time.Now()
	_, err = mod.ExportedFunction("uptimizr_filter").Call(cctx, 0, 0)
	took := time.Since(start)
	if err == nil {
		t.Fatal("the spin returned")
	}
	t.Logf("a %s deadline seen after %s", deadline, took)
	if took > 2*time.Second {
		t.Fatalf("a %s deadline was seen after %s: the fills are not charged their length", deadline, took)
	}
}
