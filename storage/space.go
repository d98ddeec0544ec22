package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/ristretto/v2/z"
	"golang.org/x/sys/unix"

	"github.com/uptimizr/edge/core"
)

// Disk space: the store must never run Badger's mapped files out of disk.
//
// Badger writes its memtable logs (.mem), value logs (.vlog) and tables
// (.sst) through shared memory maps of files it creates at full size with
// ftruncate, so they start sparse. A store into a page of such a file that
// the filesystem cannot back raises SIGBUS in Badger's own goroutine, which
// Go cannot recover: the process dies. The ingest log writes with write(2)
// and gets ENOSPC instead, which fails its group cleanly. So:
//
//   - Pages Badger writes in the foreground are allocated (fallocate)
//     before the write is let through. The memtable log and value log being
//     appended to are kept allocated ahead of their write position (found
//     with SEEK_HOLE: the first page that is not written); each write of the
//     committer, the aggregator and the other large writers asks for room
//     for what it is about to write (admit), which is allocated then, or the
//     write is refused. The next memtable log is created ahead, empty, with
//     its first pages allocated beyond its end (FALLOC_FL_KEEP_SIZE):
//     Badger opens it without O_EXCL and, finding it empty, grows it with
//     ftruncate over those pages, so a memtable switch needs no new space.
//   - Tables (a memtable's flush, a compaction's output) are written whole
//     as soon as Badger creates them, in the background. They are
//     allocated when they are created (allocateMapped, through a hook in a
//     copy of ristretto's z.OpenMmapFile, third_party/ristretto): on a full
//     disk their creation fails with ENOSPC, which Badger takes (a flush is
//     retried every second, a compaction given up) instead of faulting.
//   - So that the background work then succeeds rather than waits, the store
//     keeps what it may still write (the reserve: the tables of the
//     memtables not flushed yet, and the largest compactions the LSM's
//     shape allows, estimated every second and as writes are admitted)
//     allocated in a file of its own, DATA_DIR/disk-reserve, which nothing
//     else can take. When free space falls under the floor, writes are
//     refused and the reserve file is deleted at once; it is made again
//     before writes are taken again. Close deletes it too: Badger flushes
//     its memtables as it closes.
//   - Free space is measured (statfs) before every group commit and every
//     fold, and every 20 ms besides, so a disk filled from outside is seen
//     within a commit under load. Every change between taking and refusing
//     writes is logged once, whichever of them sees it.
//
// What is left to chance: a value-log file Badger starts (every
// ValueLogFileSize bytes of large values) gets its first pages allocated
// best-effort, and so does a memtable log Badger starts itself (at open, or
// when the one made ahead could not be); a failed allocation there cannot
// be reported to Badger, which has no way to take it. The guard refuses the
// admitted writes that would follow, but a write Badger makes into such a
// file in the instant another process takes the last free page would fault.
// See docs/RATIONALE.md.

// allocateMapped is ristretto's z.Preallocate for Badger's files (the copy
// in third_party/ristretto): it runs when Badger creates a file it is about
// to map. A table is written whole as soon as it is created (a flush's, a
// compaction's): all of it is allocated, or its creation fails with ENOSPC,
// which Badger takes (a flush is retried every second, a compaction given
// up) where a fault in the mapping would kill the process. A memtable or
// value log gets its first pages (the guard keeps them allocated ahead
// after that): never an error, since Badger cannot take a failed memtable
// switch (it is left without a memtable), and the guard refuses the writes
// that would need more.
func allocateMapped(fd *os.File, sz int) error {
	name := fd.Name()
	n, strict := int64(sz), true
	switch {
	case strings.HasSuffix(name, ".mem"):
		n, strict = min(n, allocStep), false
	case strings.HasSuffix(name, ".vlog"):
		n, strict = min(n, 64<<10), false // the header; most value logs stay empty
	case strings.HasSuffix(name, discardFile):
		n = min(n, discardAlloc)
	}
	err := unix.Fallocate(int(fd.Fd()), 0, 0, n)
	if err == nil || !strict || errors.Is(err, unix.EOPNOTSUPP) {
		return nil
	}
	return err
}

// Badger's discard-stats file: 16 bytes for each value-log file, in a
// mapping of 1 MiB of which the first pages are used.
const (
	discardFile  = "DISCARD"
	discardAlloc = 64 << 10
)

var installAllocate sync.Once

// reserveFile is the reserve's file in the data dir.
const reserveFile = "disk-reserve"

// spaceTick is how often free space is looked at besides the commits.
const spaceTick = 20 * time.Millisecond

// idleMeasure is how many ticks (a second's) a store nothing was admitted
// to goes between measures of its files.
const idleMeasure = 50

// standingAhead is what a mapped file is kept allocated beyond the room
// admitted writes asked for: the small writes that are not admitted one by
// one (the registry's, Badger's own) use it.
const standingAhead = 256 << 10

// allocStep is how far beyond what is needed an allocation goes, so that a
// file is extended every megabyte or so, not on every write.
const allocStep = 1 << 20

// recoverMargin is how much more than the floor and the reserve must be free
// before writes are taken again, so the store does not flap at the edge.
const recoverMargin = 2 << 20

// spaceClass says who asks for room.
type spaceClass int

const (
	// forWrite: requests and the other writes; refused under the floor.
	forWrite spaceClass = iota
	// forFold: the aggregator. A fold frees ingest-log segments, so it may
	// go on under the floor as long as the reserve stays whole.
	forFold
)

// spaceGuard watches the data dir's free space and the files Badger maps.
type spaceGuard struct {
	dir   string
	floor int64 // the operator's floor (COLLECTOR_MIN_FREE_DISK), ≥ 0
	log   *slog.Logger
	dbs   []*mappedDB

	// refusing is read on every request (Writable) without a lock.
	refusing atomic.Bool
	free     atomic.Int64 // the last statfs

	mu       sync.Mutex // state changes, the reserve file
	why      string     // why writes are refused
	ballast  *os.File
	ballastN int64 // bytes the reserve file holds
	closed   bool

	statfs func() (int64, error) // tests may measure something else
	dirf   *os.File              // the data dir, for statfs
}

// mappedDB is one Badger database's mapped files.
type mappedDB struct {
	name string
	dir  string
	db   *badger.DB

	memTable  int64 // MemTableSize
	memBatch  int64 // the most a transaction writes to the memtable log
	nextAlloc int64 // what the next memtable log is created with
	vlogSize  int64 // ValueLogFileSize
	l0Tables  int   // NumLevelZeroTables: level 0 is compacted from this many
	valueMin  int64 // ValueThreshold: values at least this long go to the value log
	seekHole  bool  // SEEK_HOLE finds the write position

	mu       sync.Mutex
	mem      mappedFile   // the memtable log being written
	imm      []mappedFile // earlier memtable logs, until flushed
	next     mappedFile   // the next memtable log, made ahead (f nil if not yet)
	vlog     mappedFile   // the value log being written
	inflight [2]int64     // admitted bytes not written yet: memtable log, value log
	immNeed  int64        // the tables of imm
	compact  int64        // the compactions' (review)
	need     atomic.Int64 // all the background may write (reserveNow)
	// admits counts the writes let in; tick measures the files again when
	// it moved, or every idleMeasure ticks (the writes not admitted one by
	// one use the standing room): an idle store makes no SEEK_HOLE calls
	// between.
	admits, measured uint64
	idle             int
	measures         uint64 // how many times the files were measured
}

type mappedFile struct {
	id    int
	path  string
	f     *os.File
	size  int64 // as mapped
	alloc int64 // [0, alloc) is allocated
	// pos is where the written part ended when last measured (SEEK_HOLE,
	// which costs a walk of the page cache on some filesystems); since is
	// what was admitted since, written or not: pos+since bounds where
	// admitted writes end, so a measure is needed only near alloc.
	pos, since int64
}

func newSpaceGuard(dir string, minFree int64, log *slog.Logger) (*spaceGuard, error) {
	installAllocate.Do(func() { z.Preallocate = allocateMapped })
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	g := &spaceGuard{dir: dir, floor: max(minFree, 0), log: log, dirf: d}
	// fstatfs on the open dir: no path to copy for each commit's look.
	g.statfs = func() (int64, error) {
		var st unix.Statfs_t
		if err := unix.Fstatfs(int(d.Fd()), &st); err != nil {
			return 0, err
		}
		return int64(st.Bavail) * int64(st.Bsize), nil
	}
	return g, nil
}

func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// errDiskFull is what refused writes wrap.
func (g *spaceGuard) errDiskFull() error {
	g.mu.Lock()
	why := g.why
	g.mu.Unlock()
	if why == "" {
		why = "disk almost full"
	}
	return fmt.Errorf("%w: %s", core.ErrUnavailable, why)
}

// removeEmptyMemLogs deletes the empty memtable logs in dirs, before Badger
// opens them: the one the store made ahead and a crash left (Close deletes
// it), or one Badger had just created when the process died. Badger cannot
// open a database with one (it takes it for a memtable to replay). An
// empty log holds nothing.
func removeEmptyMemLogs(dirs ...string) error {
	return eachMemLog(dirs, func(p string, info os.FileInfo) error {
		if info.Size() != 0 {
			return nil
		}
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("storage: remove %s: %w", p, err)
		}
		return nil
	})
}

// eachMemLog calls f for every memtable log (*.mem) in dirs (a dir that does
// not exist has none).
func eachMemLog(dirs []string, f func(path string, info os.FileInfo) error) error {
	for _, dir := range dirs {
		ents, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return fmt.Errorf("storage: read %s: %w", dir, err)
		}
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".mem") {
				continue
			}
			if info, err := e.Info(); err == nil {
				if err := f(filepath.Join(dir, e.Name()), info); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// prepareOpen runs before Badger opens the databases in dirs (under the
// data dir's lock, after removeEmptyMemLogs): it deletes the reserve file
// (its space is Badger's to use while opening), then checks that Badger can
// open without running the disk full: a page for each file it starts, and
// room for the tables of the memtables it will replay and flush.
func (g *spaceGuard) prepareOpen(dirs ...string) error {
	need := int64(4 << 20)
	if err := eachMemLog(dirs, func(p string, info os.FileInfo) error {
		need += tableFor(writtenBytes(p, info.Size()))
		return nil
	}); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(g.dir, reserveFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("storage: remove the disk reserve: %w", err)
	}
	free, err := g.statfs()
	if err != nil {
		return nil // cannot tell: open as before
	}
	if free < need {
		return fmt.Errorf("storage: only %d bytes free in %s; opening needs %d (Badger maps its files and cannot write them on a full disk): free some space first", free, g.dir, need)
	}
	return nil
}

// writtenBytes is where the written part of a sparse file ends (its size
// when that cannot be told).
func writtenBytes(path string, size int64) int64 {
	f, err := os.Open(path)
	if err != nil {
		return size
	}
	defer f.Close()
	if n, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_HOLE); err == nil {
		return n
	}
	return size
}

// tableFor is a generous bound of the table Badger builds from a memtable
// whose log holds n bytes: the log holds every key and value once, plus
// headers; the table adds block offsets, the index and the bloom filter.
func tableFor(n int64) int64 { return n + n/8 + 64<<10 }

// attach starts watching the files of db, just opened from dir with bo:
// the memtable and value logs being written are allocated ahead, the
// discard-stats file whole, and the next memtable log is made ahead.
func (g *spaceGuard) attach(name, dir string, db *badger.DB, bo badger.Options) error {
	m := &mappedDB{
		name:     name,
		dir:      dir,
		db:       db,
		memTable: bo.MemTableSize,
		vlogSize: bo.ValueLogFileSize,
		valueMin: bo.ValueThreshold,
		l0Tables: bo.NumLevelZeroTables,
	}
	// Badger bounds a transaction to 15% of the memtable (by its own size
	// estimate); the log adds headers, the version and a checksum to each
	// entry, about a third more for the smallest entries.
	m.memBatch = bo.MemTableSize*15/100*3/2 + 64<<10
	// A memtable switch happens inside a write, which goes to the new log:
	// a write's worth and the standing room.
	m.nextAlloc = min(2*bo.MemTableSize, m.memBatch+standingAhead)
	m.seekHole = seekHoleWorks(dir)
	if !m.seekHole {
		g.log.Warn("this filesystem does not tell sparse files' holes (SEEK_HOLE): Badger's files are not allocated ahead, only the free-space floor protects them", "dir", dir)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.scan(); err != nil {
		return err
	}
	if p := filepath.Join(dir, discardFile); m.seekHole {
		// Made by an earlier version, or before the hook was there.
		if f, err := os.OpenFile(p, os.O_RDWR, 0); err == nil {
			if info, err := f.Stat(); err == nil {
				_ = unix.Fallocate(int(f.Fd()), 0, 0, min(info.Size(), discardAlloc))
			}
			f.Close()
		}
	}
	if m.seekHole {
		// Best effort: what fails here is retried by the first admit.
		_ = m.ensureLocked(&m.mem, 0, 0, true)
		_ = m.ensureLocked(&m.vlog, 1, 0, true)
		_ = m.makeNextLocked()
	}
	g.dbs = append(g.dbs, m)
	return nil
}

// seekHoleWorks reports whether SEEK_HOLE finds a hole in a sparse file in
// dir (filesystems without it say the whole file is data).
func seekHoleWorks(dir string) bool {
	f, err := os.CreateTemp(dir, ".seekhole-*")
	if err != nil {
		return false
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if f.Truncate(1<<20) != nil {
		return false
	}
	if _, err := f.WriteAt([]byte{1}, 0); err != nil {
		return false
	}
	n, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_HOLE)
	return err == nil && n < 1<<20
}

// scan finds the memtable and value logs being written (the highest
// numbered of each; Badger numbers them in increasing order) and the
// earlier memtable logs not flushed yet.
func (m *mappedDB) scan() error {
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		return fmt.Errorf("storage: read %s: %w", m.dir, err)
	}
	var mems []int
	vlog := -1
	for _, e := range ents {
		num, ext, ok := strings.Cut(e.Name(), ".")
		id, err := strconv.Atoi(num)
		if !ok || err != nil {
			continue
		}
		switch ext {
		case "mem":
			if info, err := e.Info(); err == nil && info.Size() > 0 {
				mems = append(mems, id)
			}
		case "vlog":
			vlog = max(vlog, id)
		}
	}
	slices.Sort(mems)
	for i, id := range mems {
		f, err := m.open(id, "mem")
		if err != nil {
			continue
		}
		if i == len(mems)-1 {
			m.mem = f
		} else {
			m.imm = append(m.imm, f)
		}
	}
	if vlog >= 0 {
		if f, err := m.open(vlog, "vlog"); err == nil {
			m.vlog = f
		}
	}
	return nil
}

func (m *mappedDB) path(id int, ext string) string {
	if ext == "mem" {
		return filepath.Join(m.dir, fmt.Sprintf("%05d.mem", id))
	}
	return filepath.Join(m.dir, fmt.Sprintf("%06d.vlog", id))
}

func (m *mappedDB) open(id int, ext string) (mappedFile, error) {
	p := m.path(id, ext)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return mappedFile{}, err
	}
	mf := mappedFile{id: id, path: p, f: f}
	mf.pos, mf.size = m.written(&mf)
	mf.alloc = mf.pos
	return mf, nil
}

// measure finds f's write position again; what is admitted and not written
// yet stays to come.
func (m *mappedDB) measure(f *mappedFile, kind int) {
	m.measures++
	f.pos, f.size = m.written(f)
	f.since = m.inflight[kind]
}

// written is where the written part of f ends, and f's size.
func (m *mappedDB) written(f *mappedFile) (pos, size int64) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.f.Fd()), &st); err != nil {
		return 0, 0
	}
	if !m.seekHole {
		return st.Blocks * 512, st.Size
	}
	n, err := unix.Seek(int(f.f.Fd()), 0, unix.SEEK_HOLE)
	if err != nil {
		return st.Size, st.Size
	}
	return n, st.Size
}

func fileSize(f *os.File) int64 {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return -1
	}
	return st.Size
}

// follow notices Badger's switches to a new memtable log (it took the one
// made ahead) and a new value log.
func (m *mappedDB) followLocked(vlog bool) {
	if m.next.f != nil {
		if fileSize(m.next.f) > 0 {
			if m.mem.f != nil {
				m.imm = append(m.imm, m.mem)
			}
			m.mem, m.next = m.next, mappedFile{}
			m.measure(&m.mem, 0) // its size is Badger's now
		}
	}
	// A second switch before this one was seen (only the store's own
	// unadmitted writes could fill a memtable that fast): Badger made that
	// log itself.
	for m.next.f == nil {
		if info, err := os.Stat(m.path(m.mem.id+1, "mem")); err != nil || info.Size() == 0 {
			break
		}
		f, err := m.open(m.mem.id+1, "mem")
		if err != nil {
			break
		}
		if m.mem.f != nil {
			m.imm = append(m.imm, m.mem)
		}
		m.mem = f
	}
	// The value log being written is mapped (and sized) at twice
	// ValueLogFileSize; Badger cuts it to what it holds when it moves on to
	// the next (when it is full, or holds ValueLogMaxEntries entries), which
	// only a write to it does.
	for vlog && m.vlog.f != nil {
		if fileSize(m.vlog.f) == 2*m.vlogSize {
			break
		}
		f, err := m.open(m.vlog.id+1, "vlog")
		if err != nil {
			break
		}
		m.vlog.f.Close()
		m.vlog = f
	}
}

// makeNextLocked makes the next memtable log ahead: an empty file with its
// first nextAlloc bytes allocated beyond its end.
func (m *mappedDB) makeNextLocked() error {
	if m.next.f != nil || m.mem.f == nil {
		return nil
	}
	id := m.mem.id + 1
	p := m.path(id, "mem")
	// Not O_EXCL: an empty one left by an allocation that failed is taken
	// up again. Badger opens it the same way; whoever is first creates it,
	// and allocating its pages is right whenever it happens.
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if info, err := f.Stat(); err != nil || info.Size() > 0 {
		f.Close() // Badger has started it: followLocked takes it
		return err
	}
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, m.nextAlloc); err != nil {
		// Left in place, empty (Badger takes it as a new log), for the
		// next try.
		f.Close()
		return err
	}
	m.next = mappedFile{id: id, path: p, f: f, alloc: m.nextAlloc}
	return nil
}

// ensureLocked allocates f ahead of where admitted writes may end: room for
// add bytes more and the standing room.
func (m *mappedDB) ensureLocked(f *mappedFile, kind int, add int64, exact bool) error {
	if f.f == nil || !m.seekHole {
		return nil
	}
	ahead := int64(standingAhead)
	need := func() int64 {
		if kind == 1 && f.pos <= 4<<10 && f.since+add == 0 {
			// A value log nothing was written to but its header (the
			// aggregates' always: their values stay in the LSM tree)
			// needs nothing ahead until a large value comes.
			return f.pos
		}
		return min(f.size, f.pos+f.since+add+ahead)
	}
	if exact || need() > f.alloc {
		m.measure(f, kind)
	}
	n := need()
	if n <= f.alloc {
		return nil
	}
	end := min(f.size, n+allocStep)
	from := max(f.alloc, f.pos)
	if from >= end {
		return nil
	}
	if err := unix.Fallocate(int(f.f.Fd()), 0, from, end-from); err != nil {
		return err
	}
	f.alloc = end
	return nil
}

// admission is a write let in (admit); done must be called once it is made.
type admission struct {
	m         *mappedDB
	mem, vlog int64
}

func (a admission) done() {
	if a.m == nil {
		return
	}
	a.m.mu.Lock()
	a.m.inflight[0] -= a.mem
	a.m.inflight[1] -= a.vlog
	a.m.mu.Unlock()
}

// admit readies db for a write of up to memBytes to its memtable log and
// vlogBytes to its value log; or returns an error wrapping
// core.ErrUnavailable, and then the write must not be made.
func (g *spaceGuard) admit(m *mappedDB, class spaceClass, memBytes, vlogBytes int64) (admission, error) {
	if err := g.check(class, memBytes+vlogBytes); err != nil {
		return admission{}, err
	}
	if m == nil || !m.seekHole {
		return admission{}, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.followLocked(vlogBytes > 0)
	err := m.makeNextLocked()
	if err == nil {
		err = m.ensureLocked(&m.mem, 0, memBytes, false)
	}
	if err == nil && vlogBytes > 0 {
		err = m.ensureLocked(&m.vlog, 1, vlogBytes, false)
	}
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			g.trip(fmt.Sprintf("cannot allocate %s's files ahead of its writes", m.name))
			return admission{}, g.errDiskFull()
		}
		return admission{}, fmt.Errorf("%w: allocate %s's files: %v", core.ErrUnavailable, m.name, err)
	}
	m.admits++
	m.inflight[0] += memBytes
	m.inflight[1] += vlogBytes
	m.mem.since += memBytes
	m.vlog.since += vlogBytes
	m.need.Store(m.immNeed + m.activeLocked() + m.compact)
	return admission{m, memBytes, vlogBytes}, nil
}

// check measures free space and says whether a write of about n bytes of
// class may go ahead; it trips the guard when it may not.
func (g *spaceGuard) check(class spaceClass, n int64) error {
	free, err := g.statfs()
	if err != nil {
		free = g.free.Load()
	}
	g.free.Store(free)
	switch class {
	case forFold:
		// Under the floor (the reserve file deleted) a fold may use what is
		// free beyond the background's needs.
		if g.refusing.Load() {
			if free-g.reserveNow()-n < 2*standingAhead {
				return g.errDiskFull()
			}
			return nil
		}
	}
	if g.refusing.Load() {
		return g.errDiskFull()
	}
	if free-g.unheld()-n < g.floor {
		g.trip("free disk space below the minimum")
		return g.errDiskFull()
	}
	return nil
}

// reserveNow is what Badger's background work may still write, as last
// estimated (review, and admit for the memtables being written).
func (g *spaceGuard) reserveNow() int64 {
	var n int64
	for _, m := range g.dbs {
		n += m.need.Load()
	}
	return n
}

// unheld is the part of the reserve the reserve file does not hold.
func (g *spaceGuard) unheld() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return max(0, g.reserveNow()-g.ballastN)
}

// trip starts refusing writes (if the store took them) and deletes the
// reserve file, so Badger's background work has its room.
func (g *spaceGuard) trip(why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.refusing.Load() {
		return
	}
	g.refusing.Store(true)
	g.why = "disk almost full"
	g.releaseLocked()
	g.log.Error("refusing writes: "+why, "free_bytes", g.free.Load(), "min_free_bytes", g.floor, "reserve_bytes", g.reserveNow())
}

func (g *spaceGuard) releaseLocked() {
	if g.ballast != nil {
		g.ballast.Close()
		g.ballast = nil
	}
	g.ballastN = 0
	if err := os.Remove(filepath.Join(g.dir, reserveFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		g.log.Error("cannot delete the disk reserve", "err", err)
	}
}

// tick looks at free space between commits (a disk filled from outside
// while the store is idle) and follows Badger's files.
func (g *spaceGuard) tick() {
	refusing := g.refusing.Load()
	for _, m := range g.dbs {
		m.mu.Lock()
		m.followLocked(true)
		_ = m.makeNextLocked()
		// Every tick while writes come, or are refused (Badger's own
		// writes may be all there is, and the way back needs them seen).
		exact := m.admits != m.measured || m.inflight != [2]int64{} || refusing || m.idle >= idleMeasure
		if exact {
			m.measured, m.idle = m.admits, 0
		} else {
			m.idle++
		}
		_ = m.ensureLocked(&m.mem, 0, 0, exact)
		_ = m.ensureLocked(&m.vlog, 1, 0, exact)
		m.mu.Unlock()
	}
	if !g.refusing.Load() {
		_ = g.check(forWrite, 0)
	}
}

// review, every second, estimates the reserve, resizes its file, drops the
// memtable logs Badger has flushed and deleted, and takes writes again once
// there is room for the floor, the reserve and a margin.
func (g *spaceGuard) review() {
	for _, m := range g.dbs {
		m.review()
	}
	need := g.reserveNow()
	free, err := g.statfs()
	if err != nil {
		return
	}
	g.free.Store(free)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	if !g.refusing.Load() {
		if err := g.resizeLocked(need); err != nil {
			g.mu.Unlock()
			g.trip("cannot hold the disk reserve")
			g.mu.Lock()
		}
		return
	}
	if free < g.floor+need+recoverMargin {
		return
	}
	if err := g.resizeLocked(need); err != nil {
		g.releaseLocked()
		return
	}
	// Logged first, as a refusal is: whoever sees writes taken again finds
	// the line written.
	g.log.Info("free disk space recovered: taking writes again", "free_bytes", free-need, "min_free_bytes", g.floor, "reserve_bytes", need)
	g.refusing.Store(false)
	g.why = ""
}

// resizeLocked makes the reserve file hold n bytes.
func (g *spaceGuard) resizeLocked(n int64) error {
	if g.ballast == nil {
		f, err := os.OpenFile(filepath.Join(g.dir, reserveFile), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		g.ballast, g.ballastN = f, 0
	}
	switch {
	case n > g.ballastN:
		if err := unix.Fallocate(int(g.ballast.Fd()), 0, g.ballastN, n-g.ballastN); err != nil {
			// Whatever was allocated is given back: a reserve that is not
			// whole is no reserve.
			_ = g.ballast.Truncate(g.ballastN)
			return err
		}
	case n < g.ballastN-allocStep:
		if err := g.ballast.Truncate(n); err != nil {
			return err
		}
	default:
		return nil
	}
	g.ballastN = n
	return nil
}

// review re-estimates what m's background work may still write (need):
// the table of each memtable not flushed yet — the one being written too,
// which Badger flushes when it is full or at close, and which admit keeps
// up to date as writes are let in — and the compactions the LSM's shape
// allows once those tables are in level 0.
func (m *mappedDB) review() {
	m.mu.Lock()
	defer m.mu.Unlock()
	var imm int64
	keep := m.imm[:0]
	for _, f := range m.imm {
		var st unix.Stat_t
		if unix.Fstat(int(f.f.Fd()), &st) == nil && st.Nlink == 0 {
			f.f.Close() // flushed and deleted
			continue
		}
		pos, _ := m.written(&f)
		imm += tableFor(pos)
		keep = append(keep, f)
	}
	clear(m.imm[len(keep):])
	m.imm = keep
	m.immNeed = imm
	if m.mem.f != nil {
		m.measure(&m.mem, 0)
	}
	active := m.activeLocked()
	m.compact = compactionNeed(m.db.Levels(), m.l0Tables, len(m.imm)+1, imm+active)
	m.need.Store(m.immNeed + active + m.compact)
}

// activeLocked is the table of the memtable being written, with what is
// admitted to it.
func (m *mappedDB) activeLocked() int64 {
	if m.mem.f == nil {
		return 0
	}
	return tableFor(min(m.mem.pos+m.mem.since, m.memTable+m.memBatch))
}

// compactionNeed bounds what the compactions that may run write before they
// delete their inputs. Level 0 is compacted into the base level once it
// holds l0Tables tables, all of it with all of the base level (level-0
// tables span the key space); a lower level compacts a table with the
// tables it overlaps in the next one, about the size ratio's worth. Two
// compactors run at once, on levels apart.
func compactionNeed(levels []badger.LevelInfo, l0Tables, flushes int, flushed int64) int64 {
	// flushes tables of flushed bytes in all are still to come to level 0.
	type job struct {
		from, to int
		n        int64
	}
	var jobs []job
	var l0 badger.LevelInfo
	for i, l := range levels {
		switch {
		case l.Level == 0:
			l0 = l
		case l.IsBaseLevel:
			if l0.NumTables+flushes >= l0Tables {
				jobs = append(jobs, job{0, l.Level, l0.Size + flushed + l.Size})
			}
		case l.Size > 0 && i+1 < len(levels):
			next := levels[i+1]
			jobs = append(jobs, job{l.Level, next.Level, l.TargetFileSize + min(next.Size, 12*max(next.TargetFileSize, l.TargetFileSize))})
		}
	}
	var best int64
	for i, a := range jobs {
		best = max(best, a.n)
		for _, b := range jobs[i+1:] {
			if a.to < b.from || b.to < a.from {
				best = max(best, a.n+b.n)
			}
		}
	}
	return best
}

// roomForGC reports whether value-log GC of m may run: it rewrites the live
// values of a file (at most half of it: gcDiscardRatio) into the value log
// being written before it deletes the old file, through Badger's own write
// path, which is not admitted write by write.
func (g *spaceGuard) roomForGC(m *mappedDB) bool {
	if g == nil || m == nil {
		return true
	}
	var largest int64
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		return false
	}
	m.mu.Lock()
	active := m.vlog.id
	m.mu.Unlock()
	for _, e := range ents {
		num, ext, ok := strings.Cut(e.Name(), ".")
		id, err := strconv.Atoi(num)
		if !ok || err != nil || ext != "vlog" || id == active {
			continue
		}
		if info, err := e.Info(); err == nil {
			largest = max(largest, info.Size())
		}
	}
	if largest == 0 {
		return true // nothing GC could pick
	}
	free, err := g.statfs()
	return err == nil && !g.refusing.Load() && free-g.unheld()-(largest/2+largest/8) >= g.floor
}

// writable reports whether writes are taken now.
func (g *spaceGuard) writable() error {
	if g.refusing.Load() {
		return g.errDiskFull()
	}
	return nil
}

// releaseForClose deletes the reserve file: Badger flushes its memtables
// when it closes, and that room is the reserve's.
func (g *spaceGuard) releaseForClose() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	g.releaseLocked()
}

// tooFullToFlush reports whether free space is short of a full memtable's
// table for one of the databases (their flushes at close are failing).
func (g *spaceGuard) tooFullToFlush() bool {
	free, err := g.statfs()
	if err != nil {
		return false
	}
	for _, m := range g.dbs {
		if free < m.memTable+m.memTable/16+64<<10 {
			return true
		}
	}
	return false
}

// close, after Badger has closed, removes the memtable logs made ahead and
// closes the files.
func (g *spaceGuard) close() {
	if g.dirf != nil {
		g.dirf.Close()
		g.dirf = nil
	}
	for _, m := range g.dbs {
		m.mu.Lock()
		if m.next.f != nil {
			if info, err := m.next.f.Stat(); err == nil && info.Size() == 0 {
				os.Remove(m.next.path)
			}
		}
		for _, f := range append(m.imm, m.mem, m.next, m.vlog) {
			if f.f != nil {
				f.f.Close()
			}
		}
		m.imm, m.mem, m.next, m.vlog = nil, mappedFile{}, mappedFile{}, mappedFile{}
		m.mu.Unlock()
	}
}

// walBytes bounds what an entry adds to a memtable log: its key with
// Badger's version, the value or a value pointer, the header and checksum.
func (m *mappedDB) walBytes(key, val int) int64 {
	if int64(val) >= m.valueMin {
		val = 12
	}
	return int64(key + 8 + val + 22 + 4)
}

// vlogBytes bounds what an entry adds to the value log (nothing when its
// value stays in the LSM tree).
func (m *mappedDB) vlogBytes(key, val int) int64 {
	if int64(val) < m.valueMin {
		return 0
	}
	return int64(key + 8 + val + 22 + 4)
}
