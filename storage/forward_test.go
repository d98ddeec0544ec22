package storage

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/uptimizr/edge/core"
)

// readForward reads what the forwarder would send next, without waiting.
func readForward(t *testing.T, f *Forward) []ForwardRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	recs, err := f.Read(ctx, nil, 1<<20)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	// Copy out of the Forward's buffers.
	for i := range recs {
		evs := make([][]byte, len(recs[i].Events))
		for j, e := range recs[i].Events {
			evs[j] = append([]byte(nil), e...)
		}
		recs[i].Events = evs
		recs[i].Session = append([]byte(nil), recs[i].Session...)
	}
	return recs
}

// TestForwardReadsCanonicalEvents: with forwarding on, each committed
// batch is one record of its project's canonical events, in order; the
// aggregator folds the records as without forwarding, but the log keeps
// them until the forwarder's committed position is past them; after a
// reopen the forwarder goes on from that position, and what it read but
// did not commit comes again.
func TestForwardReadsCanonicalEvents(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir, Forward: true})
	s.Registry().CreateProject("a")
	s.Registry().CreateProject("b.eu")
	pa, pb := s.Registry().Project("a").Num, s.Registry().Project("b.eu").Num
	var sent []*core.Batch
	for i := range 6 {
		p := pa
		if i%3 == 2 {
			p = pb
		}
		b := testBatch(p, 4+i, fmt.Sprint("s", i))
		sent = append(sent, b)
		if err := s.Sink().Commit(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	f := s.Forward()
	recs := readForward(t, f)
	if len(recs) != 6 {
		t.Fatalf("%d records to forward, want 6", len(recs))
	}
	next := map[string]uint64{}
	byProject := map[string][]*core.Batch{}
	for _, b := range sent {
		id := "a"
		if b.ProjectNum == pb {
			id = "b.eu"
		}
		byProject[id] = append(byProject[id], b)
	}
	for _, r := range recs {
		if r.Seq != next[r.Project] {
			t.Fatalf("project %s: record %d, want %d", r.Project, r.Seq, next[r.Project])
		}
		b := byProject[r.Project][r.Seq]
		next[r.Project]++
		if len(r.Events) != len(b.Events) || r.ReceivedAt != b.ReceivedAt {
			t.Fatalf("record %s/%d: %d events at %d, want %d at %d", r.Project, r.Seq, len(r.Events), r.ReceivedAt, len(b.Events), b.ReceivedAt)
		}
		for i, e := range r.Events {
			if string(e) != string(b.JSON(i)) {
				t.Fatalf("record %s/%d event %d: %s, want %s", r.Project, r.Seq, i, e, b.JSON(i))
			}
		}
		if string(r.Session) != string(b.Session(0)) {
			t.Fatalf("record %s/%d: session %q, want %q", r.Project, r.Seq, r.Session, b.Session(0))
		}
	}
	if more := readForward(t, f); len(more) != 0 {
		t.Fatalf("%d records read twice", len(more))
	}
	// The aggregator folds them, the log keeps them for the forwarder.
	if err := s.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := countEvents(t, s, pa); n != 4+5+7+8 {
		t.Fatalf("%d events of a folded, want %d", n, 4+5+7+8)
	}
	if n := s.LogRecords(); n != 6 {
		t.Fatalf("%d records in the log after the fold, want 6 (the forwarder has not acknowledged them)", n)
	}
	if st := f.Stats(); st.Backlog != 6 || st.BacklogBytes <= 0 {
		t.Fatalf("backlog %+v, want 6 records", st)
	}
	// Acknowledge a's first two records and b's first, and commit.
	f.Ack("a", 2)
	f.Ack("b.eu", 1)
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := s.LogRecords(); n != 3 {
		t.Fatalf("%d records in the log, want the 3 not acknowledged", n)
	}
	if st := f.Stats(); st.Backlog != 3 {
		t.Fatalf("backlog %+v, want 3", st)
	}
	f.Ack("a", 3) // acknowledged, not committed
	s.Close()

	s2 := openTest(t, Options{Dir: dir, Forward: true})
	recs = readForward(t, s2.Forward())
	got := map[string][]uint64{}
	for _, r := range recs {
		got[r.Project] = append(got[r.Project], r.Seq)
	}
	if fmt.Sprint(got["a"]) != "[2 3]" || fmt.Sprint(got["b.eu"]) != "[1]" {
		t.Fatalf("after reopen the forwarder reads %v, want a [2 3] (3 was not committed) and b.eu [1]", got)
	}
	// Rewind: the records not acknowledged come again.
	s2.Forward().Ack("a", 3)
	s2.Forward().Rewind()
	recs = readForward(t, s2.Forward())
	got = map[string][]uint64{}
	for _, r := range recs {
		got[r.Project] = append(got[r.Project], r.Seq)
	}
	if fmt.Sprint(got["a"]) != "[3]" || fmt.Sprint(got["b.eu"]) != "[1]" {
		t.Fatalf("after a rewind the forwarder reads %v, want a [3] and b.eu [1]", got)
	}
}

// TestForwardStartsAtTheEnd: turning forwarding on for a data dir whose log
// holds records forwards what is committed from then on.
func TestForwardStartsAtTheEnd(t *testing.T) {
	dir := t.TempDir()
	s, pnum := storeWithLog(t, dir, Options{}, 3, "a")
	s.Close()
	s2 := openTest(t, Options{Dir: dir, Forward: true})
	if recs := readForward(t, s2.Forward()); len(recs) != 0 {
		t.Fatalf("%d records from before forwarding was on", len(recs))
	}
	if err := s2.Sink().Commit(t.Context(), testBatch(pnum, 2, "b")); err != nil {
		t.Fatal(err)
	}
	recs := readForward(t, s2.Forward())
	if len(recs) != 1 || recs[0].Seq != 3 || len(recs[0].Events) != 2 {
		t.Fatalf("records after forwarding was on: %+v, want seq 3 with 2 events", recs)
	}
	if err := s2.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := countEvents(t, s2, pnum); n != 32 {
		t.Fatalf("%d events folded, want 32", n)
	}
}

// TestForwardBacklogBound: past COLLECTOR_FORWARD_MAX_BACKLOG of records
// not acknowledged, commits are refused (ErrUnavailable: 503 and
// Retry-After at the edge); once the forwarder catches up they are taken
// again, and every batch acknowledged is in the log.
func TestForwardBacklogBound(t *testing.T) {
	s := openTest(t, Options{Forward: true, ForwardMaxBacklog: 8 << 10})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	accepted := 0
	var refused error
	for range 200 {
		if refused = s.Sink().Commit(t.Context(), testBatch(pnum, 20, "a")); refused != nil {
			break
		}
		accepted++
	}
	if !errors.Is(refused, core.ErrUnavailable) || !errors.Is(refused, ErrForwardBacklog) {
		t.Fatalf("commit past the backlog bound: %v, want ErrForwardBacklog (ErrUnavailable)", refused)
	}
	if accepted == 0 {
		t.Fatal("nothing accepted under the bound")
	}
	if st := s.Forward().Stats(); st.BacklogBytes < 8<<10 || st.Backlog != accepted {
		t.Fatalf("backlog %+v with %d accepted", st, accepted)
	}
	recs := readForward(t, s.Forward())
	if len(recs) != accepted {
		t.Fatalf("%d records to forward, want the %d accepted", len(recs), accepted)
	}
	s.Forward().Ack("p", uint64(accepted))
	if err := s.Forward().Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.Sink().Commit(t.Context(), testBatch(pnum, 20, "a")); err != nil {
		t.Fatalf("commit once the forwarder caught up: %v", err)
	}
}
