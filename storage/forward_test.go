package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/storage/ingestlog"
)

// readRecord is a ForwardRecord copied out of the Forward's buffers, with
// its body's lines.
type readRecord struct {
	ForwardRecord
	Events [][]byte
}

// readForward reads what the forwarder would send next, without waiting.
func readForward(t *testing.T, f *Forward) []readRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	recs, err := f.Read(ctx, nil, 1<<20)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	out := make([]readRecord, len(recs))
	for i, r := range recs {
		body := bytes.Clone(r.Body)
		if r.Snappy {
			if body, err = s2.Decode(nil, r.Body); err != nil {
				t.Fatalf("record %s/%d: its body is not a Snappy block: %v", r.Project, r.Seq, err)
			}
		}
		if len(body) == 0 || body[len(body)-1] != '\n' {
			t.Fatalf("record %s/%d: body %q does not end in a newline", r.Project, r.Seq, body)
		}
		r.Body, r.Session = bytes.Clone(r.Body), bytes.Clone(r.Session)
		out[i] = readRecord{ForwardRecord: r, Events: bytes.Split(body[:len(body)-1], []byte("\n"))}
	}
	return out
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
		if !r.Snappy {
			t.Fatalf("record %s/%d: its body is not the Snappy block the log keeps", r.Project, r.Seq)
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

// TestForwardReadsRecordsOfEarlierReleases: the records a forwarding node
// of an earlier release left in its log (version 4 with the events as a
// version-1 body, S2-compressed or not, and version 1) are forwarded as
// NDJSON, uncompressed, with the same events, session and time accepted.
func TestForwardReadsRecordsOfEarlierReleases(t *testing.T) {
	s := openTest(t, Options{Forward: true, DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	var m members
	var sent []*core.Batch
	for i, enc := range []func(*core.Batch) []byte{
		func(b *core.Batch) []byte { return encodeV4Record(b, &m, nil, true, true) },
		func(b *core.Batch) []byte { return encodeV4Record(b, &m, nil, true, false) },
		func(b *core.Batch) []byte { rec, _ := encodeRecord(nil, nil, b, nil, true); return rec },
	} {
		b := testBatch(pnum, 3+i, fmt.Sprint("old", i), "other")
		b.ReceivedAt += int64(i)
		sent = append(sent, b)
		if err := s.ilog.Append([]ingestlog.Append{{Project: pnum, Seq: uint64(i), Rec: enc(b)}}); err != nil {
			t.Fatal(err)
		}
	}
	recs := readForward(t, s.Forward())
	if len(recs) != len(sent) {
		t.Fatalf("%d records to forward, want %d", len(recs), len(sent))
	}
	for i, r := range recs {
		b := sent[i]
		if r.Seq != uint64(i) || r.Snappy || r.ReceivedAt != b.ReceivedAt || string(r.Session) != string(b.Session(0)) || len(r.Events) != len(b.Events) {
			t.Fatalf("record %d: seq %d, Snappy %v, at %d, session %q, %d events; want %d, false, %d, %q, %d",
				i, r.Seq, r.Snappy, r.ReceivedAt, r.Session, len(r.Events), i, b.ReceivedAt, b.Session(0), len(b.Events))
		}
		for j, e := range r.Events {
			if string(e) != string(b.JSON(j)) {
				t.Fatalf("record %d event %d: %s, want %s", i, j, e, b.JSON(j))
			}
		}
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
