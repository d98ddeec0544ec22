package storage

import (
	"os"
	"path/filepath"
	"testing"

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
