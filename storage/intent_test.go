package storage

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/uptimizr/edge/core"
)

// failNextLogWrite makes the ingest log's next write fail with errno (ENOSPC
// as on a full disk, EIO as on a failing one).
func failNextLogWrite(t *testing.T, s *Store, errno syscall.Errno) {
	t.Helper()
	failed := false
	s.opts.logFS.(*faultFS).failWrites(func() error {
		if failed {
			return nil
		}
		failed = true
		return errno
	})
}

// rawEvents returns how many events the raw stream of one session holds.
func rawEvents(t *testing.T, s *Store, pnum uint32, session string) int {
	t.Helper()
	return len(readRaw(t, s, pnum, session, 0, 1<<50))
}

// TestFailedLogAppendStoresNoRawChunks: with retention on, a commit whose
// log append fails is answered ErrUnavailable and leaves nothing: its
// events are neither in raw replay nor, after a reopen, in the aggregates;
// the client's retry stores them once.
func TestFailedLogAppendStoresNoRawChunks(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, Retention: true}
	s := openTest(t, opts)
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	if err := s.Sink().Commit(t.Context(), testBatch(pnum, 10, "a")); err != nil {
		t.Fatal(err)
	}
	failNextLogWrite(t, s, syscall.ENOSPC)
	retry := testBatch(pnum, 20, "b1", "b2")
	if err := s.Sink().Commit(t.Context(), retry); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("commit with a failing log: %v, want ErrUnavailable", err)
	}
	for _, sess := range []string{"b1", "b2"} {
		if n := rawEvents(t, s, pnum, sess); n != 0 {
			t.Fatalf("session %s of the refused batch has %d raw events", sess, n)
		}
	}
	if n := rawEvents(t, s, pnum, "a"); n != 10 {
		t.Fatalf("the batch before has %d raw events, want 10", n)
	}
	s.Close()

	s2 := openTest(t, opts)
	if err := s2.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := countEvents(t, s2, pnum); n != 10 {
		t.Fatalf("%d events in the aggregates after reopen, want the 10 acknowledged", n)
	}
	if n := rawEvents(t, s2, pnum, "b1") + rawEvents(t, s2, pnum, "b2"); n != 0 {
		t.Fatalf("the refused batch has %d raw events after reopen", n)
	}
	if err := s2.Sink().Commit(t.Context(), retry); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if err := s2.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := rawEvents(t, s2, pnum, "b1") + rawEvents(t, s2, pnum, "b2"); n != 20 {
		t.Fatalf("after the retry the batch has %d raw events, want 20 (once)", n)
	}
	if n := countEvents(t, s2, pnum); n != 30 {
		t.Fatalf("after the retry %d events in the aggregates, want 30", n)
	}
}

// TestFailedLogAppendRetryInSameProcess: the log goes on after the failed
// write, and the failed batch's sequence number is used by its retry, whose
// chunks are the only ones of the batch.
func TestFailedLogAppendRetryInSameProcess(t *testing.T) {
	s := openTest(t, Options{Retention: true, DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	failNextLogWrite(t, s, syscall.EIO)
	b := testBatch(pnum, 12, "c")
	if err := s.Sink().Commit(t.Context(), b); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("commit with a failing log: %v, want ErrUnavailable", err)
	}
	if err := s.Sink().Commit(t.Context(), b); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if seqs := s.ProjectLog(pnum); len(seqs) != 1 || seqs[0] != 0 {
		t.Fatalf("log after the retry: %v, want the one record at seq 0", seqs)
	}
	if n := rawEvents(t, s, pnum, "c"); n != 12 {
		t.Fatalf("%d raw events after the retry, want 12", n)
	}
	if n := countIntents(t, s); n != 1 {
		t.Fatalf("%d intent markers, want the retry's only (deleted with the next group's chunks)", n)
	}
}

func countIntents(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	it := s.db.NewTransaction(false)
	defer it.Discard()
	iter := it.NewIterator(badger.IteratorOptions{Prefix: []byte{nsIntent}})
	defer iter.Close()
	for iter.Rewind(); iter.Valid(); iter.Next() {
		n++
	}
	return n
}

// TestCrashBetweenRawChunksAndLog: the process dies after a group's chunks
// are committed and before its log records are written (simulated: the
// group stops there and the store is closed with the chunks left). The
// next open deletes those chunks, keeps the ones of committed batches —
// also of a batch folded and gone from the log, whose marker a crash left
// — and the retry is stored once.
func TestCrashBetweenRawChunksAndLog(t *testing.T) {
	dir := t.TempDir()
	// One segment per record, so a folded record's segment is deleted.
	opts := Options{Dir: dir, Retention: true, logFileBytes: 1}
	s := openTest(t, opts)
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	if err := s.Sink().Commit(t.Context(), testBatch(pnum, 10, "a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s.ilog.Has(pnum, 0) {
		t.Fatal("the folded record is still in the log")
	}
	crash := errors.New("simulated crash")
	s.com.afterRaw = func() error { return crash }
	lost := testBatch(pnum, 16, "d1", "d2")
	if err := s.Sink().Commit(t.Context(), lost); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("commit cut short: %v", err)
	}
	if n := rawEvents(t, s, pnum, "d1") + rawEvents(t, s, pnum, "d2"); n != 16 {
		t.Fatalf("the cut-short group left %d raw events; the simulation needs them there (16)", n)
	}
	if n := countIntents(t, s); n != 1 {
		t.Fatalf("%d intent markers before the reopen, want the cut-short group's", n)
	}
	s.Close()

	lg, logged := captureLog()
	opts.Logger = lg
	s2 := openTest(t, opts)
	if n := rawEvents(t, s2, pnum, "d1") + rawEvents(t, s2, pnum, "d2"); n != 0 {
		t.Fatalf("after reopen the unacknowledged batch has %d raw events", n)
	}
	if n := rawEvents(t, s2, pnum, "a"); n != 10 {
		t.Fatalf("after reopen the acknowledged, folded batch has %d raw events, want 10", n)
	}
	if n := countIntents(t, s2); n != 0 {
		t.Fatalf("%d intent markers left after the open", n)
	}
	if !strings.Contains(logged(), "chunks=2") {
		t.Errorf("the deletion was not logged with its count: %s", logged())
	}
	if err := s2.Sink().Commit(t.Context(), lost); err != nil {
		t.Fatal(err)
	}
	if err := s2.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := rawEvents(t, s2, pnum, "d1") + rawEvents(t, s2, pnum, "d2"); n != 16 {
		t.Fatalf("after the retry %d raw events, want 16", n)
	}
	if n := countEvents(t, s2, pnum); n != 26 {
		t.Fatalf("%d events in the aggregates, want 26", n)
	}
}

// TestCommittedMarkerLeftByACrash: a crash after a group's log append but
// before its marker is deleted leaves the marker of a committed group; the
// open keeps its chunks, whether the record is still in the log or folded
// and gone.
func TestCommittedMarkerLeftByACrash(t *testing.T) {
	for _, folded := range []bool{false, true} {
		dir := t.TempDir()
		opts := Options{Dir: dir, Retention: true, logFileBytes: 1, DisableAggregation: !folded}
		s := openTest(t, opts)
		s.Registry().CreateProject("p")
		pnum := s.Registry().Project("p").Num
		if err := s.Sink().Commit(t.Context(), testBatch(pnum, 8, "e")); err != nil {
			t.Fatal(err)
		}
		if folded {
			if err := s.Aggregator().Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		s.com.hasPrev = false // the crash: the close does not delete it
		s.Close()
		s2 := openTest(t, opts)
		if n := rawEvents(t, s2, pnum, "e"); n != 8 {
			t.Fatalf("folded=%v: a committed batch has %d raw events after the open, want 8", folded, n)
		}
		if n := countIntents(t, s2); n != 0 {
			t.Fatalf("folded=%v: %d intent markers left after the open", folded, n)
		}
		s2.Close()
	}
}
