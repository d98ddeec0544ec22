package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
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
// checkpoint are committed before the folded records leave the ingest log;
// records left by a crash in between sit below the checkpoint, and the next
// pass drops them without counting them again.
func TestFoldedRecordLeftInTheLogIsNotFoldedAgain(t *testing.T) {
	dir := t.TempDir()
	s, pnum := storeWithLog(t, dir, Options{}, 3, "a")
	// Keep the log's segments as the crash would have left them.
	logDir := filepath.Join(dir, ingestLogDir)
	saved := t.TempDir()
	copyDir(t, logDir, saved)
	if err := s.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := countEvents(t, s, pnum); n != 30 {
		t.Fatalf("%d events counted, want 30", n)
	}
	if seqs, _ := readLog(t, s, pnum); len(seqs) != 0 {
		t.Fatalf("log records left after folding: %v", seqs)
	}
	s.Close()
	if err := os.RemoveAll(logDir); err != nil {
		t.Fatal(err)
	}
	copyDir(t, saved, logDir)
	s2 := openTest(t, Options{Dir: dir, DisableAggregation: true})
	if seqs, _ := readLog(t, s2, pnum); len(seqs) != 3 {
		t.Fatalf("the restored log holds %v, want the three folded records", seqs)
	}
	if err := s2.Sink().Commit(t.Context(), testBatch(pnum, 10, "c")); err != nil {
		t.Fatal(err)
	}
	if seqs, _ := readLog(t, s2, pnum); len(seqs) != 4 || seqs[3] != 3 {
		t.Fatalf("log after a new commit: %v, want 0 1 2 3", seqs)
	}
	if err := s2.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := countEvents(t, s2, pnum); n != 40 {
		t.Fatalf("%d events counted after the leftover records, want 40 (30 + 10 new)", n)
	}
	if seqs, _ := readLog(t, s2, pnum); len(seqs) != 0 {
		t.Fatalf("the leftover records were not dropped: %v", seqs)
	}
	if lag := s2.Aggregator().Stats().Lag; lag != 0 {
		t.Fatalf("lag %d after folding everything", lag)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
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

// legacyLog returns project pnum's log records and its sequence counter as
// keys and values of an earlier version's Badger layout, and empties the
// segment log (the store must be closed after).
func legacyLog(t *testing.T, s *Store, pnum uint32) (keys, vals [][]byte) {
	t.Helper()
	var next uint64
	for _, e := range s.ilog.pending(nil, pnum, 0, 1<<30) {
		rec, _, err := s.ilog.read(nil, pnum, e)
		if err != nil {
			t.Fatal(err)
		}
		k := binary.BigEndian.AppendUint32([]byte{nsLog}, pnum)
		keys = append(keys, binary.BigEndian.AppendUint64(k, e.seq))
		vals = append(vals, bytes.Clone(rec))
		next = e.seq + 1
	}
	keys = append(keys, binary.BigEndian.AppendUint32([]byte{nsLogSeq}, pnum))
	vals = append(vals, binary.BigEndian.AppendUint64(nil, next))
	return keys, vals
}

func putKeys(t *testing.T, db *badger.DB, keys, vals [][]byte) {
	t.Helper()
	if err := db.Update(func(txn *badger.Txn) error {
		for i := range keys {
			if err := txn.Set(keys[i], vals[i]); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestLogMovesToSegments: a data dir whose ingest log lives in Badger, in
// the main database or in DATA_DIR/log (as earlier versions kept it), has
// its records moved to the segment log at open; nothing is folded twice or
// lost, the sequence goes on where it was, and the old keys and database
// are gone. A move cut short (the records already in the segments and
// still in the old place) imports nothing twice.
func TestLogMovesToSegments(t *testing.T) {
	for _, from := range []string{"main", "logdb", "logdb-twice"} {
		t.Run(from, func(t *testing.T) {
			dir := t.TempDir()
			s, pnum := storeWithLog(t, dir, Options{}, 3, "a")
			keys, vals := legacyLog(t, s, pnum)
			if len(keys) != 4 { // three records and the counter
				t.Fatalf("%d legacy keys, want 4", len(keys))
			}
			if from == "main" {
				putKeys(t, s.DB(), keys, vals)
			}
			s.Close()
			if from != "logdb-twice" {
				if err := os.RemoveAll(filepath.Join(dir, ingestLogDir)); err != nil {
					t.Fatal(err)
				}
			}
			if from != "main" {
				ldb, err := badger.Open(badger.DefaultOptions(filepath.Join(dir, "log")).WithLogger(nil).WithValueThreshold(64))
				if err != nil {
					t.Fatal(err)
				}
				putKeys(t, ldb, keys, vals)
				if err := ldb.Close(); err != nil {
					t.Fatal(err)
				}
			}

			s2 := openTest(t, Options{Dir: dir, DisableAggregation: true})
			if left := keysIn(s2.DB(), keys); left != 0 {
				t.Fatalf("%d of %d log keys still in the main database", left, len(keys))
			}
			if _, err := os.Stat(filepath.Join(dir, "log")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the old log database is still there: %v", err)
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
		})
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
