package storage

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// segmentBytes returns the bytes of the segment files in dir.
func segmentBytes(t *testing.T, dir string) (n int64, files int) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), segmentSuffix) {
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
		if strings.HasSuffix(e.Name(), segmentSuffix) {
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

// TestIngestLogTornTail: a segment that ends in part of a frame (a crash
// in the middle of a write) is cut back to its last whole frame at open;
// the records before it are folded, the sequence goes on from the last
// one kept, and the next open finds nothing to cut.
func TestIngestLogTornTail(t *testing.T) {
	dir := t.TempDir()
	s, pnum := storeWithLog(t, dir, Options{}, 3, "a")
	s.Close()
	segs := segmentFiles(t, filepath.Join(dir, ingestLogDir))
	last := segs[len(segs)-1]
	b, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	// Cut the third record in half.
	ents := framesOf(t, b)
	if len(ents) != 3 {
		t.Fatalf("%d frames in the segment, want 3", len(ents))
	}
	cut := ents[2] + (len(b)-ents[2])/2
	if err := os.WriteFile(last, b[:cut], 0o600); err != nil {
		t.Fatal(err)
	}
	lg, logged := captureLog()
	s2 := openTest(t, Options{Dir: dir, DisableAggregation: true, Logger: lg})
	if seqs, _ := readLog(t, s2, pnum); !slices.Equal(seqs, []uint64{0, 1}) {
		t.Fatalf("log after the torn write: %v, want 0 1", seqs)
	}
	if !strings.Contains(logged(), "torn or corrupt frame") {
		t.Errorf("the cut was not logged: %s", logged())
	}
	if info, err := os.Stat(last); err != nil || info.Size() != int64(ents[2]) {
		t.Fatalf("segment not cut back to its last whole frame: %v %v (want %d bytes)", info.Size(), err, ents[2])
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

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// framesOf returns the offsets of the frames of segment b.
func framesOf(t *testing.T, b []byte) []int {
	t.Helper()
	if !bytes.HasPrefix(b, []byte(segmentMagic)) {
		t.Fatal("segment without its magic")
	}
	var offs []int
	for off := len(segmentMagic); off < len(b); {
		_, _, rec, ok := parseFrame(b[off:])
		if !ok {
			t.Fatalf("bad frame at %d", off)
		}
		offs = append(offs, off)
		off += frameHeader + len(rec)
	}
	return offs
}

// TestIngestLogCorruptSegment: a frame whose checksum fails (a damaged
// disk) ends its segment; the records in later segments are still folded,
// past the gap, which the aggregator logs.
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
	for _, want := range []string{"torn or corrupt frame", "ingest log records missing"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q: %s", want, out)
		}
	}
	if err := s2.Sink().Commit(t.Context(), testBatch(pnum, 1, "b")); err != nil {
		t.Fatal(err)
	}
	if seqs, _ := readLog(t, s2, pnum); !slices.Equal(seqs, []uint64{4}) {
		t.Fatalf("log after a new commit: %v, want 4", seqs)
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

// FuzzIngestLogSegment: any bytes in a segment file open without a panic;
// what is indexed reads back whole, and the file is cut back to it.
func FuzzIngestLogSegment(f *testing.F) {
	f.Add([]byte(segmentMagic))
	f.Add(appendFrame([]byte(segmentMagic), 1, 0, []byte("record")))
	two := appendFrame(appendFrame([]byte(segmentMagic), 1, 0, []byte("a")), 2, 7, bytes.Repeat([]byte("b"), 300))
	f.Add(two)
	f.Add(two[:len(two)-1])
	f.Add(append(bytes.Clone(two), 0xff, 0xff, 0xff, 0xff))
	f.Add([]byte("UEILOG1\n\xff\xff\xff\xff\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(1)), data, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := openIngestLog(dir, 1<<20, false, false, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer l.close()
		for pnum, p := range l.projs {
			for _, e := range p.pending() {
				if _, _, err := l.read(nil, pnum, e); err != nil {
					t.Fatalf("indexed record %d of %d does not read back: %v", e.seq, pnum, err)
				}
			}
		}
		if l.records() > 0 {
			if info, err := os.Stat(filepath.Join(dir, segmentName(1))); err != nil || info.Size() > int64(len(data)) {
				t.Fatalf("segment after open: %v %v", info, err)
			}
		}
		want := uint64(0)
		if last, ok := l.lastSeq(9); ok {
			if last == math.MaxUint64 {
				return
			}
			want = last + 1
		}
		if err := l.append([]logAppend{{pnum: 9, seq: want, rec: []byte("after")}}); err != nil {
			t.Fatal(err)
		}
		if seq, ok := l.lastSeq(9); !ok || seq != want {
			t.Fatalf("appended record not indexed: %d %v, want %d", seq, ok, want)
		}
	})
}

// TestIngestLogFailedWrite: a group whose write fails is not indexed, the
// caller gets the error, and the log goes on: when the failed write cannot
// be cut back either, the next group starts a new segment, and everything
// acknowledged before and after reads back, also after a reopen.
func TestIngestLogFailedWrite(t *testing.T) {
	dir := t.TempDir()
	lg := slog.New(slog.DiscardHandler)
	l, err := openIngestLog(dir, 1<<20, false, false, lg)
	if err != nil {
		t.Fatal(err)
	}
	rec := bytes.Repeat([]byte("r"), 100)
	if err := l.append([]logAppend{{pnum: 1, seq: 0, rec: rec}}); err != nil {
		t.Fatal(err)
	}
	// Swap the segment's file for a read-only handle on it: the next write
	// fails, and so does cutting it back.
	good := l.cur.f
	ro, err := os.Open(l.cur.path)
	if err != nil {
		t.Fatal(err)
	}
	l.cur.f = ro
	if err := l.append([]logAppend{{pnum: 1, seq: 1, rec: rec}, {pnum: 2, seq: 0, rec: rec}}); err == nil {
		t.Fatal("a write through a read-only file did not fail")
	}
	good.Close()
	if seq, _ := l.lastSeq(1); seq != 0 {
		t.Fatalf("a failed group was indexed: last seq of project 1 is %d", seq)
	}
	if _, ok := l.lastSeq(2); ok {
		t.Fatal("a failed group was indexed for project 2")
	}
	if !l.broken {
		t.Fatal("the log did not note that the failed write could not be cut back")
	}
	first := l.cur.id
	if err := l.append([]logAppend{{pnum: 1, seq: 1, rec: rec}}); err != nil {
		t.Fatal(err)
	}
	if l.cur.id == first {
		t.Fatal("the log went on writing the segment whose write failed")
	}
	l.close()
	l2, err := openIngestLog(dir, 1<<20, false, false, lg)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.close()
	var seqs []uint64
	for _, e := range l2.pending(nil, 1, 0, 10) {
		if _, _, err := l2.read(nil, 1, e); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, e.seq)
	}
	if !slices.Equal(seqs, []uint64{0, 1}) {
		t.Fatalf("project 1 after reopen: %v, want 0 1", seqs)
	}
	if _, ok := l2.lastSeq(2); ok {
		t.Fatal("the failed group came back at reopen")
	}
}

// TestIngestLogReadOnly: a read-only open (the CLI's listings) indexes the
// log without changing it: no segment is created, cut back or deleted.
func TestIngestLogReadOnly(t *testing.T) {
	dir := t.TempDir()
	lg := slog.New(slog.DiscardHandler)
	l, err := openIngestLog(dir, 1<<20, false, false, lg)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.append([]logAppend{{pnum: 1, seq: 0, rec: []byte("a")}, {pnum: 1, seq: 1, rec: []byte("b")}}); err != nil {
		t.Fatal(err)
	}
	path := l.cur.path
	l.close()
	b, _ := os.ReadFile(path)
	torn := append(bytes.Clone(b), 1, 2, 3) // a torn frame
	if err := os.WriteFile(path, torn, 0o600); err != nil {
		t.Fatal(err)
	}
	before := segmentFiles(t, dir)
	ro, err := openIngestLog(dir, 1<<20, false, true, lg)
	if err != nil {
		t.Fatal(err)
	}
	if n := ro.records(); n != 2 {
		t.Fatalf("read-only open indexed %d records, want 2", n)
	}
	ro.drop(1, 2)
	ro.removeDead()
	if err := ro.append([]logAppend{{pnum: 1, seq: 2, rec: []byte("c")}}); err == nil {
		t.Fatal("a read-only log took an append")
	}
	ro.close()
	if after := segmentFiles(t, dir); !slices.Equal(after, before) {
		t.Fatalf("segments %v after a read-only open, want %v", after, before)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, torn) {
		t.Fatal("a read-only open changed a segment")
	}
	if _, err := openIngestLog(filepath.Join(dir, "missing"), 1<<20, false, true, lg); err != nil {
		t.Fatalf("read-only open of a data dir without a log: %v", err)
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
// last whole frame, and with room the log goes on; a reopen finds exactly
// the acknowledged records.
func TestIngestLogFullDisk(t *testing.T) {
	dir := mountTmpfs(t, 2<<20)
	l, err := openIngestLog(dir, 64<<20, false, false, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	rec := bytes.Repeat([]byte("r"), 16<<10)
	var seq uint64
	var full error
	for ; seq < 1000; seq++ {
		if full = l.append([]logAppend{{pnum: 1, seq: seq, rec: rec}, {pnum: 2, seq: seq, rec: rec}}); full != nil {
			break
		}
	}
	if !errors.Is(full, syscall.ENOSPC) {
		t.Fatalf("append on a full tmpfs: %v, want ENOSPC", full)
	}
	if last, _ := l.lastSeq(1); last != seq-1 {
		t.Fatalf("last indexed seq %d, want %d: the failed group was indexed", last, seq-1)
	}
	if l.broken {
		t.Fatal("the cut back after ENOSPC failed")
	}
	want := int64(len(segmentMagic)) + int64(seq)*2*int64(frameHeader+len(rec))
	if info, err := os.Stat(l.cur.path); err != nil || info.Size() != want {
		t.Fatalf("segment after the failed write: %v %v, want %d bytes", info.Size(), err, want)
	}
	// The cut back gave the failed write's pages back: a small record fits.
	if err := l.append([]logAppend{{pnum: 1, seq: seq, rec: []byte("small")}}); err != nil {
		t.Fatalf("append once there is room: %v", err)
	}
	l.close()
	l2, err := openIngestLog(dir, 64<<20, false, false, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer l2.close()
	if n := len(l2.pending(nil, 1, 0, 1<<20)); uint64(n) != seq+1 {
		t.Fatalf("project 1 after reopen: %d records, want %d", n, seq+1)
	}
	if n := len(l2.pending(nil, 2, 0, 1<<20)); uint64(n) != seq {
		t.Fatalf("project 2 after reopen: %d records, want %d", n, seq)
	}
}

// TestIngestLogFailedSyncAbandonsSegment: with sync on, a group whose
// fdatasync fails is refused and not indexed, its bytes are cut from the
// segment, and the segment is abandoned: the next group goes to a new one,
// the failure is counted (Store.Degraded reads it), and after a reopen the
// log holds exactly the acknowledged records.
func TestIngestLogFailedSyncAbandonsSegment(t *testing.T) {
	dir := t.TempDir()
	lg := slog.New(slog.DiscardHandler)
	l, err := openIngestLog(dir, 1<<20, true, false, lg)
	if err != nil {
		t.Fatal(err)
	}
	rec := bytes.Repeat([]byte("r"), 100)
	if err := l.append([]logAppend{{pnum: 1, seq: 0, rec: rec}}); err != nil {
		t.Fatal(err)
	}
	first, sizeBefore := l.cur.id, l.cur.size
	l.failSync = func() error { return syscall.EIO }
	err = l.append([]logAppend{{pnum: 1, seq: 1, rec: rec}, {pnum: 2, seq: 0, rec: rec}})
	if !errors.Is(err, errLogSync) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("append with a failing fdatasync: %v, want errLogSync wrapping EIO", err)
	}
	l.failSync = nil
	if seq, _ := l.lastSeq(1); seq != 0 {
		t.Fatalf("the refused group was indexed: last seq of project 1 is %d", seq)
	}
	if _, ok := l.lastSeq(2); ok {
		t.Fatal("the refused group was indexed for project 2")
	}
	if info, err := os.Stat(filepath.Join(dir, segmentName(first))); err != nil || info.Size() != sizeBefore {
		t.Fatalf("abandoned segment: %v bytes (%v), want %d: the refused group's bytes were not cut", info.Size(), err, sizeBefore)
	}
	if n := l.syncFailures.Load(); n != 1 {
		t.Fatalf("%d sync failures counted, want 1", n)
	}
	if err := l.append([]logAppend{{pnum: 1, seq: 1, rec: rec}}); err != nil {
		t.Fatal(err)
	}
	if l.cur.id == first {
		t.Fatal("the log went on writing the segment whose fdatasync failed")
	}
	if info, _ := os.Stat(filepath.Join(dir, segmentName(first))); info.Size() != sizeBefore {
		t.Fatalf("the abandoned segment was written again: %d bytes, want %d", info.Size(), sizeBefore)
	}
	l.close()
	l2, err := openIngestLog(dir, 1<<20, true, false, lg)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.close()
	if seq, ok := l2.lastSeq(1); !ok || seq != 1 || l2.count(1) != 2 {
		t.Fatalf("after reopen: project 1 last seq %d (%v), %d records; want 1, 2 records", seq, ok, l2.count(1))
	}
	if _, ok := l2.lastSeq(2); ok {
		t.Fatal("after reopen: the refused group's record of project 2 is in the log")
	}
	if n := l2.syncFailures.Load(); n != 0 {
		t.Fatalf("a reopened log starts with %d sync failures, want 0", n)
	}
}

// TestStoreDegradedAfterFailedSync: Store.Degraded is empty until an
// fdatasync of the log fails, then names the failures until the store is
// opened again.
func TestStoreDegradedAfterFailedSync(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	if why := s.Degraded(); why != "" {
		t.Fatalf("a fresh store is degraded: %q", why)
	}
	s.ilog.failSync = func() error { return syscall.EIO }
	if err := s.ilog.append([]logAppend{{pnum: 1, seq: 0, rec: []byte("x")}}); err == nil {
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
