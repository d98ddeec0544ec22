package edge

import (
	"testing"
	"time"
)

// TestAdmissionShares: one project takes at most its share of the slots;
// another project's request then takes a free slot without waiting; a slot
// that comes free goes to the earliest waiter whose project is under its
// share.
func TestAdmissionShares(t *testing.T) {
	a := newAdmission(4, 2)
	for i := 0; i < 2; i++ {
		if ok, waited := a.acquire(1, time.Second); !ok || waited {
			t.Fatalf("project 1, slot %d: ok %v, waited %v", i, ok, waited)
		}
	}
	// A third of project 1 waits (its share is full), and gives up.
	if ok, waited := a.acquire(1, 5*time.Millisecond); ok || !waited {
		t.Fatalf("project 1 over its share: ok %v, waited %v", ok, waited)
	}
	// Project 2 is not held up by it.
	if ok, waited := a.acquire(2, time.Second); !ok || waited {
		t.Fatalf("project 2 beside a full project 1: ok %v, waited %v", ok, waited)
	}
	// Project 1 waits again; project 3 takes the last slot; project 2
	// waits for one.
	got := make(chan uint32, 2)
	go func() {
		if ok, _ := a.acquire(1, 5*time.Second); ok {
			got <- 1
		}
	}()
	if ok, waited := a.acquire(3, time.Second); !ok || waited {
		t.Fatal("project 3 did not get the free slot")
	}
	for a.waits.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	go func() {
		if ok, _ := a.acquire(2, 5*time.Second); ok {
			got <- 2
		}
	}()
	for a.waits.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	// Project 3 gives its slot back: project 1 waited first but is at its
	// share, so project 2 gets it.
	a.release(3)
	if p := <-got; p != 2 {
		t.Fatalf("the free slot went to project %d, want 2", p)
	}
	// Project 1 gives one back: its own waiter gets it.
	a.release(1)
	if p := <-got; p != 1 {
		t.Fatalf("the free slot went to project %d, want 1", p)
	}
	if w := a.projectWaits(1); w != 2 {
		t.Fatalf("project 1 waited %d times, want 2", w)
	}
	if w := a.projectWaits(3); w != 0 {
		t.Fatalf("project 3 waited %d times", w)
	}
}

// TestAdmissionZeroAllocs: taking and giving back a free slot allocates
// nothing.
func TestAdmissionZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	a := newAdmission(4, 2)
	if n := testing.AllocsPerRun(1000, func() {
		a.acquire(7, time.Second)
		a.release(7)
	}); n != 0 {
		t.Fatalf("%v allocations per admission", n)
	}
}
