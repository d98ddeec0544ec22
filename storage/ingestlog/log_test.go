package ingestlog

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"syscall"
	"testing"
)

// failOn makes c refuse the next events of kind with errno, n times (-1:
// until cleared).
func failOn(c *crashFS, kind evKind, errno error, n int) {
	c.fail = func(ev fsEvent) error {
		if ev.kind != kind || n == 0 {
			return nil
		}
		n--
		return errno
	}
}

func mustOpen(t *testing.T, o Options) *Log {
	t.Helper()
	if o.Dir == "" {
		o.Dir = "/log"
	}
	l, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func seqsOf(t *testing.T, l *Log, pnum uint32) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, e := range l.Pending(nil, pnum, 0, math.MaxInt) {
		rec, _, err := l.Read(nil, pnum, e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rec, recordBytes(pnum, e.Seq)) {
			t.Fatalf("record %d/%d holds other bytes", pnum, e.Seq)
		}
		seqs = append(seqs, e.Seq)
	}
	return seqs
}

func rec(pnum uint32, seq uint64) Append {
	return Append{Project: pnum, Seq: seq, Rec: recordBytes(pnum, seq)}
}

// TestFailedWrite: a group whose write fails is not indexed, the caller
// gets the error, and the log goes on: when the failed write cannot be cut
// back either, the next group starts a new segment, and everything
// acknowledged before and after reads back, also after a reopen.
func TestFailedWrite(t *testing.T) {
	c := newCrashFS()
	l := mustOpen(t, Options{FS: c})
	if err := l.Append([]Append{rec(1, 0)}); err != nil {
		t.Fatal(err)
	}
	first := l.cur.id
	c.fail = func(ev fsEvent) error {
		if ev.kind == evWrite || ev.kind == evTrunc {
			return syscall.EIO
		}
		return nil
	}
	if err := l.Append([]Append{rec(1, 1), rec(2, 0)}); !errors.Is(err, syscall.EIO) {
		t.Fatalf("append with a failing write: %v, want EIO", err)
	}
	c.fail = nil
	if seq, _ := l.LastSeq(1); seq != 0 {
		t.Fatalf("a failed group was indexed: last seq of project 1 is %d", seq)
	}
	if _, ok := l.LastSeq(2); ok {
		t.Fatal("a failed group was indexed for project 2")
	}
	if err := l.Append([]Append{rec(1, 1)}); err != nil {
		t.Fatal(err)
	}
	if l.cur.id == first {
		t.Fatal("the log went on writing the segment whose write failed and could not be cut back")
	}
	l.Close()
	l2 := mustOpen(t, Options{FS: c})
	defer l2.Close()
	if seqs := seqsOf(t, l2, 1); !slices.Equal(seqs, []uint64{0, 1}) {
		t.Fatalf("project 1 after reopen: %v, want 0 1", seqs)
	}
	if _, ok := l2.LastSeq(2); ok {
		t.Fatal("the failed group came back at reopen")
	}
}

// TestFailedSyncAbandonsSegment: with Sync, a group whose fdatasync fails
// is refused and not indexed, its bytes are cut from the segment, and the
// segment is abandoned: the next group goes to a new one, the failure is
// counted, and after a reopen the log holds exactly the acknowledged
// records.
func TestFailedSyncAbandonsSegment(t *testing.T) {
	c := newCrashFS()
	l := mustOpen(t, Options{FS: c, Sync: true})
	if err := l.Append([]Append{rec(1, 0)}); err != nil {
		t.Fatal(err)
	}
	first, sizeBefore := l.cur, l.cur.size
	failOn(c, evSync, syscall.EIO, 1)
	err := l.Append([]Append{rec(1, 1), rec(2, 0)})
	if !errors.Is(err, ErrSync) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("append with a failing fdatasync: %v, want ErrSync wrapping EIO", err)
	}
	if seq, _ := l.LastSeq(1); seq != 0 {
		t.Fatalf("the refused group was indexed: last seq of project 1 is %d", seq)
	}
	if _, ok := l.LastSeq(2); ok {
		t.Fatal("the refused group was indexed for project 2")
	}
	if b := c.files()[first.path]; int64(len(b)) != sizeBefore {
		t.Fatalf("abandoned segment: %d bytes, want %d: the refused group's bytes were not cut", len(b), sizeBefore)
	}
	if n := l.Stats().SyncFailures; n != 1 {
		t.Fatalf("%d sync failures counted, want 1", n)
	}
	if err := l.Append([]Append{rec(1, 1)}); err != nil {
		t.Fatal(err)
	}
	if l.cur == first {
		t.Fatal("the log went on writing the segment whose fdatasync failed")
	}
	if b := c.files()[first.path]; int64(len(b)) != sizeBefore {
		t.Fatalf("the abandoned segment was written again: %d bytes, want %d", len(b), sizeBefore)
	}
	l.Close()
	l2 := mustOpen(t, Options{FS: c, Sync: true})
	defer l2.Close()
	if seqs := seqsOf(t, l2, 1); !slices.Equal(seqs, []uint64{0, 1}) {
		t.Fatalf("after reopen: project 1 holds %v, want 0 1", seqs)
	}
	if _, ok := l2.LastSeq(2); ok {
		t.Fatal("after reopen: the refused group's record of project 2 is in the log")
	}
	if n := l2.Stats().SyncFailures; n != 0 {
		t.Fatalf("a reopened log starts with %d sync failures, want 0", n)
	}
}

// TestReadOnly: a read-only open (the CLI's listings) indexes the log
// without changing it: nothing is created, cut back, moved or deleted.
func TestReadOnly(t *testing.T) {
	c := newCrashFS()
	l := mustOpen(t, Options{FS: c, SegmentMax: 300})
	for seq := range uint64(12) {
		if err := l.Append([]Append{rec(1, seq)}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	img := c.files()
	segs := segmentPaths(img)
	img[segs[0]][len(segmentMagic)+9] ^= 1                           // damage in an older segment
	img[segs[len(segs)-2]] = append(img[segs[len(segs)-2]], 1, 2, 3) // a torn end
	ro := crashFSFrom(img)
	l2 := mustOpen(t, Options{FS: ro, ReadOnly: true, Readers: []string{fwd}})
	if n := l2.Records(); n != 11 {
		t.Fatalf("read-only open indexed %d records, want 11 (one damaged)", n)
	}
	l2.Drop(1, 12)
	l2.RemoveDead()
	if err := l2.Append([]Append{rec(1, 12)}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("a read-only log took an append: %v", err)
	}
	if err := l2.Reader(fwd).Commit(); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("a read-only log took a checkpoint: %v", err)
	}
	l2.Close()
	if len(ro.events) != 0 {
		t.Fatalf("a read-only open changed the disk: %v", ro.events)
	}
	if _, err := Open(Options{Dir: "/missing", FS: newCrashFS(), ReadOnly: true}); err != nil {
		t.Fatalf("read-only open of a data dir without a log: %v", err)
	}
}

// TestReaderHoldsSegments: a segment goes only when the primary and every
// reader are past all of it; a reader's position survives a reopen, and a
// reader the log is opened without holds nothing.
func TestReaderHoldsSegments(t *testing.T) {
	c := newCrashFS()
	o := Options{FS: c, SegmentMax: 300, Sync: true, Readers: []string{fwd}}
	l := mustOpen(t, o)
	for seq := range uint64(20) {
		if err := l.Append([]Append{rec(1, seq)}); err != nil {
			t.Fatal(err)
		}
	}
	segsBefore := l.Stats().Segments
	l.Drop(1, 20) // the primary is past everything
	l.RemoveDead()
	if n := l.Records(); n != 20 {
		t.Fatalf("%d records after the primary's drop; want all 20, held by the reader", n)
	}
	r := l.Reader(fwd)
	ents := r.Pending(nil, 1, 8)
	if len(ents) != 8 || ents[0].Seq != 0 {
		t.Fatalf("the reader's first read: %d records from %d", len(ents), ents[0].Seq)
	}
	r.Advance(1, 8)
	if n := l.Records(); n != 20 {
		t.Fatalf("%d records after an Advance without Commit, want 20", n)
	}
	if err := r.Commit(); err != nil {
		t.Fatal(err)
	}
	l.RemoveDead()
	if n := l.Records(); n != 12 {
		t.Fatalf("%d records after the reader's commit, want 12", n)
	}
	if segs := l.Stats().Segments; segs >= segsBefore {
		t.Fatalf("%d segments after both are past the first 8 records, %d before", segs, segsBefore)
	}
	if got := r.Projects(nil); !slices.Equal(got, []uint32{1}) {
		t.Fatalf("reader's projects: %v", got)
	}
	l.Close()

	l2 := mustOpen(t, o)
	if next := l2.Reader(fwd).Next(1); next != 8 {
		t.Fatalf("the reader's position after reopen: %d, want 8", next)
	}
	l2.Close()
	// Opened without the reader, the log lets go of what the primary is past.
	l3 := mustOpen(t, Options{FS: c, SegmentMax: 300, Sync: true})
	defer l3.Close()
	l3.Drop(1, 20)
	l3.RemoveDead()
	if n := l3.Records(); n != 0 {
		t.Fatalf("%d records held by a reader not opened", n)
	}
}

// TestReaderCheckpointDamaged: a checkpoint file that does not check out
// is read as none (the reader starts from the oldest record: some are sent
// again, none lost), loudly.
func TestReaderCheckpointDamaged(t *testing.T) {
	c := newCrashFS()
	o := Options{FS: c, Sync: true, Readers: []string{fwd}}
	l := mustOpen(t, o)
	for seq := range uint64(5) {
		if err := l.Append([]Append{rec(1, seq)}); err != nil {
			t.Fatal(err)
		}
	}
	l.Reader(fwd).Advance(1, 3)
	if err := l.Reader(fwd).Commit(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	img := c.files()
	ck := "/log/" + ReadersDir + "/" + fwd
	if pos, ok := parseCheckpoint(img[ck]); !ok || pos[1] != 3 {
		t.Fatalf("checkpoint file: %v %v", pos, ok)
	}
	img[ck][len(readerMagic)+5] ^= 0xff
	var out logBuf
	o.FS = crashFSFrom(img)
	o.Logger = newTextLogger(&out)
	l2 := mustOpen(t, o)
	defer l2.Close()
	if next := l2.Reader(fwd).Next(1); next != 0 {
		t.Fatalf("reader at %d after a damaged checkpoint, want 0", next)
	}
	if len(l2.Reader(fwd).Pending(nil, 1, 10)) != 5 {
		t.Fatal("the reader does not see every record again")
	}
	if !bytes.Contains([]byte(out.String()), []byte("level=ERROR")) {
		t.Fatalf("not logged: %s", out.String())
	}
}

func TestBadReaderNames(t *testing.T) {
	for _, names := range [][]string{{""}, {"a/b"}, {".."}, {"x", "x"}} {
		if _, err := Open(Options{Dir: "/log", FS: newCrashFS(), Readers: names}); err == nil {
			t.Errorf("readers %q accepted", names)
		}
	}
}

// FuzzSegment: any bytes in a segment file open without a panic; what is
// indexed reads back whole, the log takes a new record after it, and a
// second open finds the same records and nothing more to mend.
func FuzzSegment(f *testing.F) {
	f.Add([]byte(segmentMagic))
	f.Add(appendFrame([]byte(segmentMagic), 1, 0, []byte("record")))
	two := appendFrame(appendFrame([]byte(segmentMagic), 1, 0, []byte("a")), 2, 7, bytes.Repeat([]byte("b"), 300))
	f.Add(two)
	f.Add(two[:len(two)-1])
	f.Add(append(bytes.Clone(two), 0xff, 0xff, 0xff, 0xff))
	f.Add([]byte("UEILOG1\n\xff\xff\xff\xff\x00\x00\x00\x00"))
	mid := bytes.Clone(two)
	mid[len(segmentMagic)+3] ^= 1
	f.Add(mid)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, last := range []bool{true, false} {
			files := map[string][]byte{"/log/" + segmentName(1): data}
			if !last {
				files["/log/"+segmentName(2)] = appendFrame([]byte(segmentMagic), 3, 0, []byte("later"))
			}
			c := crashFSFrom(files)
			l, err := Open(Options{Dir: "/log", FS: c, Sync: true})
			if err != nil {
				t.Fatal(err)
			}
			n := l.Records()
			for pnum, p := range l.projs {
				for _, e := range p.pending() {
					if _, _, err := l.Read(nil, pnum, e); err != nil {
						t.Fatalf("indexed record %d of %d does not read back: %v", e.Seq, pnum, err)
					}
				}
			}
			want := uint64(0)
			if last, ok := l.LastSeq(9); ok {
				if last == math.MaxUint64 {
					l.Close()
					return
				}
				want = last + 1
			}
			if err := l.Append([]Append{{Project: 9, Seq: want, Rec: []byte("after")}}); err != nil {
				t.Fatal(err)
			}
			damaged := l.Stats().Damaged
			l.Close()
			l2, err := Open(Options{Dir: "/log", FS: c, Sync: true})
			if err != nil {
				t.Fatal(err)
			}
			if l2.Records() != n+1 {
				t.Fatalf("second open: %d records, want %d", l2.Records(), n+1)
			}
			if d := l2.Stats().Damaged; d != damaged {
				t.Fatalf("second open: %d damaged, first %d: it mended again", d, damaged)
			}
			l2.Close()
		}
	})
}
