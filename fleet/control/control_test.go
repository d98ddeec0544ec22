package control_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/uptimizr/edge/fleet/bundle"
	"github.com/uptimizr/edge/fleet/control"
	"github.com/uptimizr/edge/fleet/fleettest"
)

func seal(t *testing.T, n uint64) *bundle.Signed {
	t.Helper()
	b, err := bundle.Parse([]byte(`{"projects":[{"id":"shop","keys":[{"name":"web","caps":["ingest"]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	rev, _, err := bundle.Build(b, nil, n, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s, err := bundle.Seal(rev, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPublishCompareAndSet: two applies that read the same latest
// revision both try to publish the next one; one wins and the other is
// told so, and the bucket holds the winner's.
func TestPublishCompareAndSet(t *testing.T) {
	ns := fleettest.StartNATS(t)
	ctx := context.Background()
	c, err := control.Dial("nats://"+ns.Addr(), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := c.Latest(ctx); !errors.Is(err, control.ErrNoRevision) {
		t.Fatalf("empty bucket: %v", err)
	}
	wasm := []byte("\x00asm\x01\x00\x00\x00")
	h := bundle.ModuleHash(wasm)
	seq1, err := c.Publish(ctx, seal(t, 1), map[string][]byte{h: wasm}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, seal(t, 1), nil, 0); !errors.Is(err, control.ErrConflict) {
		t.Fatalf("a second first revision: %v", err)
	}
	a, b := seal(t, 2), seal(t, 2)
	if _, err := c.Publish(ctx, a, nil, seq1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, b, nil, seq1); !errors.Is(err, control.ErrConflict) {
		t.Fatalf("the loser: %v", err)
	}
	got, _, err := c.Latest(ctx)
	if err != nil || string(got.Payload) != string(a.Payload) {
		t.Fatalf("latest %s, %v", got.Payload, err)
	}
	m, err := c.Module(ctx, h)
	if err != nil || string(m) != string(wasm) {
		t.Fatalf("module %q %v", m, err)
	}
	if _, err := c.Publish(ctx, seal(t, 3), map[string][]byte{h: []byte("other bytes")}, 0); err == nil {
		t.Fatal("a module under another's hash was published")
	}
	hist, err := c.History(ctx)
	if err != nil || len(hist) != 2 || string(hist[0].Payload) != string(a.Payload) {
		t.Fatalf("history %d, %v", len(hist), err)
	}
}
