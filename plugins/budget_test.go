package plugins

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptimizr/edge/core"
)

func readWasm(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// accounted checks that the budget's books match the instances that
// exist: every live instance is in a pool (nothing runs), and the bytes
// charged are the sum of their memories' sizes.
func accounted(t *testing.T, h *Host) {
	t.Helper()
	b := h.budget
	b.mu.Lock()
	pools := make([]*Plugin, 0, len(b.pools))
	for p := range b.pools {
		pools = append(pools, p)
	}
	b.mu.Unlock()
	var n, bytes int64
	for _, p := range pools {
		for i := len(p.idle); i > 0; i-- {
			in := <-p.idle
			n++
			bytes += int64(in.mem.Size())
			p.idle <- in
		}
	}
	st := b.Stats()
	if st.Instances != n || st.Bytes != bytes {
		t.Fatalf("the budget counts %d instances and %d bytes; the pools hold %d instances with %d bytes of memory", st.Instances, st.Bytes, n, bytes)
	}
}

// TestBudgetThousandHogs: 1,000 projects each run the hog plugin, which
// grows its memory to the instance cap on every call, from 16 goroutines
// at once, under a budget of eight instances' worth of memory and twelve
// instances. Beside them, one project with a small plugin and one with
// none. The budget is never exceeded, neither in bytes nor in instances;
// every hog batch is either filtered whole or refused with ErrBusy (never
// quarantined, never half kept); idle pools are evicted; the plugin-free
// project is served every time, and the small plugin's nearly every time.
func TestBudgetThousandHogs(t *testing.T) {
	const (
		projects = 1000
		capPages = 64 // 4 MiB per instance
		budget   = 8 * capPages << 16
		maxInst  = 12
		workers  = 16
		rounds   = 3
	)
	h := newTestHost(t, Options{MemoryLimitPages: capPages, MemoryBudget: budget, MaxInstances: maxInst,
		Wait: 50 * time.Millisecond, PoolSize: 2})
	db := testStore(t)
	m := NewManager(h, db.Plugins(), NewFilter(db.Quarantine(), nil), nil)
	ctx := context.Background()
	hog := readWasm(t, "testdata/hog/hog.wasm")
	for p := uint32(1); p <= projects; p++ {
		if _, err := m.Upload(ctx, p, "proj", "hog", hog, nil, ""); err != nil {
			t.Fatalf("upload %d: %v", p, err)
		}
	}
	const small, none = projects + 1, projects + 2
	if _, err := m.Upload(ctx, small, "proj", "pii-redact", readWasm(t, "examples/pii-redact/pii-redact.wasm"), nil, ""); err != nil {
		t.Fatal(err)
	}
	if st := h.budget.Stats(); st.PeakBytes > budget || st.PeakInstances > maxInst || st.Evictions == 0 {
		t.Fatalf("after the uploads: %+v", st)
	}

	fixture := fixtureBatch(t, "batch50_00.json")
	batch := func(pnum uint32) *core.Batch {
		c := &batchCopy{}
		copyBatch(&c.b, fixture)
		c.b.ProjectNum = pnum
		return &c.b
	}
	var stop atomic.Bool
	var watch sync.WaitGroup
	var overBytes, overInst atomic.Int64
	watch.Add(1)
	go func() { // the books, sampled while the batches run
		defer watch.Done()
		for !stop.Load() {
			st := h.budget.Stats()
			if st.Bytes > budget {
				overBytes.Store(st.Bytes)
			}
			if st.Instances > maxInst {
				overInst.Store(st.Instances)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	var ok, busy, smallOK, smallBusy, noneOK atomic.Int64
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= projects*rounds {
					return
				}
				pnum := uint32(i%projects) + 1
				b := batch(pnum)
				err := m.Filter().Apply(ctx, b)
				switch {
				case err == nil && len(b.Events) == len(fixture.Events) && b.Quarantined == 0:
					ok.Add(1)
				case errors.Is(err, ErrBusy) && errors.Is(err, core.ErrBusy):
					busy.Add(1)
				default:
					t.Errorf("project %d: %v (%d events kept, %d quarantined)", pnum, err, len(b.Events), b.Quarantined)
					return
				}
			}
		}()
	}
	watch.Add(1)
	go func() { // the neighbours, meanwhile
		defer watch.Done()
		for !stop.Load() {
			for _, pn := range []uint32{small, none} {
				nb := batch(pn)
				err := m.Filter().Apply(ctx, nb)
				if pn == small && errors.Is(err, ErrBusy) {
					// Its instance may be evicted like any idle one, and it
					// then waits in line with the hogs.
					smallBusy.Add(1)
					continue
				}
				if err != nil || len(nb.Events) == 0 || nb.Quarantined != 0 {
					t.Errorf("project %d beside the hogs: %v (%d events)", pn, err, len(nb.Events))
					return
				}
				if pn == small {
					smallOK.Add(1)
				} else {
					noneOK.Add(1)
				}
			}
		}
	}()
	wg.Wait()
	stop.Store(true)
	watch.Wait()

	st := h.budget.Stats()
	t.Logf("%d hog batches filtered, %d refused busy; small plugin %d (%d refused), none %d; budget %+v", ok.Load(), busy.Load(), smallOK.Load(), smallBusy.Load(), noneOK.Load(), st)
	if n := overBytes.Load(); n != 0 || st.PeakBytes > budget {
		t.Errorf("accounted memory reached %d (peak %d), budget %d", n, st.PeakBytes, budget)
	}
	if n := overInst.Load(); n != 0 || st.PeakInstances > maxInst {
		t.Errorf("%d live instances (peak %d), cap %d", n, st.PeakInstances, maxInst)
	}
	if ok.Load()+busy.Load() != projects*rounds {
		t.Errorf("%d filtered + %d refused of %d batches", ok.Load(), busy.Load(), projects*rounds)
	}
	if ok.Load() == 0 || st.Evictions < projects {
		t.Errorf("%d batches filtered, %d evictions: the pools did not make room for each other", ok.Load(), st.Evictions)
	}
	// The project without plugins is always served; the one with a small
	// plugin nearly always (it waits in line for room like every project).
	if smallOK.Load() == 0 || smallOK.Load()+smallBusy.Load() != noneOK.Load() || smallBusy.Load()*20 > noneOK.Load() {
		t.Errorf("neighbours served: small %d (%d refused), none %d", smallOK.Load(), smallBusy.Load(), noneOK.Load())
	}
	if st.Refusals != busy.Load()+smallBusy.Load() {
		t.Errorf("%d refusals counted, %d batches refused", st.Refusals, busy.Load()+smallBusy.Load())
	}
	for _, pn := range []uint32{1, projects / 2, projects} {
		if _, total, err := db.Quarantine().List(pn, 1); err != nil || total != 0 {
			t.Errorf("project %d: %d batches quarantined (%v)", pn, total, err)
		}
	}
	accounted(t, h)
	// Shrinking gives every byte back.
	m.ShrinkIdle(0)
	if st := h.budget.Stats(); st.Bytes != 0 || st.Instances != 0 {
		t.Fatalf("after shrinking every pool: %+v", st)
	}
}

// TestBudgetEvictsLeastRecentlyUsed: with room for two instances, a third
// plugin's instance takes the room of the plugin used longest ago.
func TestBudgetEvictsLeastRecentlyUsed(t *testing.T) {
	h := newTestHost(t, Options{MemoryLimitPages: 16, MaxInstances: 2, Wait: time.Millisecond})
	mod, err := h.Compile(context.Background(), readWasm(t, "testdata/hog/hog.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	in := encodeBatch(nil, fixtureBatch(t, "batch50_00.json"))
	var ps []*Plugin
	for i := 0; i < 3; i++ {
		p, err := h.NewPlugin(context.Background(), "hog", i, mod, nil, PolicyQuarantine)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		ps = append(ps, p)
		if _, err := p.Run(context.Background(), in, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // distinct use times
	}
	// 0's instance made room for 2's; now use 1, then bring 0 back: 2 is
	// the least recently used and goes.
	if len(ps[0].idle) != 0 || len(ps[1].idle) != 1 || len(ps[2].idle) != 1 {
		t.Fatalf("pools after three plugins: %d %d %d", len(ps[0].idle), len(ps[1].idle), len(ps[2].idle))
	}
	if _, err := ps[1].Run(context.Background(), in, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond)
	if _, err := ps[0].Run(context.Background(), in, nil); err != nil {
		t.Fatal(err)
	}
	if len(ps[0].idle) != 1 || len(ps[1].idle) != 1 || len(ps[2].idle) != 0 {
		t.Fatalf("pools after reusing 1 then 0: %d %d %d", len(ps[0].idle), len(ps[1].idle), len(ps[2].idle))
	}
	if st := h.budget.Stats(); st.Evictions != 2 || st.PeakInstances != 2 {
		t.Fatalf("%+v", st)
	}
	accounted(t, h)
}

// TestBudgetFullIsBusyNotQuarantined: a Go guest that allocates without
// end traps when its memory cannot grow. At its own cap that is the
// plugin's failure (TestMemoryCap: quarantined); when the node's budget
// refused the grow, it is ErrBusy: the batch is neither quarantined nor
// kept, and the caller is told to come back.
func TestBudgetFullIsBusyNotQuarantined(t *testing.T) {
	h := newTestHost(t, Options{CallTimeout: 5 * time.Second, MemoryLimitPages: 1024, MemoryBudget: 24 << 20})
	q := testStore(t).Quarantine()
	f := NewFilter(q, nil)
	f.SetChain(7, &Chain{Plugins: []*Plugin{guestPlugin(t, h, "hog", PolicyQuarantine)}})
	b := fixtureBatch(t, "batch50_00.json")
	err := f.Apply(context.Background(), b)
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("a grow refused by the budget: %v, want ErrBusy", err)
	}
	if b.Quarantined != 0 {
		t.Fatalf("%d events quarantined", b.Quarantined)
	}
	if _, total, err := q.List(7, 10); err != nil || total != 0 {
		t.Fatalf("%d quarantined (%v)", total, err)
	}
	st := h.budget.Stats()
	if st.GrowRefusals == 0 || st.PeakBytes > 24<<20 || f.Stats().Busy != 1 {
		t.Fatalf("budget %+v, filter %+v", st, f.Stats())
	}
	accounted(t, h)
}

// TestProjectConcurrency: at most k batches of one project run their chain
// at once; the next waits its turn, then is refused with ErrBusy, while
// another project runs.
func TestProjectConcurrency(t *testing.T) {
	h := newTestHost(t, Options{CallTimeout: 300 * time.Millisecond})
	f := NewFilter(nil, nil)
	f.SetProjectConcurrency(1, 50*time.Millisecond)
	f.SetChain(7, &Chain{Plugins: []*Plugin{guestPlugin(t, h, "spin-on-marker", PolicyDrop)}})
	f.SetChain(8, &Chain{Plugins: []*Plugin{guestPlugin(t, h, "keep", PolicyDrop)}})
	spin := batchOf(t, `{"type":"custom","projectId":"proj","sessionId":"s","ts":1,"sdkVersion":"1","name":"spin-now"}`)
	done := make(chan error)
	go func() { done <- f.Apply(context.Background(), spin) }()
	for f.gate(7) != nil && len(f.gate(7)) == 0 {
		time.Sleep(time.Millisecond)
	}
	second := batchOf(t, `{"type":"custom","projectId":"proj","sessionId":"s","ts":1,"sdkVersion":"1","name":"fine"}`)
	if err := f.Apply(context.Background(), second); !errors.Is(err, ErrBusy) || len(second.Events) != 1 {
		t.Fatalf("a second batch of the spinning project: %v, %d events", err, len(second.Events))
	}
	other := batchOf(t, `{"type":"custom","projectId":"proj","sessionId":"s","ts":1,"sdkVersion":"1","name":"fine"}`)
	other.ProjectNum = 8
	if err := f.Apply(context.Background(), other); err != nil || len(other.Events) != 1 {
		t.Fatalf("another project meanwhile: %v, %d events", err, len(other.Events))
	}
	if err := <-done; err != nil || len(spin.Events) != 0 {
		t.Fatalf("the spinning batch: %v, %d events (policy drop)", err, len(spin.Events))
	}
	if st := f.Stats(); st.Waits != 1 || st.Refusals != 1 {
		t.Fatalf("%+v", st)
	}
}

// TestLoadWhenBudgetFull: a checked version that is loaded (at start, on
// activation) while the budget has no room goes live with an empty pool;
// it is never left out of its chain, which would let its project's
// batches pass unfiltered.
func TestLoadWhenBudgetFull(t *testing.T) {
	h := newTestHost(t, Options{MaxInstances: 2, Wait: time.Millisecond})
	db := testStore(t)
	m := NewManager(h, db.Plugins(), NewFilter(db.Quarantine(), nil), nil)
	ctx := context.Background()
	hog := readWasm(t, "testdata/hog/hog.wasm")
	for p := uint32(1); p <= 2; p++ {
		if _, err := m.Upload(ctx, p, "proj", "hog", hog, nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	// Both instances the budget allows are busy.
	var held []*instance
	for p := uint32(1); p <= 2; p++ {
		in, err := m.Filter().Chain(p).Plugins[0].get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, in)
	}
	m2 := NewManager(h, db.Plugins(), NewFilter(db.Quarantine(), nil), nil)
	m2.Load(ctx, []uint32{2})
	c := m2.Filter().Chain(2)
	if c == nil || len(c.Plugins) != 1 {
		t.Fatal("a plugin loaded while the budget was full was left out of its chain")
	}
	b := fixtureBatch(t, "batch50_00.json")
	b.ProjectNum = 2
	if err := m2.Filter().Apply(ctx, b); !errors.Is(err, ErrBusy) {
		t.Fatalf("a batch while the budget is still full: %v, want ErrBusy", err)
	}
	for _, in := range held {
		in.close()
	}
	b = fixtureBatch(t, "batch50_00.json")
	b.ProjectNum = 2
	if err := m2.Filter().Apply(ctx, b); err != nil || len(b.Events) != 50 {
		t.Fatalf("once there is room: %v, %d events", err, len(b.Events))
	}
	if st := h.budget.Stats(); st.PeakInstances > 2 {
		t.Fatalf("%+v", st)
	}
}
