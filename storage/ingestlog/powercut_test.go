package ingestlog

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// The power-cut suite: a workload runs on a crashFS, which records every
// write and sync; then, for every prefix of those events, the disks a
// power cut there could leave are built and the log opened on each. It
// must hold, for each:
//
//   - every record acknowledged (Append returned, with Sync) that a reader
//     still needed is there, with its bytes;
//   - no record is there twice, none holds bytes other than its own;
//   - the reader's checkpoint is no older than the last Commit that
//     returned and no newer than the last one begun: what it committed is
//     not sent again (nothing folded twice), what it did not is;
//   - the project's next sequence number is past every number used by a
//     record acknowledged or passed by a reader;
//   - the log opened on it takes new records, which a further open finds.

// recordBytes is record seq of pnum's content: its length varies, and
// every byte says whose it is.
func recordBytes(pnum uint32, seq uint64) []byte {
	n := 8 + int((seq*37+uint64(pnum)*11)%140)
	b := make([]byte, n)
	binary.LittleEndian.PutUint32(b, pnum)
	binary.LittleEndian.PutUint32(b[4:], uint32(seq))
	for i := 8; i < n; i++ {
		b[i] = byte(uint64(pnum)*31 + seq*7 + uint64(i))
	}
	return b
}

const fwd = "fwd"

// history is what the workload did, by event index.
type history struct {
	acked   map[recKey]int // record → events done when its Append returned
	drops   []posAt        // the primary's positions (durable elsewhere when given)
	commits []posAt        // the reader's positions when a Commit returned
	begun   []posAt        // ... when a Commit began
	seqs    map[uint32]uint64
	lost    map[recKey]bool // records damaged on purpose
}

type recKey struct {
	pnum uint32
	seq  uint64
}

type posAt struct {
	at   int // events done
	pnum uint32
	pos  uint64
}

// posBy returns, per project, the highest position of ps given by k events.
func posBy(ps []posAt, k int) map[uint32]uint64 {
	m := map[uint32]uint64{}
	for _, p := range ps {
		if p.at <= k {
			m[p.pnum] = max(m[p.pnum], p.pos)
		}
	}
	return m
}

func openOn(t *testing.T, c *crashFS, segMax int64) *Log {
	t.Helper()
	l, err := Open(Options{Dir: "/log", FS: c, SegmentMax: segMax, Sync: true, Readers: []string{fwd}})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// workload appends groups of records of three projects and, as it goes,
// the primary folds (Drop) and the reader forwards (Advance, Commit).
func workload(t *testing.T, c *crashFS, l *Log, h *history, rng *rand.Rand, steps int) {
	t.Helper()
	for step := range steps {
		var group []Append
		for range 1 + rng.IntN(3) {
			p := uint32(1 + rng.IntN(3))
			seq := h.seqs[p]
			h.seqs[p]++
			group = append(group, Append{Project: p, Seq: seq, Rec: recordBytes(p, seq)})
		}
		if err := l.Append(group); err != nil {
			t.Fatal(err)
		}
		for _, a := range group {
			h.acked[recKey{a.Project, a.Seq}] = len(c.events)
		}
		if step%3 == 2 {
			// The primary folds what it has, checkpoints (durably, elsewhere),
			// then lets the log go of it.
			for _, p := range []uint32{1, 2, 3} {
				from := posBy(h.drops, math.MaxInt)[p]
				ents := l.Pending(nil, p, from, 1+rng.IntN(4))
				if len(ents) == 0 {
					continue
				}
				below := ents[len(ents)-1].Seq + 1
				h.drops = append(h.drops, posAt{len(c.events), p, below})
				l.Drop(p, below)
			}
			l.RemoveDead()
		}
		if step%4 == 3 {
			r := l.Reader(fwd)
			for _, p := range []uint32{1, 2, 3} {
				if ents := r.Pending(nil, p, 1+rng.IntN(5)); len(ents) > 0 {
					r.Advance(p, ents[len(ents)-1].Seq+1)
				}
			}
			for _, p := range []uint32{1, 2, 3} {
				h.begun = append(h.begun, posAt{len(c.events), p, r.Next(p)})
			}
			if err := r.Commit(); err != nil {
				t.Fatal(err)
			}
			for _, p := range []uint32{1, 2, 3} {
				h.commits = append(h.commits, posAt{len(c.events), p, r.Next(p)})
			}
			l.RemoveDead()
		}
	}
}

// checkCrash opens the log on img, a disk left by a crash after k events,
// and checks what the suite promises.
func checkCrash(t *testing.T, img map[string][]byte, k int, h *history, segMax int64, what string) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("crash after %d events (%s): %s\ndisk:\n%s", k, what, fmt.Sprintf(format, args...), describeImage(img))
	}
	c := crashFSFrom(img)
	l, err := Open(Options{Dir: "/log", FS: c, SegmentMax: segMax, Sync: true, Readers: []string{fwd}})
	if err != nil {
		fail("open: %v", err)
	}
	drops, commits, begun := posBy(h.drops, k), posBy(h.commits, k), posBy(h.begun, k)
	r := l.Reader(fwd)
	for _, p := range []uint32{1, 2, 3} {
		var prev uint64
		present := map[uint64]bool{}
		for i, e := range l.Pending(nil, p, 0, math.MaxInt) {
			if i > 0 && e.Seq <= prev {
				fail("project %d: seq %d after %d", p, e.Seq, prev)
			}
			prev = e.Seq
			rec, _, err := l.Read(nil, p, e)
			if err != nil {
				fail("project %d seq %d: %v", p, e.Seq, err)
			}
			if !slices.Equal(rec, recordBytes(p, e.Seq)) {
				fail("project %d seq %d holds other bytes", p, e.Seq)
			}
			present[e.Seq] = true
		}
		got := r.Next(p)
		if got < commits[p] || got > max(begun[p], commits[p]) {
			fail("project %d: reader at %d, committed %d, begun %d", p, got, commits[p], begun[p])
		}
		needed := min(drops[p], commits[p])
		next := drops[p]
		if last, ok := l.LastSeq(p); ok {
			next = max(next, last+1)
		}
		if next < got {
			fail("project %d: next seq %d behind the reader's %d", p, next, got)
		}
		for key, at := range h.acked {
			if key.pnum != p || at > k {
				continue
			}
			if key.seq >= needed && !present[key.seq] && !h.lost[key] {
				fail("project %d: acknowledged record %d lost (primary at %d, reader committed %d)", p, key.seq, drops[p], commits[p])
			}
			if key.seq >= next {
				fail("project %d: next seq %d would reuse acknowledged %d", p, next, key.seq)
			}
		}
		// The mended log takes a new record, and keeps it.
		if err := l.Append([]Append{{Project: p, Seq: next, Rec: recordBytes(p, next)}}); err != nil {
			fail("append after the crash: %v", err)
		}
	}
	l.Close()
	l2, err := Open(Options{Dir: "/log", FS: c, SegmentMax: segMax, Sync: true, Readers: []string{fwd}})
	if err != nil {
		fail("second open: %v", err)
	}
	defer l2.Close()
	for _, p := range []uint32{1, 2, 3} {
		last, ok := l2.LastSeq(p)
		if !ok {
			fail("project %d: the record appended after the crash is gone", p)
		}
		ents := l2.Pending(nil, p, last, 1)
		if rec, _, err := l2.Read(nil, p, ents[0]); err != nil || !slices.Equal(rec, recordBytes(p, last)) {
			fail("project %d: record %d after reopen: %v", p, last, err)
		}
	}
	if d := l2.Stats().Damaged; d != l.Stats().Damaged {
		fail("the second open found %d damaged segments, the first %d", d, l.Stats().Damaged)
	}
}

// crashes checks every prefix of events from files, with each kind of
// crash (and several random ones).
func crashes(t *testing.T, files map[string][]byte, events []fsEvent, h *history, segMax int64) int {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	n := 0
	replay(files, events, func(k int, st *fsState) {
		for _, kind := range []crashKind{keepNothing, keepAll, keepTorn, keepRandom, keepRandom, keepRandom} {
			checkCrash(t, st.image(kind, rng), k, h, segMax, fmt.Sprintf("kind %d", kind))
			n++
		}
	})
	return n
}

func TestPowerCut(t *testing.T) {
	const segMax = 600 // a few records per segment: many segments, many deletes
	c := newCrashFS()
	l := openOn(t, c, segMax)
	h := &history{acked: map[recKey]int{}, seqs: map[uint32]uint64{}}
	workload(t, c, l, h, rand.New(rand.NewPCG(1, 2)), 60)
	l.Close()
	kinds := map[evKind]int{}
	for _, ev := range c.events {
		kinds[ev.kind]++
	}
	for _, k := range []evKind{evCreate, evWrite, evSync, evSyncDir, evRemove, evRename} {
		if kinds[k] == 0 {
			t.Fatalf("the workload made no %s: %v", k, kinds)
		}
	}
	n := crashes(t, nil, c.events, h, segMax)
	t.Logf("%d events (%v), %d crash states checked", len(c.events), kinds, n)
}
