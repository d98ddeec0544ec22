package fleet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// memSource is a Source over records held in memory, per project, with
// the positions a store would keep.
type memSource struct {
	mu        sync.Mutex
	recs      map[string][]Record // by project, seq order, seq = index
	cursor    map[string]uint64
	acked     map[string]uint64
	committed map[string]uint64
	wake      chan struct{}
}

func newMemSource() *memSource {
	return &memSource{recs: map[string][]Record{}, cursor: map[string]uint64{}, acked: map[string]uint64{}, committed: map[string]uint64{}, wake: make(chan struct{}, 1)}
}

func (s *memSource) add(project string, n int) {
	s.mu.Lock()
	for range n {
		seq := uint64(len(s.recs[project]))
		ev := fmt.Appendf(nil, `{"p":%q,"seq":%d}`, project, seq)
		s.recs[project] = append(s.recs[project], Record{Node: "n1", Project: project, Seq: seq, ReceivedAt: 1, Body: append(ev, '\n')})
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *memSource) Read(ctx context.Context, dst []Record, max int) ([]Record, error) {
	for {
		s.mu.Lock()
		projects := make([]string, 0, len(s.recs))
		for p := range s.recs {
			projects = append(projects, p)
		}
		slices.Sort(projects)
		for _, p := range projects {
			for c := s.cursor[p]; c < uint64(len(s.recs[p])) && len(dst) < max; c++ {
				dst = append(dst, s.recs[p][c])
				s.cursor[p] = c + 1
			}
		}
		s.mu.Unlock()
		if len(dst) > 0 {
			return dst, nil
		}
		select {
		case <-ctx.Done():
			return dst, ctx.Err()
		case <-s.wake:
		}
	}
}

func (s *memSource) Rewind() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p := range s.cursor {
		s.cursor[p] = s.acked[p]
	}
}

func (s *memSource) Ack(project string, below uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if below <= s.acked[project] {
		panic(fmt.Sprintf("ack of %s went back: %d after %d", project, below, s.acked[project]))
	}
	s.acked[project] = below
}

func (s *memSource) Commit() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, v := range s.acked {
		s.committed[p] = v
	}
	return nil
}

func (s *memSource) ackedOf(p string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked[p]
}

// memEngine is a Publisher that keeps what it is sent, acknowledges it out
// of order from other goroutines, deduplicates by MsgID as JetStream does,
// and fails the publishes fail says to.
type memEngine struct {
	mu       sync.Mutex
	stored   map[string]Record // by MsgID
	order    []string
	sent     int
	maxInFl  int
	inflight int
	fail     func(n int, r *Record) error // n: the publish's number
	slots    chan struct{}
	rng      *rand.Rand
	wg       sync.WaitGroup
}

func newMemEngine(maxInFlight int) *memEngine {
	return &memEngine{stored: map[string]Record{}, slots: make(chan struct{}, maxInFlight), rng: rand.New(rand.NewPCG(1, 1))}
}

func (e *memEngine) Publish(ctx context.Context, r *Record, ack func(error)) error {
	select {
	case e.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	e.mu.Lock()
	n := e.sent
	e.sent++
	e.inflight++
	e.maxInFl = max(e.maxInFl, e.inflight)
	var err error
	if e.fail != nil {
		err = e.fail(n, r)
	}
	cp := Record{Node: r.Node, Project: r.Project, Seq: r.Seq, Body: slices.Clone(r.Body)}
	delay := time.Duration(e.rng.IntN(300)) * time.Microsecond
	e.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		time.Sleep(delay) // acknowledgements come back out of order
		e.mu.Lock()
		if err == nil {
			if _, dup := e.stored[cp.MsgID()]; !dup {
				e.stored[cp.MsgID()] = cp
				e.order = append(e.order, cp.MsgID())
			}
		}
		e.inflight--
		e.mu.Unlock()
		<-e.slots
		ack(err)
	}()
	return nil
}

func (e *memEngine) Close(ctx context.Context) error {
	e.wg.Wait()
	return nil
}

func (e *memEngine) storedCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.stored)
}

// runUntil runs f until cond holds (or fails the test after 10 s), then
// stops it and shuts it down.
func runUntil(t *testing.T, f *Forwarder, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("not done after 10 s: %+v", f.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if err := f.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestForwarderInOrder: every record reaches the engine once, a project's
// position moves only past records acknowledged in a row (acks come back
// out of order), and the in-flight bound holds.
func TestForwarderInOrder(t *testing.T) {
	src := newMemSource()
	eng := newMemEngine(8)
	src.add("a", 500)
	src.add("b", 300)
	f := NewForwarder(src, eng, ForwarderOptions{ReadMax: 64})
	runUntil(t, f, func() bool { return src.ackedOf("a") == 500 && src.ackedOf("b") == 300 })
	if n := eng.storedCount(); n != 800 {
		t.Fatalf("%d records stored, want 800", n)
	}
	if eng.maxInFl > 8 {
		t.Fatalf("%d in flight, bound 8", eng.maxInFl)
	}
	if st := f.Stats(); st.Forwarded != 800 || st.Published != 800 || st.Errors != 0 {
		t.Fatalf("stats %+v", st)
	}
	if src.committed["a"] != 500 || src.committed["b"] != 300 {
		t.Fatalf("committed %v after Shutdown", src.committed)
	}
}

// TestForwarderFailureResends: publishes that fail (the engine down for a
// while) leave the positions at the first record not acknowledged; the
// forwarder rewinds and sends again, so that every record is stored, the
// ones stored before the failure once (by id), and the position never
// passes a record the engine did not take.
func TestForwarderFailureResends(t *testing.T) {
	src := newMemSource()
	eng := newMemEngine(16)
	var down sync.Mutex
	failing := true
	eng.fail = func(n int, r *Record) error {
		down.Lock()
		defer down.Unlock()
		if n >= 100 && n < 400 && failing && n%3 != 0 {
			return errors.New("engine unreachable")
		}
		return nil
	}
	src.add("a", 1000)
	f := NewForwarder(src, eng, ForwarderOptions{Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	checked := 0
	runUntil(t, f, func() bool {
		// The acknowledged position never passes a record the engine lacks.
		p := src.ackedOf("a")
		eng.mu.Lock()
		for seq := uint64(checked); seq < p; seq++ {
			if _, ok := eng.stored[(&Record{Node: "n1", Project: "a", Seq: seq}).MsgID()]; !ok {
				eng.mu.Unlock()
				t.Fatalf("position %d passes record %d, which the engine does not have", p, seq)
			}
		}
		eng.mu.Unlock()
		checked = int(p)
		return p == 1000
	})
	if n := eng.storedCount(); n != 1000 {
		t.Fatalf("%d records stored, want 1000", n)
	}
	st := f.Stats()
	if st.Errors == 0 || st.Published <= 1000 || st.Forwarded != 1000 {
		t.Fatalf("stats %+v: want errors, records sent again, all 1000 forwarded", st)
	}
	if st.Down {
		t.Fatal("still down after everything was forwarded")
	}
}

// TestForwarderWaitsForRecords: a forwarder with nothing to send waits,
// and sends what is committed later.
func TestForwarderWaitsForRecords(t *testing.T) {
	src := newMemSource()
	eng := newMemEngine(4)
	f := NewForwarder(src, eng, ForwarderOptions{})
	go func() {
		time.Sleep(20 * time.Millisecond)
		src.add("late", 10)
	}()
	runUntil(t, f, func() bool { return src.ackedOf("late") == 10 })
	if n := eng.storedCount(); n != 10 {
		t.Fatalf("%d stored, want 10", n)
	}
}
