package storage

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/uptimizr/edge/storage/ingestlog"
)

// segmentBytes returns the bytes of the segment files in dir.
func segmentBytes(t *testing.T, dir string) (n int64, files int) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".seg") {
			continue
		}
		if info, err := e.Info(); err == nil {
			n += info.Size()
			files++
		}
	}
	return n, files
}

// segmentFiles returns the segment file names of dir, in order.
func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".seg") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(out)
	return out
}

// storeWithLog opens a store in dir (aggregation off) with project "p" and
// commits records 10-event batches of session sess to its log.
func storeWithLog(t *testing.T, dir string, opts Options, records int, sess string) (*Store, uint32) {
	t.Helper()
	opts.Dir, opts.DisableAggregation = dir, true
	s := openTest(t, opts)
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	for i := 0; i < records; i++ {
		if err := s.Sink().Commit(t.Context(), testBatch(pnum, 10, sess)); err != nil {
			t.Fatal(err)
		}
	}
	return s, pnum
}

// captureLog returns a logger and what it has written so far.
func captureLog() (*slog.Logger, func() string) {
	var mu sync.Mutex
	var b bytes.Buffer
	lg := slog.New(slog.NewTextHandler(lockedWriter{&mu, &b}, nil))
	return lg, func() string {
		mu.Lock()
		defer mu.Unlock()
		return b.String()
	}
}

// TestIngestLogSegmentsAreReclaimed: folded records leave their segments
// with nothing to fold, and the segments are deleted while traffic goes on:
// the log's disk does not grow with the traffic a node has taken.
func TestIngestLogSegmentsAreReclaimed(t *testing.T) {
	dir := t.TempDir()
	off := false
	s := openTest(t, Options{Dir: dir, LogCompression: &off, logFileBytes: 1 << 20})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	logDir := filepath.Join(dir, ingestLogDir)
	written, peak, peakFiles := 0, int64(0), 0
	deadline := time.Now().Add(60 * time.Second)
	for written < 64<<20 {
		b := testBatch(pnum, 20, "a", "b", "c")
		if err := s.Sink().Commit(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		for j := range b.Events {
			written += len(b.JSON(j))
		}
		n, files := segmentBytes(t, logDir)
		peak, peakFiles = max(peak, n), max(peakFiles, files)
		if time.Now().After(deadline) {
			t.Fatalf("only %d bytes written in 60 s", written)
		}
	}
	if err := s.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	n, files := segmentBytes(t, logDir)
	if files != 1 || n > 1<<20+64<<10 {
		t.Fatalf("after folding everything: %d segments, %d bytes; want only the one being written", files, n)
	}
	if peakFiles < 2 || peak > 32<<20 {
		t.Fatalf("segments peaked at %d files, %d bytes for %d bytes of events: want several 1 MiB segments, far less than written", peakFiles, peak, written)
	}
	if lag := s.Aggregator().Stats().Lag; lag != 0 {
		t.Fatalf("lag %d after Sync", lag)
	}
}

// TestIngestLogTornTail: a last segment that ends in part of a frame (a
// crash in the middle of a write) is cut back to its last whole frame at
// open; the records before it are folded, the sequence goes on from the
// last one kept, and the next open finds nothing to cut.
func TestIngestLogTornTail(t *testing.T) {
	dir := t.TempDir()
	s, pnum := storeWithLog(t, dir, Options{}, 2, "a")
	last := func() string { segs := segmentFiles(t, filepath.Join(dir, ingestLogDir)); return segs[len(segs)-1] }
	seg := last()
	two := pathSize(t, seg)
	if err := s.Sink().Commit(t.Context(), testBatch(pnum, 10, "a")); err != nil {
		t.Fatal(err)
	}
	three := pathSize(t, seg)
	s.Close()
	if last() != seg || three <= two {
		t.Fatal("the three records are not in one segment")
	}
	// Cut the third record in half.
	if err := os.Truncate(seg, two+(three-two)/2); err != nil {
		t.Fatal(err)
	}
	lg, logged := captureLog()
	s2 := openTest(t, Options{Dir: dir, DisableAggregation: true, Logger: lg})
	if seqs, _ := readLog(t, s2, pnum); !slices.Equal(seqs, []uint64{0, 1}) {
		t.Fatalf("log after the torn write: %v, want 0 1", seqs)
	}
	if !strings.Contains(logged(), "torn frame") {
		t.Errorf("the cut was not logged: %s", logged())
	}
	if size := pathSize(t, seg); size != two {
		t.Fatalf("segment not cut back to its last whole frame: %d bytes, want %d", size, two)
	}
	if why := s2.Degraded(); why != "" {
		t.Fatalf("a torn last write made the store degraded: %q", why)
	}
	if err := s2.Sink().Commit(t.Context(), testBatch(pnum, 5, "b")); err != nil {
		t.Fatal(err)
	}
	if seqs, _ := readLog(t, s2, pnum); !slices.Equal(seqs, []uint64{0, 1, 2}) {
		t.Fatalf("log after a new commit: %v, want 0 1 2", seqs)
	}
	if err := s2.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := countEvents(t, s2, pnum); n != 25 {
		t.Fatalf("%d events folded, want 25 (two whole records and the new one)", n)
	}
	s2.Close()
	lg3, logged3 := captureLog()
	s3 := openTest(t, Options{Dir: dir, Logger: lg3})
	defer s3.Close()
	if strings.Contains(logged3(), "torn") {
		t.Fatalf("a clean log was cut again: %s", logged3())
	}
}

func pathSize(t *testing.T, path string) int64 {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestIngestLogCorruptSegment: a frame whose checksum fails (a damaged
// disk) in an older segment moves that segment aside, its bytes kept;
// the records in later segments are still folded, past the gap, which the
// aggregator logs; the store reports degraded, naming where the bytes are,
// until an operator deletes them.
func TestIngestLogCorruptSegment(t *testing.T) {
	dir := t.TempDir()
	s, pnum := storeWithLog(t, dir, Options{logFileBytes: 1}, 4, "a") // a segment per record
	s.Close()
	segs := segmentFiles(t, filepath.Join(dir, ingestLogDir))
	if len(segs) < 4 {
		t.Fatalf("%d segments, want one per record", len(segs))
	}
	// Damage record 1: one byte of its body.
	b, err := os.ReadFile(segs[1])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-3] ^= 0x55
	if err := os.WriteFile(segs[1], b, 0o600); err != nil {
		t.Fatal(err)
	}
	lg, logged := captureLog()
	s2 := openTest(t, Options{Dir: dir, DisableAggregation: true, Logger: lg})
	if seqs, _ := readLog(t, s2, pnum); !slices.Equal(seqs, []uint64{0, 2, 3}) {
		t.Fatalf("log after the damage: %v, want 0 2 3", seqs)
	}
	if err := s2.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := countEvents(t, s2, pnum); n != 30 {
		t.Fatalf("%d events folded, want 30 (the three good records)", n)
	}
	out := logged()
	for _, want := range []string{"segment is damaged", "ingest log records missing"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q: %s", want, out)
		}
	}
	damagedDir := filepath.Join(dir, ingestLogDir, ingestlog.DamagedDir)
	kept, err := os.ReadDir(damagedDir)
	if err != nil || len(kept) != 1 {
		t.Fatalf("damaged segments kept: %v %v, want one", kept, err)
	}
	if got, _ := os.ReadFile(filepath.Join(damagedDir, kept[0].Name())); !bytes.Equal(got, b) {
		t.Fatal("the damaged segment's bytes were not kept as they were")
	}
	if why := s2.Degraded(); !strings.Contains(why, "1 damaged ingest log segments") || !strings.Contains(why, damagedDir) {
		t.Fatalf("Degraded after the damage: %q", why)
	}
	if st := s2.LogStats(); st.Damaged != 1 {
		t.Fatalf("LogStats().Damaged = %d, want 1", st.Damaged)
	}
	if err := s2.Sink().Commit(t.Context(), testBatch(pnum, 1, "b")); err != nil {
		t.Fatal(err)
	}
	if seqs, _ := readLog(t, s2, pnum); !slices.Equal(seqs, []uint64{4}) {
		t.Fatalf("log after a new commit: %v, want 4", seqs)
	}
	s2.Close()
	// Still degraded after a restart, until the operator deletes them.
	s3 := openTest(t, Options{Dir: dir})
	if why := s3.Degraded(); why == "" {
		t.Fatal("a restart cleared the damage report")
	}
	s3.Close()
	if err := os.RemoveAll(damagedDir); err != nil {
		t.Fatal(err)
	}
	s4 := openTest(t, Options{Dir: dir})
	defer s4.Close()
	if why := s4.Degraded(); why != "" {
		t.Fatalf("degraded after the damaged segments were deleted: %q", why)
	}
}

// TestIngestLogReopenKeepsUnfolded: records not folded before a clean close
// are there after the next open, from several projects, in order, and the
// sequence of each project goes on from its last record; once folded and
// closed, the next open still goes on from the checkpoint.
func TestIngestLogReopenKeepsUnfolded(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir, DisableAggregation: true, logFileBytes: 4 << 10})
	var pnums []uint32
	for i := 0; i < 3; i++ {
		name := fmt.Sprint("p", i)
		s.Registry().CreateProject(name)
		pnums = append(pnums, s.Registry().Project(name).Num)
	}
	for i := 0; i < 30; i++ {
		if err := s.Sink().Commit(t.Context(), testBatch(pnums[i%3], 5, "a")); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s2 := openTest(t, Options{Dir: dir, logFileBytes: 4 << 10})
	for _, p := range pnums {
		seqs, events := readLog(t, s2, p)
		if len(seqs) != 10 || seqs[0] != 0 || seqs[9] != 9 || len(events) != 50 {
			t.Fatalf("project %d after reopen: seqs %v, %d events", p, seqs, len(events))
		}
	}
	if lag := s2.Aggregator().Stats().Lag; lag != 30 {
		t.Fatalf("lag %d at open, want the 30 records", lag)
	}
	if err := s2.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := s2.LogRecords(); n != 0 {
		t.Fatalf("%d records left after folding", n)
	}
	s2.Close()
	s3 := openTest(t, Options{Dir: dir})
	defer s3.Close()
	if err := s3.Sink().Commit(t.Context(), testBatch(pnums[1], 2, "z")); err != nil {
		t.Fatal(err)
	}
	if seqs := s3.ProjectLog(pnums[1]); !slices.Equal(seqs, []uint64{10}) {
		t.Fatalf("seq after everything was folded: %v, want 10", seqs)
	}
	if err := s3.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := countEvents(t, s3, pnums[1]); n != 52 {
		t.Fatalf("%d events of project %d, want 52", n, pnums[1])
	}
}

// TestOrphanProjectRecordsAreReclaimed: records of a project that is not in
// the registry (here the registry is lost: the main database is deleted)
// are never folded; once the grace period has passed they are dropped,
// their segments deleted, the drop logged with the project number and the
// count, and counted in the aggregator's statistics. Records of registered
// projects are folded as always, the lag goes back to zero, and a project
// created meanwhile does not take the lost project's number.
func TestOrphanProjectRecordsAreReclaimed(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir, DisableAggregation: true, logFileBytes: 4 << 10})
	s.Registry().CreateProject("lost")
	lost := s.Registry().Project("lost").Num
	for i := 0; i < 20; i++ {
		if err := s.Sink().Commit(t.Context(), testBatch(lost, 10, "a")); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if err := os.RemoveAll(filepath.Join(dir, "db")); err != nil {
		t.Fatal(err)
	}

	lg, logged := captureLog()
	s2 := openTest(t, Options{Dir: dir, Logger: lg, logFileBytes: 4 << 10, orphanGrace: 300 * time.Millisecond})
	s2.Registry().CreateProject("p")
	pnum := s2.Registry().Project("p").Num
	if pnum == lost {
		t.Fatalf("a new project took number %d, whose records are still in the log", lost)
	}
	for i := 0; i < 10; i++ {
		if err := s2.Sink().Commit(t.Context(), testBatch(pnum, 10, "b")); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for s2.Aggregator().Stats().Orphaned == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("orphan records never dropped; log holds %d records", s2.LogRecords())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s2.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	st := s2.Aggregator().Stats()
	if st.Orphaned != 20 || st.Lag != 0 {
		t.Fatalf("stats %+v: want 20 orphan records dropped and no lag", st)
	}
	if n := s2.LogRecords(); n != 0 {
		t.Fatalf("%d records left in the log", n)
	}
	if n := countEvents(t, s2, pnum); n != 100 {
		t.Fatalf("%d events of the registered project folded, want 100", n)
	}
	if n := countEvents(t, s2, lost); n != 0 {
		t.Fatalf("%d events of the lost project folded", n)
	}
	if _, files := segmentBytes(t, filepath.Join(dir, ingestLogDir)); files != 1 {
		t.Fatalf("%d segments left, want only the one being written", files)
	}
	out := logged()
	want := fmt.Sprintf("project_num=%d records=20", lost)
	if !strings.Contains(out, want) || !strings.Contains(out, "dropped the ingest log records of a project not in the registry") {
		t.Fatalf("the drop was not logged with %q: %s", want, out)
	}
}

// TestOrphanRecordsKeptWithinGrace: within the grace period the records of
// an unknown project stay in the log (a registry put back in time finds
// them), across a reopen too.
func TestOrphanRecordsKeptWithinGrace(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir, DisableAggregation: true})
	for i := 0; i < 5; i++ {
		if err := s.Sink().Commit(t.Context(), testBatch(77, 3, "a")); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	for i := 0; i < 2; i++ {
		s2 := openTest(t, Options{Dir: dir, orphanGrace: time.Hour})
		for j := 0; j < 3; j++ {
			if err := s2.Aggregator().Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if n, st := s2.LogRecords(), s2.Aggregator().Stats(); n != 5 || st.Orphaned != 0 {
			t.Fatalf("within the grace: %d records, stats %+v; want the 5 kept", n, st)
		}
		s2.Close()
	}
}

// TestIngestLogFullDisk: on a real full filesystem the log's write gets
// ENOSPC (the log is written with write(2), not through a mapping): the
// group fails with nothing of it indexed, the segment is cut back to its
// last whole frame, and with room the log goes on in the same segment; a
// reopen finds exactly the acknowledged records.
func TestIngestLogFullDisk(t *testing.T) {
	dir := mountTmpfs(t, 2<<20)
	o := ingestlog.Options{Dir: dir, SegmentMax: 64 << 20}
	l, err := ingestlog.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	rec := bytes.Repeat([]byte("r"), 16<<10)
	var seq uint64
	var full error
	size := int64(0)
	for ; seq < 1000; seq++ {
		if full = l.Append([]ingestlog.Append{{Project: 1, Seq: seq, Rec: rec}, {Project: 2, Seq: seq, Rec: rec}}); full != nil {
			break
		}
		size = pathSize(t, segmentFiles(t, dir)[0])
	}
	if !errors.Is(full, syscall.ENOSPC) {
		t.Fatalf("append on a full tmpfs: %v, want ENOSPC", full)
	}
	if last, _ := l.LastSeq(1); last != seq-1 {
		t.Fatalf("last indexed seq %d, want %d: the failed group was indexed", last, seq-1)
	}
	segs := segmentFiles(t, dir)
	if len(segs) != 1 || pathSize(t, segs[0]) != size {
		t.Fatalf("segments after the failed write: %v, want the one, cut back to %d bytes", segs, size)
	}
	// The cut back gave the failed write's pages back: a small record fits,
	// in the same segment.
	if err := l.Append([]ingestlog.Append{{Project: 1, Seq: seq, Rec: []byte("small")}}); err != nil {
		t.Fatalf("append once there is room: %v", err)
	}
	if segs := segmentFiles(t, dir); len(segs) != 1 {
		t.Fatalf("segments after a write that could be cut back: %v, want the same one", segs)
	}
	l.Close()
	l2, err := ingestlog.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if n := l2.Count(1); uint64(n) != seq+1 {
		t.Fatalf("project 1 after reopen: %d records, want %d", n, seq+1)
	}
	if n := l2.Count(2); uint64(n) != seq {
		t.Fatalf("project 2 after reopen: %d records, want %d", n, seq)
	}
}

// TestStoreDegradedAfterFailedSync: Store.Degraded is empty until an
// fdatasync of the log fails, then names the failures until the store is
// opened again.
func TestStoreDegradedAfterFailedSync(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, SyncWrites: true, logFS: &faultFS{}})
	if err != nil {
		t.Fatal(err)
	}
	if why := s.Degraded(); why != "" {
		t.Fatalf("a fresh store is degraded: %q", why)
	}
	s.opts.logFS.(*faultFS).failSyncs(syscall.EIO)
	if err := s.ilog.Append([]ingestlog.Append{{Project: 1, Seq: 0, Rec: []byte("x")}}); err == nil {
		t.Fatal("append with a failing fdatasync succeeded")
	}
	why := s.Degraded()
	if !strings.Contains(why, "1 fdatasync failures") || !strings.Contains(why, "check the disk") {
		t.Fatalf("Degraded after a failed fdatasync: %q", why)
	}
	s.Close()
	s2, err := Open(Options{Dir: dir, SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if why := s2.Degraded(); why != "" {
		t.Fatalf("a reopened store is degraded: %q", why)
	}
}

// faultFS is the OS's file system with failures on demand: every test
// store's ingest log goes through one (openTest).
type faultFS struct {
	ingestlog.OS
	failWrite, failSync atomic.Pointer[func() error]
}

// failWrites makes writes fail with the errors next returns (nil: the
// write goes through).
func (f *faultFS) failWrites(next func() error) { f.failWrite.Store(&next) }

// failSyncs makes every fdatasync fail with err.
func (f *faultFS) failSyncs(err error) {
	fn := func() error { return err }
	f.failSync.Store(&fn)
}

func (f *faultFS) Create(name string) (ingestlog.File, error) {
	file, err := f.OS.Create(name)
	if err != nil {
		return nil, err
	}
	return faultFile{file, f}, nil
}

type faultFile struct {
	ingestlog.File
	fs *faultFS
}

func (f faultFile) WriteAt(p []byte, off int64) (int, error) {
	if fn := f.fs.failWrite.Load(); fn != nil {
		if err := (*fn)(); err != nil {
			return 0, err
		}
	}
	return f.File.WriteAt(p, off)
}

func (f faultFile) Sync() error {
	if fn := f.fs.failSync.Load(); fn != nil {
		if err := (*fn)(); err != nil {
			return err
		}
	}
	return f.File.Sync()
}
