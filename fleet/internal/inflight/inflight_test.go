package inflight

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBound: Add blocks at the bound until an ack has returned, and gives
// up when its context is done.
func TestBound(t *testing.T) {
	tr := New(2)
	ctx := context.Background()
	var settles []func(error)
	for range 2 {
		s, err := tr.Add(ctx, func(error) {})
		if err != nil {
			t.Fatal(err)
		}
		settles = append(settles, s)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := tr.Add(cctx, func(error) {}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Add at the bound with its context done: %v", err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := tr.Add(ctx, func(error) {})
		got <- err
	}()
	settles[0](nil)
	if err := <-got; err != nil {
		t.Fatalf("Add after a slot was freed: %v", err)
	}
	if n := tr.Len(); n != 2 {
		t.Fatalf("Len %d, want 2", n)
	}
}

// TestSettleOnce: however often and from wherever settle is called, ack
// is called once, and the room comes back once.
func TestSettleOnce(t *testing.T) {
	tr := New(1)
	var calls atomic.Int32
	s, err := tr.Add(context.Background(), func(error) { calls.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { s(nil) })
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("ack called %d times", n)
	}
	if cap(tr.slots) != 1 || len(tr.slots) != 0 {
		t.Fatalf("slots %d of %d after the settle", len(tr.slots), cap(tr.slots))
	}
}

// TestClose: Close waits for the acks in flight, fails those still
// missing when its context ends, and refuses new records.
func TestClose(t *testing.T) {
	tr := New(4)
	ctx := context.Background()
	var errs [3]error
	var settles []func(error)
	for i := range 3 {
		s, err := tr.Add(ctx, func(err error) { errs[i] = err })
		if err != nil {
			t.Fatal(err)
		}
		settles = append(settles, s)
	}
	settles[0](nil)
	go settles[1](nil)
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	// settles[2] never comes: Close gives up on it when cctx ends.
	if err := tr.Close(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: %v", err)
	}
	if errs[0] != nil || !errors.Is(errs[2], ErrClosed) {
		t.Fatalf("acks %v", errs)
	}
	if errs[1] != nil && !errors.Is(errs[1], ErrClosed) {
		t.Fatalf("ack 1: %v", errs[1])
	}
	settles[2](nil) // late: nothing
	if !errors.Is(errs[2], ErrClosed) {
		t.Fatal("a late settle called ack again")
	}
	if _, err := tr.Add(ctx, func(error) {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close: %v", err)
	}
	if n := tr.Len(); n != 0 {
		t.Fatalf("%d in flight after Close", n)
	}
}
