package storage

import (
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/uptimizr/edge/core"
)

// countEvents returns the project's event count over all time from the
// aggregates.
func countEvents(t *testing.T, s *Store, pnum uint32) int64 {
	t.Helper()
	q := core.DefaultQuery()
	q.Since, q.Until = 0, 1<<50
	rows, err := s.Reader().EventCounts(pnum, q)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, r := range rows {
		n += r.Count
	}
	return n
}

// TestFoldedRecordLeftInTheLogIsNotFoldedAgain: the aggregates and their
// checkpoint are committed before the folded log records are deleted (two
// databases); a record left by a crash in between sits below the
// checkpoint, and the next pass deletes it without counting it again.
func TestFoldedRecordLeftInTheLogIsNotFoldedAgain(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir, DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	for i := 0; i < 3; i++ {
		if err := s.Sink().Commit(t.Context(), testBatch(pnum, 10, "a", "b")); err != nil {
			t.Fatal(err)
		}
	}
	// Keep a copy of record 1 as the crash would have left it.
	var key, val []byte
	if err := s.LogDB().View(func(txn *badger.Txn) error {
		item, err := txn.Get(LogKey(pnum, 1))
		if err != nil {
			return err
		}
		key = item.KeyCopy(nil)
		val, err = item.ValueCopy(nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := countEvents(t, s, pnum); n != 30 {
		t.Fatalf("%d events counted, want 30", n)
	}
	if seqs, _ := readLog(t, s, pnum); len(seqs) != 0 {
		t.Fatalf("log records left after folding: %v", seqs)
	}
	if err := s.LogDB().Update(func(txn *badger.Txn) error { return txn.Set(key, val) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := openTest(t, Options{Dir: dir, DisableAggregation: true})
	if err := s2.Sink().Commit(t.Context(), testBatch(pnum, 10, "c")); err != nil {
		t.Fatal(err)
	}
	if err := s2.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := countEvents(t, s2, pnum); n != 40 {
		t.Fatalf("%d events counted after the leftover record, want 40 (30 + 10 new)", n)
	}
	if seqs, _ := readLog(t, s2, pnum); len(seqs) != 0 {
		t.Fatalf("the leftover record was not deleted: %v", seqs)
	}
}

// TestAggregatesMoveFromTheMainDatabase: a data dir whose aggregates live in
// the main database (as an earlier version kept them) has them moved at
// open, and folding continues from their checkpoint.
func TestAggregatesMoveFromTheMainDatabase(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir, DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	if err := s.Sink().Commit(t.Context(), testBatch(pnum, 10, "a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Move every aggregate key back into the main database.
	keys := moveBack(t, s.adb, s.DB())
	if len(keys) == 0 {
		t.Fatal("no aggregates written")
	}
	s.Close()

	s2 := openTest(t, Options{Dir: dir, DisableAggregation: true})
	if left := keysIn(s2.DB(), keys); left != 0 {
		t.Fatalf("%d of %d aggregate keys still in the main database", left, len(keys))
	}
	if n := countEvents(t, s2, pnum); n != 10 {
		t.Fatalf("%d events after the move, want 10", n)
	}
	if err := s2.Sink().Commit(t.Context(), testBatch(pnum, 5, "b")); err != nil {
		t.Fatal(err)
	}
	if err := s2.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := countEvents(t, s2, pnum); n != 15 {
		t.Fatalf("%d events after folding on, want 15", n)
	}
}

// TestLogMovesFromTheMainDatabase: a data dir whose ingest log lives in the
// main database (as an earlier version kept it) has its records and
// sequence counters moved at open; nothing is folded twice or lost, and
// the sequence goes on where it was.
func TestLogMovesFromTheMainDatabase(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir, DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	for i := 0; i < 3; i++ {
		if err := s.Sink().Commit(t.Context(), testBatch(pnum, 10, "a")); err != nil {
			t.Fatal(err)
		}
	}
	keys := moveBack(t, s.LogDB(), s.DB())
	if len(keys) != 4 { // three records and the counter
		t.Fatalf("%d keys in the log database, want 4", len(keys))
	}
	s.Close()

	s2 := openTest(t, Options{Dir: dir, DisableAggregation: true})
	if left := keysIn(s2.DB(), keys); left != 0 {
		t.Fatalf("%d of %d log keys still in the main database", left, len(keys))
	}
	if err := s2.Sink().Commit(t.Context(), testBatch(pnum, 5, "b")); err != nil {
		t.Fatal(err)
	}
	seqs, _ := readLog(t, s2, pnum)
	if len(seqs) != 4 || seqs[3] != 3 {
		t.Fatalf("log after the move: %v, want 0 1 2 3", seqs)
	}
	if err := s2.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := countEvents(t, s2, pnum); n != 35 {
		t.Fatalf("%d events folded, want 35", n)
	}
}

// moveBack moves every key of from into to (as an earlier version kept
// them) and empties from; it returns the keys.
func moveBack(t *testing.T, from, to *badger.DB) [][]byte {
	t.Helper()
	var keys, vals [][]byte
	if err := from.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			keys, vals = append(keys, it.Item().KeyCopy(nil)), append(vals, v)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := to.Update(func(txn *badger.Txn) error {
		for i := range keys {
			if err := txn.Set(keys[i], vals[i]); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := from.DropAll(); err != nil {
		t.Fatal(err)
	}
	return keys
}

// keysIn counts how many of keys db holds.
func keysIn(db *badger.DB, keys [][]byte) int {
	n := 0
	db.View(func(txn *badger.Txn) error {
		for _, k := range keys {
			if _, err := txn.Get(k); err == nil {
				n++
			}
		}
		return nil
	})
	return n
}
