// Package ingestlog is the collector's ingest log: the queue between the
// committer, which appends each accepted request's record, and the readers
// that take records from it in order (the aggregator, which folds them
// within seconds, and the fleet forwarder). It lives in append-only segment
// files, not in a database: a segment is deleted whole once every reader is
// past every record in it, so reclaiming the log's space costs an unlink,
// with no read pass, no rewrite, no compaction, and a segment read by all
// before the kernel writes it back never reaches the disk
// (docs/RATIONALE.md, "Why is the ingest log a set of segment files?").
//
// Segments are named by a 16-digit hex number that grows by one each time
// the log moves on to a new one. At open every segment is read through and
// the frames that check out are indexed in memory (project → its records in
// seq order, where each lies). What a crash can leave is mended there
// (docs/OPERATIONS.md, "The ingest log after a crash"):
//
//   - the last segment may end in a write cut short: it is cut back to its
//     last good frame;
//   - any other bad bytes are damage: the segment is moved aside to
//     damaged/ with its bytes as they are, the good frames before and after
//     the damage are kept in a rewritten segment of the same number, and the
//     log says so loudly and counts it (Stats.Damaged) until an operator
//     deletes what was moved aside.
//
// All file access goes through an FS, so that the power-cut suite can
// replay every state a crash could leave on the disk.
package ingestlog

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

const (
	segmentSuffix = ".seg"
	tmpSuffix     = ".tmp"
	// DamagedDir is the folder, inside the log's, that damaged segments
	// are moved to.
	DamagedDir = "damaged"
	// ReadersDir holds the readers' checkpoints.
	ReadersDir = "readers"
	// DefaultSegmentMax is the size past which the log moves on to a new
	// segment.
	DefaultSegmentMax = 16 << 20
)

// ErrCorrupt marks a record whose frame no longer checks out when read.
var ErrCorrupt = errors.New("ingestlog: corrupt frame")

// ErrSync marks an append whose bytes reached the file but whose fdatasync
// failed: the group is refused and its segment abandoned.
var ErrSync = errors.New("ingestlog: sync")

// ErrReadOnly is returned by the writing calls of a log opened read-only.
var ErrReadOnly = errors.New("ingestlog: read-only")

// Options configure Open.
type Options struct {
	Dir string
	// SegmentMax is the size past which appends go to a new segment
	// (DefaultSegmentMax when 0).
	SegmentMax int64
	// Sync makes each append durable (fdatasync) before it returns, and
	// each new segment's name (directory sync) before records go in it.
	Sync bool
	// ReadOnly opens the log of another process to read: nothing is
	// written, cut, moved or deleted.
	ReadOnly bool
	// Readers names the readers that keep their own checkpoint in the log
	// (Reader). The primary reader (Drop) keeps its own elsewhere. A
	// segment goes only when every one is past it.
	Readers []string
	// FS is the file system (OS when nil).
	FS     FS
	Logger *slog.Logger
}

type segment struct {
	id   uint64
	path string
	f    File
	size int64 // bytes of good frames (the committer's write offset)
	live int   // indexed records not dropped yet (under Log.mu)
}

// Entry locates one record of the log.
type Entry struct {
	Seq uint64
	seg *segment
	off int64 // of the frame
	n   int   // record bytes
}

// projectLog is one project's indexed records, in seq order from head.
type projectLog struct {
	ents []Entry
	head int
	// below[r] is reader r's committed position (r = 0: the primary):
	// every record below it is done with for that reader.
	below []uint64
}

func (p *projectLog) pending() []Entry { return p.ents[p.head:] }

func (p *projectLog) last() (uint64, bool) {
	if p.head == len(p.ents) {
		return 0, false
	}
	return p.ents[len(p.ents)-1].Seq, true
}

// Log is an open ingest log. The committer appends (one goroutine);
// every other call may come from any goroutine.
type Log struct {
	dir    string
	fs     FS
	segMax int64
	sync   bool
	ro     bool
	log    *slog.Logger

	mu      sync.Mutex
	segs    []*segment // oldest first
	dead    []*segment // done with, to be deleted by RemoveDead
	cur     *segment   // the one written (the last of segs); nil when read-only
	projs   map[uint32]*projectLog
	n       int // indexed records
	readers []*Reader

	// committer only
	buf    []byte
	broken bool // the segment written is abandoned: the next append starts a new one

	syncFailures atomic.Uint64
	damaged      atomic.Int64
}

// Append is one record to append.
type Append struct {
	Project uint32
	Seq     uint64
	Rec     []byte
}

// Open opens (creating if needed, unless read-only) the log in o.Dir and
// indexes its records, mending what a crash left (see the package doc).
func Open(o Options) (*Log, error) {
	l := &Log{dir: o.Dir, fs: o.FS, segMax: o.SegmentMax, sync: o.Sync, ro: o.ReadOnly, log: o.Logger, projs: map[uint32]*projectLog{}}
	if l.fs == nil {
		l.fs = OS{}
	}
	if l.segMax <= 0 {
		l.segMax = DefaultSegmentMax
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	for _, name := range o.Readers {
		if name == "" || strings.ContainsAny(name, `/\.`) || slices.ContainsFunc(l.readers, func(r *Reader) bool { return r.name == name }) {
			return nil, fmt.Errorf("ingestlog: bad or repeated reader name %q", name)
		}
		l.readers = append(l.readers, &Reader{l: l, idx: len(l.readers) + 1, name: name, next: map[uint32]uint64{}, committed: map[uint32]uint64{}})
	}
	if !l.ro {
		if err := l.fs.MkdirAll(l.dir); err != nil {
			return nil, fmt.Errorf("ingestlog: create %s: %w", l.dir, err)
		}
		if l.sync {
			// The folder's own name, which a new node has just made.
			if err := l.fs.SyncDir(filepath.Dir(l.dir)); err != nil {
				return nil, fmt.Errorf("ingestlog: sync %s: %w", filepath.Dir(l.dir), err)
			}
		}
	}
	for _, r := range l.readers {
		if err := r.load(); err != nil {
			return nil, err
		}
	}
	names, err := l.fs.ReadDir(l.dir)
	if err != nil && !(l.ro && errors.Is(err, errNotExist)) {
		return nil, fmt.Errorf("ingestlog: read %s: %w", l.dir, err)
	}
	var ids []uint64
	for _, name := range names {
		if strings.HasSuffix(name, tmpSuffix) && !l.ro {
			// A rewrite of a damaged segment cut short: the original is
			// still in place.
			_ = l.fs.Remove(filepath.Join(l.dir, name))
			continue
		}
		if !strings.HasSuffix(name, segmentSuffix) {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSuffix(name, segmentSuffix), 16, 64)
		if err != nil {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if moved, err := l.fs.ReadDir(filepath.Join(l.dir, DamagedDir)); err == nil {
		l.damaged.Store(int64(len(moved)))
		if len(moved) > 0 {
			l.log.Error("ingest log: damaged segments are kept aside; their readable records were recovered. Look at them, then delete them",
				"dir", filepath.Join(l.dir, DamagedDir), "files", len(moved))
		}
	}
	for i, id := range ids {
		if err := l.load(id, i == len(ids)-1); err != nil {
			l.Close()
			return nil, err
		}
	}
	// Segments with nothing left to read go now.
	l.mu.Lock()
	l.reclaimLocked()
	l.mu.Unlock()
	l.RemoveDead()
	if !l.ro {
		var next uint64 = 1
		if len(l.segs) > 0 {
			next = l.segs[len(l.segs)-1].id + 1
		}
		// Writing always starts in a new segment: the last one may have been
		// cut back after a torn frame, and its file is open read-only.
		if err := l.newSegment(next); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

func segmentName(id uint64) string { return fmt.Sprintf("%016x%s", id, segmentSuffix) }

// index adds a record to its project's queue. Records of a project come in
// seq order; one at or below the project's last (a record written twice)
// is left out.
func (l *Log) index(seg *segment, pnum uint32, seq uint64, off int64, n int) {
	p := l.project(pnum)
	if last, ok := p.last(); ok && seq <= last {
		return
	}
	if seq < p.low() {
		return // every reader is past it
	}
	if p.head > 0 && p.head == len(p.ents) {
		p.ents, p.head = p.ents[:0], 0
	}
	p.ents = append(p.ents, Entry{Seq: seq, seg: seg, off: off, n: n})
	seg.live++
	l.n++
	for _, r := range l.readers {
		if seq >= r.committed[pnum] {
			r.behind++
			r.behindBytes += int64(frameHeader + n)
		}
	}
}

// project returns pnum's queue, made if need be.
func (l *Log) project(pnum uint32) *projectLog {
	p := l.projs[pnum]
	if p == nil {
		p = &projectLog{below: make([]uint64, 1+len(l.readers))}
		for _, r := range l.readers {
			p.below[r.idx] = r.committed[pnum]
		}
		l.projs[pnum] = p
	}
	return p
}

// low is the position every reader is past. The primary reader's is 0
// until it says (Drop): it keeps its checkpoint elsewhere.
func (p *projectLog) low() uint64 { return slices.Min(p.below) }

// newSegment starts segment id and makes it the one written.
func (l *Log) newSegment(id uint64) error {
	path := filepath.Join(l.dir, segmentName(id))
	f, err := l.fs.Create(path)
	if err != nil {
		return fmt.Errorf("ingestlog: create segment: %w", err)
	}
	if _, err := f.WriteAt([]byte(segmentMagic), 0); err != nil {
		f.Close()
		l.fs.Remove(path)
		return fmt.Errorf("ingestlog: write segment: %w", err)
	}
	if l.sync {
		// The new file's name must outlive a power cut before records in it
		// are acknowledged.
		if err := l.fs.SyncDir(l.dir); err != nil {
			f.Close()
			l.fs.Remove(path)
			return fmt.Errorf("ingestlog: sync %s: %w", l.dir, err)
		}
	}
	l.mu.Lock()
	l.cur = &segment{id: id, path: path, f: f, size: int64(len(segmentMagic))}
	l.segs = append(l.segs, l.cur)
	l.reclaimLocked()
	l.mu.Unlock()
	l.broken = false
	return nil
}

// Append writes a group's records, in order, with one write (and, with
// Sync, one fdatasync), then indexes them. On error nothing of the group is
// indexed, and the segment is cut back to where it was. A failed fdatasync
// also abandons the segment (the next group starts a new one): after such a
// failure the kernel may have dropped the file's dirty pages and marked them
// clean, so a later fdatasync of the same file that succeeds proves nothing
// (PostgreSQL's fsync lesson). Only the committer calls it.
func (l *Log) Append(group []Append) error {
	if l.ro {
		return ErrReadOnly
	}
	// l.cur changes only here and in newSegment, both on the committer.
	if l.broken {
		if err := l.newSegment(l.cur.id + 1); err != nil {
			return err
		}
	}
	cur := l.cur
	buf := l.buf[:0]
	for _, a := range group {
		if len(a.Rec) > MaxRecord {
			return fmt.Errorf("ingestlog: record of %d bytes exceeds the log's limit of %d", len(a.Rec), MaxRecord)
		}
		buf = appendFrame(buf, a.Project, a.Seq, a.Rec)
	}
	l.buf = buf
	if err := l.write(cur, buf); err != nil {
		if terr := cur.f.Truncate(cur.size); terr != nil {
			l.broken = true
		}
		if errors.Is(err, ErrSync) {
			l.broken = true
			n := l.syncFailures.Add(1)
			l.log.Error("ingest log: fdatasync failed: the group is refused and its segment abandoned; new writes go to a new segment. Check the disk: the node reports degraded until it restarts",
				"segment", cur.path, "err", err, "sync_failures", n)
		}
		return err
	}
	l.mu.Lock()
	off := cur.size
	for _, a := range group {
		l.index(cur, a.Project, a.Seq, off, len(a.Rec))
		off += int64(frameHeader + len(a.Rec))
	}
	cur.size = off
	l.mu.Unlock()
	if cur.size >= l.segMax {
		if err := l.newSegment(cur.id + 1); err != nil {
			// The group is written and indexed; the next append retries.
			l.broken = true
			l.log.Warn("ingest log: cannot start a new segment", "err", err)
		}
	}
	return nil
}

func (l *Log) write(cur *segment, buf []byte) error {
	if _, err := cur.f.WriteAt(buf, cur.size); err != nil {
		return fmt.Errorf("ingestlog: write: %w", err)
	}
	if l.sync {
		if err := cur.f.Sync(); err != nil {
			return fmt.Errorf("%w: %w", ErrSync, err)
		}
	}
	return nil
}

// SyncAll makes everything in the log durable.
func (l *Log) SyncAll() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.segs {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("ingestlog: sync: %w", err)
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("ingestlog: sync %s: %w", l.dir, err)
	}
	return nil
}

// LastSeq returns the highest seq of pnum in the log.
func (l *Log) LastSeq(pnum uint32) (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.projs[pnum]; p != nil {
		return p.last()
	}
	return 0, false
}

// Has reports whether the log holds record seq of pnum.
func (l *Log) Has(pnum uint32, seq uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.projs[pnum]
	if p == nil {
		return false
	}
	_, found := slices.BinarySearchFunc(p.pending(), seq, entryCmp)
	return found
}

func entryCmp(e Entry, seq uint64) int { return cmp.Compare(e.Seq, seq) }

// Pending returns up to max of pnum's records from seq from on (into dst).
func (l *Log) Pending(dst []Entry, pnum uint32, from uint64, max int) []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.projs[pnum]
	if p == nil {
		return dst
	}
	ents := p.pending()
	i, _ := slices.BinarySearchFunc(ents, from, entryCmp)
	ents = ents[i:]
	return append(dst, ents[:min(len(ents), max)]...)
}

// Read returns the record e of pnum, read into buf (grown if need be, and
// returned for the next read), checking its frame.
func (l *Log) Read(buf []byte, pnum uint32, e Entry) (rec, grown []byte, err error) {
	n := frameHeader + e.n
	if cap(buf) < n {
		buf = make([]byte, n, n+n/4)
	}
	buf = buf[:n]
	if _, err := e.seg.f.ReadAt(buf, e.off); err != nil && !isEOF(err) {
		return nil, buf, fmt.Errorf("ingestlog: read: %w", err)
	}
	p, seq, rec, ok := parseFrame(buf)
	if !ok || p != pnum || seq != e.Seq {
		return nil, buf, fmt.Errorf("%w at %s:%d", ErrCorrupt, e.seg.path, e.off)
	}
	return rec, buf, nil
}

// Drop says the primary reader is done with pnum's records below seq
// below; the log lets go of those every reader is done with, and sets
// aside the segments left with nothing to read for RemoveDead. It returns
// how many records it let go of.
func (l *Log) Drop(pnum uint32, below uint64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.projs[pnum]
	if p == nil {
		return 0
	}
	p.below[0] = max(p.below[0], below)
	return l.advanceLocked(p)
}

// Forget lets go of all of pnum's records, for every reader (a project
// deleted from the registry).
func (l *Log) Forget(pnum uint32) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.projs[pnum]
	if p == nil {
		return 0
	}
	for _, r := range l.readers {
		r.passLocked(p, r.committed[pnum], math.MaxUint64)
	}
	for i := range p.below {
		p.below[i] = math.MaxUint64
	}
	n := l.advanceLocked(p)
	delete(l.projs, pnum) // a record of it from now on starts afresh
	return n
}

// advanceLocked drops p's records below the position every reader is past.
func (l *Log) advanceLocked(p *projectLog) int {
	low := p.low()
	n := 0
	for p.head < len(p.ents) && p.ents[p.head].Seq < low {
		e := &p.ents[p.head]
		e.seg.live--
		e.seg = nil
		p.head++
		n++
	}
	l.n -= n
	if p.head == len(p.ents) {
		// An empty queue: the project's next number falls back on the
		// primary reader's checkpoint, which is past every record dropped.
		p.ents, p.head = p.ents[:0], 0
	} else if p.head > 1024 && p.head > len(p.ents)/2 {
		p.ents = p.ents[:copy(p.ents, p.ents[p.head:])]
		p.head = 0
	}
	if n > 0 {
		l.reclaimLocked()
	}
	return n
}

// reclaimLocked sets aside the segments with no live record, except the
// one being written, for RemoveDead: deleting a segment frees its pages
// from the page cache, milliseconds of system time for 16 MiB, which must
// not be spent holding the lock the committer indexes under, nor on the
// committer at all.
func (l *Log) reclaimLocked() {
	if l.ro {
		return
	}
	keep := l.segs[:0]
	for _, s := range l.segs {
		if s.live > 0 || s == l.cur {
			keep = append(keep, s)
			continue
		}
		l.dead = append(l.dead, s)
	}
	clear(l.segs[len(keep):])
	l.segs = keep
}

// RemoveDead deletes the segments no reader needs any more. The aggregator
// calls it on its folding thread after each fold.
func (l *Log) RemoveDead() {
	l.mu.Lock()
	dead := l.dead
	l.dead = nil
	l.mu.Unlock()
	for _, s := range dead {
		if s.f != nil {
			s.f.Close()
		}
		if err := l.fs.Remove(s.path); err != nil && !errors.Is(err, errNotExist) {
			l.log.Warn("ingest log: cannot delete a segment read by all", "segment", s.path, "err", err)
		}
	}
}

// Count returns how many records of pnum the log holds.
func (l *Log) Count(pnum uint32) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.projs[pnum]; p != nil {
		return len(p.pending())
	}
	return 0
}

// Projects returns the project numbers with records in the log (into dst).
func (l *Log) Projects(dst []uint32) []uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	for pnum, p := range l.projs {
		if len(p.pending()) > 0 {
			dst = append(dst, pnum)
		}
	}
	return dst
}

// Records returns how many records the log holds.
func (l *Log) Records() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// Stats are the log's counters.
type Stats struct {
	// SyncFailures counts the fdatasyncs that failed since the log was
	// opened: each abandoned its segment.
	SyncFailures uint64
	// Damaged is how many damaged segments are kept aside in damaged/.
	Damaged int64
	// Segments is how many segment files the log has.
	Segments int
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	segs := len(l.segs)
	l.mu.Unlock()
	return Stats{SyncFailures: l.syncFailures.Load(), Damaged: l.damaged.Load(), Segments: segs}
}

// Close closes the log's files.
func (l *Log) Close() {
	l.RemoveDead()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.segs {
		if s.f != nil {
			s.f.Close()
			s.f = nil
		}
	}
}
