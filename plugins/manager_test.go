package plugins

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/storage"
)

func TestManagerLifecycle(t *testing.T) {
	h := newTestHost(t, Options{CallTimeout: 200 * time.Millisecond})
	db, err := storage.Open(storage.Options{Dir: t.TempDir(), MinFreeDisk: -1, DisableAggregation: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := db.Plugins()
	m := NewManager(h, st, NewFilter(db.Quarantine(), nil), nil)
	ctx := context.Background()
	run := func() *core.Batch {
		b := fixtureBatch(t, "batch50_00.json")
		if err := m.Filter().Apply(ctx, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Uploads that fail their checks never go live.
	for name, c := range map[string]struct {
		wasm []byte
		cfg  string
	}{
		"garbage":        {[]byte("nope"), `{}`},
		"refused config": {guestWasm, `{"mode":"refuse"}`},
		"self-test trap": {guestWasm, `{"mode":"trap"}`},
		"self-test spin": {guestWasm, `{"mode":"spin"}`},
		"bad output":     {guestWasm, `{"mode":"change-project"}`},
		"config not obj": {guestWasm, `[1]`},
	} {
		if _, err := m.Upload(ctx, 7, "proj", "x", c.wasm, []byte(c.cfg), ""); !errors.Is(err, ErrRejected) {
			t.Errorf("%s: %v, want ErrRejected", name, err)
		}
	}
	if b := run(); len(b.Events) != 50 || m.Filter().Chain(7) != nil {
		t.Fatal("a rejected upload went live")
	}
	rec, err := m.Upload(ctx, 7, "proj", "halver", guestWasm, []byte(`{"mode":"drop-odd"}`), "drop")
	if err != nil || rec.Active != 1 {
		t.Fatalf("upload: %+v %v", rec, err)
	}
	if b := run(); len(b.Events) != 25 {
		t.Fatalf("after upload: %d events", len(b.Events))
	}
	// A new config is a new version; rollback restores the previous one.
	if rec, err = m.SetConfig(ctx, 7, "proj", "halver", []byte(`{"mode":"keep"}`), ""); err != nil || rec.Active != 2 {
		t.Fatalf("config: %+v %v", rec, err)
	}
	if b := run(); len(b.Events) != 50 {
		t.Fatalf("after config: %d", len(b.Events))
	}
	if rec, err = m.Rollback(ctx, 7, "halver"); err != nil || rec.Active != 1 {
		t.Fatalf("rollback: %+v %v", rec, err)
	}
	if b := run(); len(b.Events) != 25 {
		t.Fatalf("after rollback: %d", len(b.Events))
	}
	if _, err := m.Activate(ctx, 7, "halver", 2); err != nil {
		t.Fatal(err)
	}
	// Two plugins, then reorder and remove.
	if _, err := m.Upload(ctx, 7, "proj", "renamer", guestWasm, []byte(`{"mode":"rename-custom"}`), ""); err != nil {
		t.Fatal(err)
	}
	if c := m.Filter().Chain(7); len(c.Plugins) != 2 || c.Plugins[0].Name != "halver" {
		t.Fatalf("chain %+v", c)
	}
	if err := m.SetOrder(ctx, 7, []string{"renamer", "halver"}); err != nil {
		t.Fatal(err)
	}
	if c := m.Filter().Chain(7); c.Plugins[0].Name != "renamer" {
		t.Fatal("order not applied")
	}
	if err := m.Remove(ctx, 7, "renamer"); err != nil {
		t.Fatal(err)
	}
	if c := m.Filter().Chain(7); len(c.Plugins) != 1 {
		t.Fatalf("after remove %d plugins", len(c.Plugins))
	}
	// A fresh manager over the same store rebuilds the chains (a restart).
	m2 := NewManager(h, st, NewFilter(db.Quarantine(), nil), nil)
	m2.Load(ctx, []uint32{7})
	if c := m2.Filter().Chain(7); c == nil || len(c.Plugins) != 1 || c.Plugins[0].Version != 2 {
		t.Fatalf("after load: %+v", c)
	}
}

func TestShrinkIdleGivesInstancesBack(t *testing.T) {
	h := newTestHost(t, Options{})
	p := guestPlugin(t, h, "keep", PolicyQuarantine)
	db := testStore(t)
	m := NewManager(h, db.Plugins(), NewFilter(db.Quarantine(), nil), nil)
	m.live[liveKey{7, "keep", 1}] = p
	in := encodeBatch(nil, fixtureBatch(t, "batch50_00.json"))
	if _, err := p.Run(context.Background(), in, nil); err != nil {
		t.Fatal(err)
	}
	if len(p.idle) == 0 {
		t.Fatal("no idle instance after a call")
	}
	if n := m.ShrinkIdle(time.Hour); n != 0 || len(p.idle) == 0 {
		t.Fatal("a recently used plugin was shrunk")
	}
	if n := m.ShrinkIdle(0); n != 1 || len(p.idle) != 0 {
		t.Fatalf("shrink: %d plugins, %d idle instances left", n, len(p.idle))
	}
	if _, err := p.Run(context.Background(), in, nil); err != nil {
		t.Fatalf("a shrunk plugin must instantiate again: %v", err)
	}
}
