package storage

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/uptimizr/edge/core"
)

// TestOriginSet: has holds exactly the numbers added, whatever their order,
// and the encoding round-trips.
func TestOriginSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	for round := range 50 {
		o := &originSet{}
		ref := map[uint64]bool{}
		for range 300 {
			s := uint64(rng.IntN(400))
			if round%2 == 0 {
				s = uint64(len(ref)) + uint64(rng.IntN(5)) // mostly in order
			}
			o.add(s)
			ref[s] = true
		}
		for s := range uint64(500) {
			if o.has(s) != ref[s] {
				t.Fatalf("round %d: has(%d) = %v, want %v", round, s, o.has(s), ref[s])
			}
		}
		o2, err := decodeOriginSet(appendOriginSet(nil, o))
		if err != nil {
			t.Fatal(err)
		}
		for s := range uint64(500) {
			if o2.has(s) != ref[s] {
				t.Fatalf("round %d: decoded has(%d) = %v, want %v", round, s, o2.has(s), ref[s])
			}
		}
	}
	// A gap that never fills: past maxOriginGaps numbers above it, the set
	// moves on past it, and stays bounded.
	o := &originSet{}
	for s := uint64(1); s <= maxOriginGaps+10; s++ {
		o.add(s)
	}
	if len(o.above) > maxOriginGaps || o.next < 2 {
		t.Fatalf("gap at 0: next %d, %d above", o.next, len(o.above))
	}
	for _, bad := range [][]byte{{}, {5}, {1, 3, 1}, {0, 1, 0}} {
		if _, err := decodeOriginSet(bad); err == nil {
			t.Errorf("decodeOriginSet(%v) accepted", bad)
		}
	}
}

func forwarded(pnum uint32, n int, sess string) *core.Batch { return testBatch(pnum, n, sess) }

// TestCommitForwardedOnce: a hub commits each forwarded record once, by
// node, project and sequence, in any order of arrival; the aggregates count
// each once; and after a restart, whether the records were folded (their
// origins in the fold's transaction) or are still in the log, a record
// sent again is still known.
func TestCommitForwardedOnce(t *testing.T) {
	for _, folded := range []bool{true, false} {
		t.Run(map[bool]string{true: "folded", false: "in the log"}[folded], func(t *testing.T) {
			dir := t.TempDir()
			// A segment per record: folded records' segments are deleted,
			// so after the reopen only the fold's transaction knows them.
			s := openTest(t, Options{Dir: dir, Hub: true, DisableAggregation: !folded, logFileBytes: 1})
			s.Registry().CreateProject("p")
			pnum := s.Registry().Project("p").Num
			commit := func(s *Store, node string, seq uint64) error {
				return s.Committer().CommitForwarded(t.Context(), Origin{Node: node, Seq: seq}, forwarded(pnum, 10, "s"))
			}
			for _, seq := range []uint64{0, 1, 2, 5, 4, 3} {
				if err := commit(s, "edge-1", seq); err != nil {
					t.Fatalf("seq %d: %v", seq, err)
				}
			}
			for _, seq := range []uint64{0, 3, 5} {
				if err := commit(s, "edge-1", seq); !errors.Is(err, ErrDuplicate) {
					t.Fatalf("seq %d sent again: %v, want ErrDuplicate", seq, err)
				}
			}
			if err := commit(s, "edge-2", 3); err != nil {
				t.Fatalf("another node's seq 3: %v", err)
			}
			if folded {
				if err := s.Aggregator().Sync(t.Context()); err != nil {
					t.Fatal(err)
				}
				if n := countEvents(t, s, pnum); n != 70 {
					t.Fatalf("%d events folded, want 70 (seven records once)", n)
				}
			}
			if folded {
				if n := s.LogRecords(); n != 0 {
					t.Fatalf("%d records left in the log after the fold", n)
				}
			}
			s.Close()
			s2 := openTest(t, Options{Dir: dir, Hub: true, DisableAggregation: !folded, logFileBytes: 1})
			if folded {
				if n := s2.LogRecords(); n != 0 {
					t.Fatalf("%d records in the log after reopen: the check below would not read the fold's sets", n)
				}
			}
			for _, seq := range []uint64{1, 4} {
				if err := commit(s2, "edge-1", seq); !errors.Is(err, ErrDuplicate) {
					t.Fatalf("after reopen, seq %d sent again: %v, want ErrDuplicate", seq, err)
				}
			}
			if err := commit(s2, "edge-2", 3); !errors.Is(err, ErrDuplicate) {
				t.Fatalf("after reopen, edge-2's seq 3 sent again: %v", err)
			}
			if err := commit(s2, "edge-1", 6); err != nil {
				t.Fatalf("after reopen, a new record: %v", err)
			}
			if folded {
				if err := s2.Aggregator().Sync(t.Context()); err != nil {
					t.Fatal(err)
				}
				if n := countEvents(t, s2, pnum); n != 80 {
					t.Fatalf("%d events folded after reopen, want 80", n)
				}
			}
		})
	}
}

func TestCommitForwardedNeedsHub(t *testing.T) {
	s := openTest(t, Options{})
	s.Registry().CreateProject("p")
	err := s.Committer().CommitForwarded(t.Context(), Origin{Node: "n", Seq: 0}, forwarded(s.Registry().Project("p").Num, 1, "s"))
	if err == nil {
		t.Fatal("a store not opened as a hub's took a forwarded record")
	}
	h := openTest(t, Options{Hub: true})
	h.Registry().CreateProject("p")
	if err := h.Committer().CommitForwarded(t.Context(), Origin{Node: "bad node", Seq: 0}, forwarded(h.Registry().Project("p").Num, 1, "s")); err == nil {
		t.Fatal("an invalid node id was taken")
	}
}

// TestEnsureProject: a hub makes a project the first time a record names
// it, with no key, and finds it after; an invalid id is refused.
func TestEnsureProject(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir, Hub: true})
	p, made, err := s.Registry().EnsureProject("shop.eu")
	if err != nil || !made || p == nil {
		t.Fatalf("EnsureProject: %v %v %v", p, made, err)
	}
	if keys := s.Registry().Keys("shop.eu"); len(keys) != 0 {
		t.Fatalf("%d keys on a project made by the hub, want none", len(keys))
	}
	p2, made, err := s.Registry().EnsureProject("shop.eu")
	if err != nil || made || p2.Num != p.Num {
		t.Fatalf("second EnsureProject: %v %v %v", p2, made, err)
	}
	if _, _, err := s.Registry().EnsureProject("a/b"); err == nil {
		t.Fatal("an invalid id was taken")
	}
	s.Close()
	s2 := openTest(t, Options{Dir: dir, Hub: true})
	if p3 := s2.Registry().Project("shop.eu"); p3 == nil || p3.Num != p.Num {
		t.Fatalf("after reopen: %v", p3)
	}
}
