package ingestlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"slices"
)

// A Reader takes records from the log in order, per project, and keeps its
// own checkpoint in the log's folder: its position in each project, made
// durable by Commit. The log keeps a record until every reader (and the
// primary, Drop) is past it, so a reader that falls behind holds segments
// on disk; one that crashes starts again from its last commit, and so sees
// again at most what it read after that (at-least-once: its consumer
// dedups, as JetStream does by message id).
type Reader struct {
	l    *Log
	idx  int // in projectLog.below
	name string
	// next is where reading goes on; committed, what Commit last made
	// durable (under l.mu).
	next, committed map[uint32]uint64
	dirSynced       bool // the readers folder's name is durable (Commit only)
	// fresh: no checkpoint was found at open (a reader new to this log).
	fresh bool
	// behind and behindBytes count the records (and their frames' bytes)
	// at or past the committed positions (under l.mu).
	behind      int
	behindBytes int64
}

// Reader returns the reader named in Options.Readers, or nil.
func (l *Log) Reader(name string) *Reader {
	for _, r := range l.readers {
		if r.name == name {
			return r
		}
	}
	return nil
}

// The checkpoint file: readerMagic, then count u32, then count times
// (project u32, position u64), then crc32c u32 of all before it.
const readerMagic = "UEIRDR1\n"

func (r *Reader) path() string { return filepath.Join(r.l.dir, ReadersDir, r.name) }

// load reads the reader's checkpoint. One that does not check out (which a
// file replaced by rename should never be) is read as none: the reader
// starts from the log's oldest record, which at worst sends some again.
func (r *Reader) load() error {
	b, err := r.l.fs.ReadFile(r.path())
	if errors.Is(err, errNotExist) {
		r.fresh = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("ingestlog: read checkpoint of reader %s: %w", r.name, err)
	}
	pos, ok := parseCheckpoint(b)
	if !ok {
		r.l.log.Error("ingest log: a reader's checkpoint does not check out; it starts again from the oldest record in the log", "reader", r.name, "file", r.path())
		return nil
	}
	r.committed = pos
	r.next = make(map[uint32]uint64, len(pos))
	for p, v := range pos {
		r.next[p] = v
	}
	return nil
}

func parseCheckpoint(b []byte) (map[uint32]uint64, bool) {
	if len(b) < len(readerMagic)+8 || string(b[:len(readerMagic)]) != readerMagic {
		return nil, false
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, false
	}
	rest := body[len(readerMagic):]
	n := binary.LittleEndian.Uint32(rest)
	rest = rest[4:]
	if uint64(len(rest)) != uint64(n)*12 {
		return nil, false
	}
	pos := make(map[uint32]uint64, n)
	for ; len(rest) > 0; rest = rest[12:] {
		pos[binary.LittleEndian.Uint32(rest)] = binary.LittleEndian.Uint64(rest[4:])
	}
	return pos, true
}

func appendCheckpoint(dst []byte, pos map[uint32]uint64) []byte {
	dst = append(dst, readerMagic...)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(pos)))
	keys := make([]uint32, 0, len(pos))
	for p := range pos {
		keys = append(keys, p)
	}
	slices.Sort(keys)
	for _, p := range keys {
		dst = binary.LittleEndian.AppendUint32(dst, p)
		dst = binary.LittleEndian.AppendUint64(dst, pos[p])
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst, castagnoli))
}

// Fresh reports whether the log had no checkpoint of the reader when it
// was opened: a reader new to it, which starts at every project's first
// record unless told otherwise (Advance, Commit).
func (r *Reader) Fresh() bool { return r.fresh }

// Backlog returns how many records, and how many bytes of frames, the log
// holds at or past the reader's committed positions.
func (r *Reader) Backlog() (records int, bytes int64) {
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	return r.behind, r.behindBytes
}

// Name returns the reader's name.
func (r *Reader) Name() string { return r.name }

// Next returns the seq reading goes on from in pnum.
func (r *Reader) Next(pnum uint32) uint64 {
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	return r.next[pnum]
}

// Pending returns up to max of pnum's records from the reader's position
// on (into dst).
func (r *Reader) Pending(dst []Entry, pnum uint32, max int) []Entry {
	return r.l.Pending(dst, pnum, r.Next(pnum), max)
}

// Projects returns the projects with records the reader has not read
// (into dst).
func (r *Reader) Projects(dst []uint32) []uint32 {
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	for pnum, p := range r.l.projs {
		if last, ok := p.last(); ok && last >= r.next[pnum] {
			dst = append(dst, pnum)
		}
	}
	return dst
}

// Advance moves the reader's position in pnum to below (never back): the
// records below it are done with once Commit returns.
func (r *Reader) Advance(pnum uint32, below uint64) {
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	r.next[pnum] = max(r.next[pnum], below)
}

// Commit makes the reader's positions durable (a new file, synced, renamed
// over the old one, and the folder synced), then lets the log go of what
// every reader is past. After a crash the reader goes on from the last
// positions Commit returned for, or later ones.
func (r *Reader) Commit() error {
	l := r.l
	if l.ro {
		return ErrReadOnly
	}
	l.mu.Lock()
	pos := make(map[uint32]uint64, len(r.next))
	for p, v := range r.next {
		pos[p] = v
	}
	l.mu.Unlock()
	dir := filepath.Join(l.dir, ReadersDir)
	if err := l.fs.MkdirAll(dir); err != nil {
		return fmt.Errorf("ingestlog: create %s: %w", dir, err)
	}
	tmp := r.path() + tmpSuffix
	f, err := l.fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("ingestlog: checkpoint of reader %s: %w", r.name, err)
	}
	_, err = f.WriteAt(appendCheckpoint(nil, pos), 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = l.fs.Rename(tmp, r.path())
	}
	if err == nil && !r.dirSynced {
		// The folder's own name, the first time.
		if err = l.fs.SyncDir(l.dir); err == nil {
			r.dirSynced = true
		}
	}
	if err == nil {
		err = l.fs.SyncDir(dir) // the rename
	}
	if err != nil {
		return fmt.Errorf("ingestlog: checkpoint of reader %s: %w", r.name, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for p, v := range pos {
		old := r.committed[p]
		if v <= old {
			continue
		}
		r.committed[p] = v
		if pl := l.projs[p]; pl != nil {
			r.passLocked(pl, old, v)
			pl.below[r.idx] = max(pl.below[r.idx], v)
			l.advanceLocked(pl)
		}
	}
	return nil
}

// passLocked takes the records of p from seq from to below out of the
// reader's backlog.
func (r *Reader) passLocked(p *projectLog, from, below uint64) {
	ents := p.pending()
	i, _ := slices.BinarySearchFunc(ents, from, entryCmp)
	for ; i < len(ents) && ents[i].Seq < below; i++ {
		r.behind--
		r.behindBytes -= int64(frameHeader + ents[i].n)
	}
}
