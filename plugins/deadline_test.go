package plugins

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// TestDeadlineCutsBetweenSlices: a guest that spins in memory.fill spends
// about a thousand times longer per unit of fuel than ordinary code, so a
// slice of fuel lasts seconds; checked only at the end of a slice, its 40
// ms deadline was noticed after 8.6 s. The Cutter's timer zeroes its fuel
// at the deadline, and the guest yields at its next check: after one fill.
// Wall-clock bounds, so a late attempt is retried (see
// TestDeadlineAndIsolation); a cut that waits for the slice misses all
// three by seconds.
func TestDeadlineCutsBetweenSlices(t *testing.T) {
	const deadline = 40 * time.Millisecond
	wasm, err := os.ReadFile("testdata/fillspin/fillspin.wasm")
	if err != nil {
		t.Fatal(err)
	}
	h := newTestHost(t, Options{CallTimeout: deadline})
	m, err := h.Compile(context.Background(), wasm)
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.NewPlugin(context.Background(), "fillspin", 1, m, nil, PolicyQuarantine)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	in := encodeBatch(nil, batchOf(t, `{"type":"custom","projectId":"proj","sessionId":"s","ts":1,"sdkVersion":"1","name":"x"}`))
	var misses []string
	for attempt := 1; attempt <= 3; attempt++ {
		start := time.Now()
		_, err := p.Run(context.Background(), in, nil)
		took := time.Since(start)
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("the spinning call: %v", err)
		}
		t.Logf("attempt %d: cut after %s (deadline %s)", attempt, took, deadline)
		msg := cutError(took, deadline)
		if msg == "" {
			return
		}
		misses = append(misses, msg)
	}
	t.Fatalf("late in every attempt: %s", strings.Join(misses, "; "))
}

// TestCutInstanceIsNotReused: after a cut, the next call gets a fresh
// instance with a whole deadline, and a call that finishes in time is not
// cut by the timer of the call before it. (A call is cut when its
// deadline passes on the wall clock, descheduled or not: the deadline is
// long beside the calls, so that a loaded machine's scheduling delays do
// not reach it.)
func TestCutInstanceIsNotReused(t *testing.T) {
	const deadline = 250 * time.Millisecond
	h := newTestHost(t, Options{CallTimeout: deadline})
	p := guestPlugin(t, h, "spin-on-marker", PolicyQuarantine)
	spin := encodeBatch(nil, batchOf(t, `{"type":"custom","projectId":"proj","sessionId":"s","ts":1,"sdkVersion":"1","name":"spin-now"}`))
	ok := encodeBatch(nil, batchOf(t, `{"type":"custom","projectId":"proj","sessionId":"s","ts":1,"sdkVersion":"1","name":"fine"}`))
	for i := 0; i < 2; i++ {
		if _, err := p.Run(context.Background(), spin, nil); !errors.Is(err, ErrTimeout) {
			t.Fatalf("spin %d: %v", i, err)
		}
		// Calls that end well before the deadline, back to back across the
		// instant the previous call's timer would have fired: none is cut.
		end := time.Now().Add(2 * deadline)
		for n := 0; time.Now().Before(end); n++ {
			if _, err := p.Run(context.Background(), ok, nil); err != nil {
				t.Fatalf("round %d, call %d after a cut: %v", i, n, err)
			}
		}
	}
}
