package storage

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// The ingest log is a queue: the committer appends each accepted request's
// record, the aggregator folds them in order within seconds and then has no
// use for them. It lives in append-only segment files in DATA_DIR/ingest,
// not in Badger: a segment is deleted whole once every record in it has been
// folded, so reclaiming the log's space costs an unlink, with no read pass,
// no rewrite, no memtable flushes or compactions, and a segment folded
// before the kernel writes it back never reaches the disk (docs/RATIONALE.md,
// "Why is the ingest log a set of segment files?").
//
// A segment starts with segmentMagic; then frames, each
//
//	len u32 | crc32c u32 | project number u32 | seq u64 | record (len bytes)
//
// with the checksum (Castagnoli) over the number, the seq and the record.
// Segments are named by a 16-digit hex number that grows by one each time the
// log moves on to a new one. At open every segment is read through: the
// frames that check out are indexed in memory (project → its records in seq
// order, where each lies); a torn or corrupt frame ends its segment, which is
// cut back to the last good frame. The sequence numbers themselves are not
// stored apart: a project's next number is one past the highest still in the
// log, or the aggregator's checkpoint when it is higher (everything below the
// checkpoint has been folded, and a segment goes only once all of it is).

const (
	segmentMagic      = "UEILOG1\n"
	frameHeader       = 20
	segmentSuffix     = ".seg"
	ingestLogDir      = "ingest"
	defaultSegmentMax = 16 << 20
	// maxLogRecord bounds one record: far over any body the collector
	// accepts, it keeps a corrupt length from asking for gigabytes.
	maxLogRecord = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type segment struct {
	id   uint64
	path string
	f    *os.File
	size int64 // bytes of good frames (the committer's write offset)
	live int   // indexed records not dropped yet (under ingestLog.mu)
}

// logEntry locates one record.
type logEntry struct {
	seq uint64
	seg *segment
	off int64 // of the frame
	n   int   // record bytes
}

// projectLog is one project's indexed records, in seq order from head.
type projectLog struct {
	ents []logEntry
	head int
}

func (p *projectLog) pending() []logEntry { return p.ents[p.head:] }

func (p *projectLog) last() (uint64, bool) {
	if p.head == len(p.ents) {
		return 0, false
	}
	return p.ents[len(p.ents)-1].seq, true
}

type ingestLog struct {
	dir      string
	segMax   int64
	sync     bool
	readOnly bool
	log      *slog.Logger

	mu    sync.Mutex
	segs  []*segment // oldest first
	dead  []*segment // folded, to be deleted by removeDead
	cur   *segment   // the one written (the last of segs); nil when read-only
	projs map[uint32]*projectLog
	n     int // indexed records

	// committer only
	buf    []byte
	broken bool // the segment written is abandoned: the next append starts a new one
	// failWrite, if set (tests), is asked before each write; an error it
	// returns fails the write as the kernel's would. failSync, likewise,
	// before each fdatasync.
	failWrite, failSync func() error

	// syncFailures counts the fdatasyncs that failed since the log was
	// opened: each abandoned its segment.
	syncFailures atomic.Uint64
}

// errLogSync marks a write whose data reached the file but whose
// fdatasync failed.
var errLogSync = errors.New("storage: sync ingest log")

// logAppend is one record to append.
type logAppend struct {
	pnum uint32
	seq  uint64
	rec  []byte
}

// openIngestLog opens (creating if needed, unless read-only) the log in dir
// and indexes its records.
func openIngestLog(dir string, segMax int64, sync, readOnly bool, log *slog.Logger) (*ingestLog, error) {
	l := &ingestLog{dir: dir, segMax: segMax, sync: sync, readOnly: readOnly, log: log, projs: map[uint32]*projectLog{}}
	if !readOnly {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("storage: create %s: %w", dir, err)
		}
	}
	names, err := os.ReadDir(dir)
	if err != nil && !(readOnly && errors.Is(err, os.ErrNotExist)) {
		return nil, fmt.Errorf("storage: read %s: %w", dir, err)
	}
	var ids []uint64
	for _, e := range names {
		name := e.Name()
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
	for _, id := range ids {
		if err := l.load(id); err != nil {
			l.close()
			return nil, err
		}
	}
	// Segments with nothing left to fold go now.
	l.mu.Lock()
	l.reclaimLocked()
	l.mu.Unlock()
	l.removeDead()
	if !readOnly {
		var next uint64 = 1
		if len(l.segs) > 0 {
			next = l.segs[len(l.segs)-1].id + 1
		}
		// Writing always starts in a new segment: the last one may have been
		// cut back after a torn frame, and its file is open read-only.
		if err := l.newSegment(next); err != nil {
			l.close()
			return nil, err
		}
	}
	return l, nil
}

func segmentName(id uint64) string { return fmt.Sprintf("%016x%s", id, segmentSuffix) }

// load reads segment id through and indexes its good frames. A bad frame
// ends the segment: it is cut back to the frames before it (unless
// read-only), and what followed it is lost, which the log says.
func (l *ingestLog) load(id uint64) error {
	path := filepath.Join(l.dir, segmentName(id))
	data, err := os.ReadFile(path)
	if err != nil {
		if l.readOnly && errors.Is(err, os.ErrNotExist) {
			return nil // deleted by the serving process since the listing
		}
		return fmt.Errorf("storage: read ingest log segment: %w", err)
	}
	seg := &segment{id: id, path: path}
	good := int64(0)
	if len(data) >= len(segmentMagic) && string(data[:len(segmentMagic)]) == segmentMagic {
		good = int64(len(segmentMagic))
		for {
			pnum, seq, rec, ok := parseFrame(data[good:])
			if !ok {
				break
			}
			l.index(seg, pnum, seq, good, len(rec))
			good += int64(frameHeader + len(rec))
		}
	}
	if good < int64(len(data)) {
		l.log.Warn("ingest log segment ends in a torn or corrupt frame; cut back to its last good frame",
			"segment", path, "good_bytes", good, "lost_bytes", int64(len(data))-good)
		if !l.readOnly {
			if good < int64(len(segmentMagic)) {
				good = 0
			}
			if err := os.Truncate(path, good); err != nil {
				return fmt.Errorf("storage: cut back ingest log segment: %w", err)
			}
		}
	}
	seg.size = good
	if seg.f, err = os.Open(path); err != nil {
		return fmt.Errorf("storage: open ingest log segment: %w", err)
	}
	l.segs = append(l.segs, seg)
	return nil
}

// parseFrame reads the frame at the start of b.
func parseFrame(b []byte) (pnum uint32, seq uint64, rec []byte, ok bool) {
	if len(b) < frameHeader {
		return 0, 0, nil, false
	}
	n := binary.LittleEndian.Uint32(b)
	if n > maxLogRecord || int64(len(b)) < int64(frameHeader)+int64(n) {
		return 0, 0, nil, false
	}
	body := b[8 : frameHeader+int(n)]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return 0, 0, nil, false
	}
	return binary.LittleEndian.Uint32(body), binary.LittleEndian.Uint64(body[4:]), body[12:], true
}

// appendFrame appends the frame of one record to dst.
func appendFrame(dst []byte, pnum uint32, seq uint64, rec []byte) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(rec)))
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint32(dst, pnum)
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = append(dst, rec...)
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+8:], castagnoli))
	return dst
}

// index adds a record to its project's queue. Records of a project come in
// seq order; one at or below the project's last (a record imported twice)
// is left out.
func (l *ingestLog) index(seg *segment, pnum uint32, seq uint64, off int64, n int) {
	p := l.projs[pnum]
	if p == nil {
		p = &projectLog{}
		l.projs[pnum] = p
	}
	if last, ok := p.last(); ok && seq <= last {
		return
	}
	if p.head > 0 && p.head == len(p.ents) {
		p.ents, p.head = p.ents[:0], 0
	}
	p.ents = append(p.ents, logEntry{seq: seq, seg: seg, off: off, n: n})
	seg.live++
	l.n++
}

// newSegment starts segment id and makes it the one written.
func (l *ingestLog) newSegment(id uint64) error {
	path := filepath.Join(l.dir, segmentName(id))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("storage: create ingest log segment: %w", err)
	}
	if _, err := f.Write([]byte(segmentMagic)); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("storage: write ingest log segment: %w", err)
	}
	if l.sync {
		// The new file's name must outlive a power cut before records in it
		// are acknowledged.
		if err := syncDir(l.dir); err != nil {
			f.Close()
			os.Remove(path)
			return err
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

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("storage: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("storage: sync %s: %w", dir, err)
	}
	return nil
}

// append writes a group's records, in order, with one write (and, with sync,
// one fdatasync), then indexes them. On error nothing of the group is
// indexed, and the segment is cut back to where it was. A failed fdatasync
// also abandons the segment (the next group starts a new one): after such a
// failure the kernel may have dropped the file's dirty pages and marked them
// clean, so a later fdatasync of the same file that succeeds proves nothing
// (PostgreSQL's fsync lesson). Only the committer calls it.
func (l *ingestLog) append(group []logAppend) error {
	if l.readOnly {
		return errors.New("storage: ingest log is read-only")
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
		if len(a.rec) > maxLogRecord {
			return fmt.Errorf("storage: log record of %d bytes exceeds the log's limit of %d", len(a.rec), maxLogRecord)
		}
		buf = appendFrame(buf, a.pnum, a.seq, a.rec)
	}
	l.buf = buf
	if err := l.write(cur, buf); err != nil {
		if terr := cur.f.Truncate(cur.size); terr != nil {
			l.broken = true
		}
		if errors.Is(err, errLogSync) {
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
		l.index(cur, a.pnum, a.seq, off, len(a.rec))
		off += int64(frameHeader + len(a.rec))
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

func (l *ingestLog) write(cur *segment, buf []byte) error {
	if l.failWrite != nil {
		if err := l.failWrite(); err != nil {
			return fmt.Errorf("storage: write ingest log: %w", err)
		}
	}
	if _, err := cur.f.WriteAt(buf, cur.size); err != nil {
		return fmt.Errorf("storage: write ingest log: %w", err)
	}
	if l.sync {
		err := error(nil)
		if l.failSync != nil {
			err = l.failSync()
		}
		if err == nil {
			err = unix.Fdatasync(int(cur.f.Fd()))
		}
		if err != nil {
			return fmt.Errorf("%w: %w", errLogSync, err)
		}
	}
	return nil
}

// syncWritten makes everything in the log durable.
func (l *ingestLog) syncWritten() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.segs {
		if err := unix.Fdatasync(int(s.f.Fd())); err != nil {
			return fmt.Errorf("storage: sync ingest log: %w", err)
		}
	}
	return syncDir(l.dir)
}

// lastSeq returns the highest seq of pnum in the log.
func (l *ingestLog) lastSeq(pnum uint32) (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.projs[pnum]; p != nil {
		return p.last()
	}
	return 0, false
}

// has reports whether the log holds record seq of pnum (not dropped yet).
func (l *ingestLog) has(pnum uint32, seq uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.projs[pnum]
	if p == nil {
		return false
	}
	_, found := slices.BinarySearchFunc(p.pending(), seq, func(e logEntry, seq uint64) int { return cmp.Compare(e.seq, seq) })
	return found
}

// pending returns up to max of pnum's records from seq from on (into dst).
func (l *ingestLog) pending(dst []logEntry, pnum uint32, from uint64, max int) []logEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.projs[pnum]
	if p == nil {
		return dst
	}
	ents := p.pending()
	i, _ := slices.BinarySearchFunc(ents, from, func(e logEntry, seq uint64) int {
		switch {
		case e.seq < seq:
			return -1
		case e.seq > seq:
			return 1
		}
		return 0
	})
	ents = ents[i:]
	return append(dst, ents[:min(len(ents), max)]...)
}

// read returns the record e, read into buf (grown if need be, and
// returned for the next read), checking its frame.
func (l *ingestLog) read(buf []byte, pnum uint32, e logEntry) (rec, grown []byte, err error) {
	n := frameHeader + e.n
	if cap(buf) < n {
		buf = make([]byte, n, n+n/4)
	}
	buf = buf[:n]
	if _, err := e.seg.f.ReadAt(buf, e.off); err != nil && !errors.Is(err, io.EOF) {
		return nil, buf, fmt.Errorf("storage: read ingest log: %w", err)
	}
	p, seq, rec, ok := parseFrame(buf)
	if !ok || p != pnum || seq != e.seq {
		return nil, buf, fmt.Errorf("%w: ingest log frame at %s:%d", ErrCorruptRecord, e.seg.path, e.off)
	}
	return rec, buf, nil
}

// drop forgets pnum's records below seq below (folded) and deletes every
// segment left with nothing to fold; it returns how many records it dropped.
func (l *ingestLog) drop(pnum uint32, below uint64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.projs[pnum]
	if p == nil {
		return 0
	}
	n := 0
	for p.head < len(p.ents) && p.ents[p.head].seq < below {
		e := &p.ents[p.head]
		e.seg.live--
		e.seg = nil
		p.head++
		n++
	}
	l.n -= n
	if p.head == len(p.ents) {
		// Keep the last entry's seq: the project's next number is one past it.
		// (An empty queue falls back on the checkpoint, which is at least that.)
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
// one being written, for removeDead: deleting a segment frees its pages
// from the page cache, milliseconds of system time for 16 MiB, which must
// not be spent holding the lock the committer indexes under, nor on the
// committer at all.
func (l *ingestLog) reclaimLocked() {
	if l.readOnly {
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

// removeDead deletes the segments reclaimLocked set aside. The aggregator
// calls it on its folding thread after each fold.
func (l *ingestLog) removeDead() {
	l.mu.Lock()
	dead := l.dead
	l.dead = nil
	l.mu.Unlock()
	for _, s := range dead {
		if s.f != nil {
			s.f.Close()
		}
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.log.Warn("ingest log: cannot delete a folded segment", "segment", s.path, "err", err)
		}
	}
}

// count returns how many records of pnum the log holds.
func (l *ingestLog) count(pnum uint32) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.projs[pnum]; p != nil {
		return len(p.pending())
	}
	return 0
}

// projects returns the project numbers with records in the log (into dst).
func (l *ingestLog) projects(dst []uint32) []uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	for pnum, p := range l.projs {
		if len(p.pending()) > 0 {
			dst = append(dst, pnum)
		}
	}
	return dst
}

// records returns how many records the log holds.
func (l *ingestLog) records() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

func (l *ingestLog) close() {
	l.removeDead()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.segs {
		if s.f != nil {
			s.f.Close()
			s.f = nil
		}
	}
}
