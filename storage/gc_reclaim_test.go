//go:build !race

// Badger v4.9.6's value-log GC reads the memtable's highest version
// without the lock its writer holds (DB.MaxVersion from valueLog.rewrite
// against memTable.Put), which the race detector reports whenever a
// rewrite starts during writes, as it does here by design. The read is of
// a monotonic uint64 that only bounds which versions compactions keep; the
// test runs without the race detector.

package storage

import (
	"path/filepath"
	"testing"
	"time"
)

// TestLogValueLogIsReclaimed: records folded and deleted leave their
// value-log files dead, and the log database's own GC deletes them while
// traffic goes on, without any operator setting: the log's disk (and the
// memory its mapped files take) does not grow with the traffic a node has
// taken. Badger counts a file's dead bytes when compactions drop the
// deleted records, after memtable flushes, so the bound is a few
// memtables' worth of records (each memtable holds about a thousand).
func TestLogValueLogIsReclaimed(t *testing.T) {
	dir := t.TempDir()
	off := false
	s := openTest(t, Options{Dir: dir, LogCompression: &off, logFileBytes: 1 << 20})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	logDir := filepath.Join(dir, "log")
	written, peak := 0, int64(0)
	deadline := time.Now().Add(30 * time.Second)
	for {
		b := testBatch(pnum, 20, "a", "b", "c")
		if err := s.Sink().Commit(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		for j := range b.Events {
			written += len(b.JSON(j))
		}
		n := vlogBytes(t, logDir)
		peak = max(peak, n)
		if written >= 96<<20 && n <= 16<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log value log at %d bytes (peak %d) after %d bytes written", n, peak, written)
		}
	}
	if peak < 3<<20 || peak > 40<<20 {
		t.Fatalf("value log peaked at %d bytes, want several 1 MiB files but far less than the %d written", peak, written)
	}
	if runs, rewrites := s.ValueLogGCStats(); rewrites == 0 {
		t.Fatalf("no value-log file collected (%d runs)", runs)
	}
}
