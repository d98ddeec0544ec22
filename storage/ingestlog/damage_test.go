package ingestlog

import (
	"bytes"
	"log/slog"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *logBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *logBuf) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// framesIn returns the frames of a whole segment.
func framesIn(t *testing.T, b []byte) []frame {
	t.Helper()
	sc := scanSegment(b, math.MaxInt64)
	if sc.good != int64(len(b)) {
		t.Fatalf("segment not whole: good to %d of %d", sc.good, len(b))
	}
	return sc.frames
}

// segmentPaths returns the log's segment files in order.
func segmentPaths(img map[string][]byte) []string {
	var segs []string
	for p := range img {
		if filepath.Dir(p) == "/log" && strings.HasSuffix(p, segmentSuffix) {
			segs = append(segs, p)
		}
	}
	slices.Sort(segs)
	return segs
}

// damagedLog writes records of three projects into small segments (none
// folded) and returns the disk, its history and the segments.
func damagedLog(t *testing.T, segMax int64) (map[string][]byte, *history) {
	t.Helper()
	c := newCrashFS()
	l := openOn(t, c, segMax)
	h := &history{acked: map[recKey]int{}, seqs: map[uint32]uint64{}, lost: map[recKey]bool{}}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 30 {
		p := uint32(1 + rng.IntN(3))
		seq := h.seqs[p]
		h.seqs[p]++
		if err := l.Append([]Append{{Project: p, Seq: seq, Rec: recordBytes(p, seq)}}); err != nil {
			t.Fatal(err)
		}
		h.acked[recKey{p, seq}] = 0
	}
	l.Close()
	return c.files(), h
}

// TestDamagedSegmentMovedAside: a flipped bit in a frame of an older
// segment moves that segment aside with its bytes as they were, keeps
// every other record of it (before and after the damage), says so loudly
// and counts it; a crash at any point of that mending loses no record,
// and the bytes are kept once it is done.
func TestDamagedSegmentMovedAside(t *testing.T) {
	const segMax = 400
	img, h := damagedLog(t, segMax)
	segs := segmentPaths(img)
	if len(segs) < 4 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	victim := segs[1]
	orig := img[victim]
	frames := framesIn(t, orig)
	if len(frames) < 3 {
		t.Fatalf("%d frames in %s, want 3 or more", len(frames), victim)
	}
	bad := frames[1]
	damaged := slices.Clone(orig)
	damaged[bad.off+frameHeader+int64(bad.n)/2] ^= 0x40
	img[victim] = damaged
	h.lost[recKey{bad.pnum, bad.seq}] = true

	var out logBuf
	c := crashFSFrom(img)
	l, err := Open(Options{Dir: "/log", FS: c, SegmentMax: segMax, Sync: true, Readers: []string{fwd},
		Logger: slog.New(slog.NewTextHandler(&out, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Stats().Damaged; got != 1 {
		t.Fatalf("Stats().Damaged = %d, want 1", got)
	}
	if !strings.Contains(out.String(), "level=ERROR") || !strings.Contains(out.String(), "damaged") {
		t.Fatalf("no loud log line: %s", out.String())
	}
	for _, f := range frames {
		has := l.Has(f.pnum, f.seq)
		if f == bad && has {
			t.Fatalf("the damaged record %d/%d was indexed", f.pnum, f.seq)
		}
		if f != bad && !has {
			t.Fatalf("record %d/%d of the damaged segment lost (frame at %d, damage at %d)", f.pnum, f.seq, f.off, bad.off)
		}
	}
	l.Close()
	after := c.files()
	var kept []string
	for p, b := range after {
		if filepath.Dir(p) == filepath.Join("/log", DamagedDir) {
			kept = append(kept, p)
			if !bytes.Equal(b, damaged) {
				t.Fatalf("%s does not hold the damaged segment's bytes as they were", p)
			}
		}
	}
	if len(kept) != 1 {
		t.Fatalf("damaged/ holds %v, want the one segment", kept)
	}
	if got := framesIn(t, after[victim]); len(got) != len(frames)-1 {
		t.Fatalf("the rewritten segment has %d frames, want %d", len(got), len(frames)-1)
	}
	// A crash anywhere in the mending.
	n := crashes(t, img, c.events, h, segMax)
	// Once mended, the next open finds nothing to mend but still reports
	// what is kept aside.
	l2, err := Open(Options{Dir: "/log", FS: crashFSFrom(after), SegmentMax: segMax, Sync: true, Readers: []string{fwd}})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if d := l2.Stats().Damaged; d != 1 {
		t.Fatalf("after the mending, Damaged = %d, want 1 (until an operator deletes it)", d)
	}
	t.Logf("mending took %d events; %d crash states checked", len(c.events), n)
}

// TestDamageKinds: what each kind of bad bytes in which segment does.
func TestDamageKinds(t *testing.T) {
	const segMax = 400
	for _, tc := range []struct {
		name   string
		seg    func(segs []string) string
		damage func(b []byte, fr []frame) []byte
		// moved: the segment goes aside; lost: records lost of it.
		moved bool
		lost  func(fr []frame) []frame
	}{
		{"last segment torn", func(s []string) string { return s[len(s)-1] },
			func(b []byte, fr []frame) []byte { f := fr[len(fr)-1]; return b[:f.off+int64(f.n)/2+5] },
			false, func(fr []frame) []frame { return fr[len(fr)-1:] }},
		{"last segment damaged before good frames", func(s []string) string { return s[len(s)-1] },
			func(b []byte, fr []frame) []byte { b[fr[0].off+3] ^= 1; return b },
			true, func(fr []frame) []frame { return fr[:1] }},
		{"older segment torn", func(s []string) string { return s[0] },
			func(b []byte, fr []frame) []byte { f := fr[len(fr)-1]; return b[:f.off+7] },
			true, func(fr []frame) []frame { return fr[len(fr)-1:] }},
		{"older segment zeroed sector", func(s []string) string { return s[1] },
			func(b []byte, fr []frame) []byte {
				f := fr[0]
				clear(b[f.off : f.off+frameHeader])
				return b
			},
			true, func(fr []frame) []frame { return fr[:1] }},
		{"older segment without its magic", func(s []string) string { return s[2] },
			func(b []byte, fr []frame) []byte { b[0] = 'X'; return b },
			true, func(fr []frame) []frame { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, _ := damagedLog(t, segMax)
			segs := segmentPaths(img)
			// The last segment written is empty (Close leaves the next one
			// started): pick among those with records.
			for len(segs) > 0 && len(img[segs[len(segs)-1]]) <= len(segmentMagic) {
				delete(img, segs[len(segs)-1])
				segs = segs[:len(segs)-1]
			}
			victim := tc.seg(segs)
			fr := framesIn(t, img[victim])
			img[victim] = tc.damage(slices.Clone(img[victim]), fr)
			lost := tc.lost(fr)
			c := crashFSFrom(img)
			l, err := Open(Options{Dir: "/log", FS: c, SegmentMax: segMax, Sync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if got := l.Stats().Damaged == 1; got != tc.moved {
				t.Fatalf("moved aside: %v, want %v", got, tc.moved)
			}
			for _, f := range fr {
				want := !slices.Contains(lost, f)
				if l.Has(f.pnum, f.seq) != want {
					t.Errorf("record %d/%d (frame at %d): present %v, want %v", f.pnum, f.seq, f.off, !want, want)
				}
			}
			if !tc.moved {
				if b := c.files()[victim]; int64(len(b)) != lost[0].off {
					t.Fatalf("torn segment cut to %d bytes, want %d", len(b), lost[0].off)
				}
			}
		})
	}
}

// TestResyncBudget: looking for frames past damage stops once it has
// spent its budget, and says so, rather than take minutes over one
// segment; with budget it finds them.
func TestResyncBudget(t *testing.T) {
	// 64 KiB of garbage whose every 4th offset reads as a length that fits
	// (16,640 bytes: about 200 MB of checksum work to try them all), then
	// a frame.
	data := []byte(segmentMagic)
	for range 16 << 10 {
		data = append(data, 0x00, 0x41, 0x00, 0x00)
	}
	data = appendFrame(data, 5, 9, []byte("after the damage"))
	if sc := scanSegment(data, math.MaxInt64); sc.gaveUp || len(sc.frames) != 1 || sc.frames[0].seq != 9 {
		t.Fatalf("with no bound: %+v, want the frame found", sc.frames)
	}
	sc := scanSegment(data, 1<<20)
	if !sc.gaveUp || len(sc.frames) != 0 || sc.giveUpAt <= int64(len(segmentMagic)) {
		t.Fatalf("with 1 MiB of budget: gaveUp %v at %d, %d frames; want it to give up", sc.gaveUp, sc.giveUpAt, len(sc.frames))
	}
	if b := resyncBudget(16 << 20); b > 2<<30 {
		t.Fatalf("a 16 MiB segment may cost %d bytes of checksums at open", b)
	}
}

func newTextLogger(w *logBuf) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
