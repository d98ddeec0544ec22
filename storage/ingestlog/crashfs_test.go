package ingestlog

import (
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// crashFS is an FS in memory that records every call that changes it, and
// can build from the state after any prefix of them the disks a power cut
// could leave: POSIX durability and no more. A file's data is durable
// only up to its last Sync; what was written after may be there whole,
// in part (any 512-byte sectors of it), or not at all. A name made,
// removed, renamed or linked in a directory is durable once that
// directory is synced; the names not yet durable survive, if at all, as a
// prefix of them in order (a journal).
type crashFS struct {
	mu     sync.Mutex
	st     *fsState
	events []fsEvent
	// fail, if set, is asked before each event; an error it returns fails
	// the call, and nothing of it happens.
	fail func(ev fsEvent) error
}

type evKind uint8

const (
	evMkdir evKind = iota
	evCreate
	evWrite
	evTrunc
	evSync
	evRemove
	evRename
	evLink
	evSyncDir
)

func (k evKind) String() string {
	return [...]string{"mkdir", "create", "write", "truncate", "sync", "remove", "rename", "link", "syncdir"}[k]
}

type fsEvent struct {
	kind        evKind
	path, path2 string
	ino         int
	off         int64
	data        []byte
}

func (e fsEvent) String() string {
	return fmt.Sprintf("%s %s %s ino=%d off=%d len=%d", e.kind, e.path, e.path2, e.ino, e.off, len(e.data))
}

type inode struct {
	vol, dur []byte
	pend     []fsEvent // writes and truncates since the last sync
}

// nsOp is a change of a directory.
type nsOp struct {
	ev      fsEvent
	dir     string
	durable bool
}

type fsState struct {
	inodes  map[int]*inode
	nextIno int
	names   map[string]int
	dirs    map[string]bool
	ns      []nsOp
}

func newState() *fsState {
	return &fsState{inodes: map[int]*inode{}, names: map[string]int{}, dirs: map[string]bool{"/": true}}
}

func newCrashFS() *crashFS { return &crashFS{st: newState()} }

// crashFSFrom is a crashFS whose disk holds files (all durable).
func crashFSFrom(files map[string][]byte) *crashFS {
	c := newCrashFS()
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		c.st.mkdirAll(filepath.Dir(p), true)
		c.st.nextIno++
		c.st.inodes[c.st.nextIno] = &inode{vol: slices.Clone(files[p]), dur: slices.Clone(files[p])}
		c.st.names[p] = c.st.nextIno
		c.st.ns = append(c.st.ns, nsOp{ev: fsEvent{kind: evCreate, path: p, ino: c.st.nextIno}, dir: filepath.Dir(p), durable: true})
	}
	return c
}

func (s *fsState) mkdirAll(dir string, durable bool) {
	if s.dirs[dir] {
		return
	}
	s.mkdirAll(filepath.Dir(dir), durable)
	s.dirs[dir] = true
	s.ns = append(s.ns, nsOp{ev: fsEvent{kind: evMkdir, path: dir}, dir: filepath.Dir(dir), durable: durable})
}

// apply makes ev happen to the state.
func (s *fsState) apply(ev fsEvent) {
	switch ev.kind {
	case evMkdir:
		s.mkdirAll(ev.path, false)
	case evCreate:
		s.inodes[ev.ino] = &inode{}
		s.nextIno = max(s.nextIno, ev.ino)
		s.names[ev.path] = ev.ino
		s.ns = append(s.ns, nsOp{ev: ev, dir: filepath.Dir(ev.path)})
	case evWrite:
		in := s.inodes[ev.ino]
		in.vol = writeAt(in.vol, ev.off, ev.data)
		in.pend = append(in.pend, ev)
	case evTrunc:
		in := s.inodes[ev.ino]
		in.vol = truncate(in.vol, ev.off)
		in.pend = append(in.pend, ev)
	case evSync:
		in := s.inodes[ev.ino]
		in.dur, in.pend = slices.Clone(in.vol), nil
	case evRemove:
		delete(s.names, ev.path)
		s.ns = append(s.ns, nsOp{ev: ev, dir: filepath.Dir(ev.path)})
	case evRename:
		s.names[ev.path2] = s.names[ev.path]
		delete(s.names, ev.path)
		s.ns = append(s.ns, nsOp{ev: ev, dir: filepath.Dir(ev.path2)})
	case evLink:
		s.names[ev.path2] = s.names[ev.path]
		s.ns = append(s.ns, nsOp{ev: ev, dir: filepath.Dir(ev.path2)})
	case evSyncDir:
		for i := range s.ns {
			if s.ns[i].dir == ev.path {
				s.ns[i].durable = true
			}
		}
	}
}

func writeAt(b []byte, off int64, data []byte) []byte {
	if end := off + int64(len(data)); end > int64(len(b)) {
		b = append(b, make([]byte, end-int64(len(b)))...)
	}
	copy(b[off:], data)
	return b
}

func truncate(b []byte, size int64) []byte {
	if size <= int64(len(b)) {
		return b[:size]
	}
	return append(b, make([]byte, size-int64(len(b)))...)
}

// crashKind is how much of what was not durable a crash keeps.
type crashKind int

const (
	keepNothing crashKind = iota // only what was synced
	keepAll                      // everything (the process died, the kernel did not)
	keepTorn                     // every name; each file's last unsynced write half done
	keepRandom                   // a prefix of the names; random sectors of the writes
)

// image returns the files a crash of this kind would leave.
func (s *fsState) image(kind crashKind, rng *rand.Rand) map[string][]byte {
	var undurable int
	for _, op := range s.ns {
		if !op.durable {
			undurable++
		}
	}
	keepOps := 0
	switch kind {
	case keepAll, keepTorn:
		keepOps = undurable
	case keepRandom:
		keepOps = rng.IntN(undurable + 1)
	}
	names := map[string]int{}
	dirs := map[string]bool{"/": true}
	for _, op := range s.ns {
		if !op.durable {
			if keepOps == 0 {
				continue
			}
			keepOps--
		}
		switch ev := op.ev; ev.kind {
		case evMkdir:
			dirs[ev.path] = true
		case evCreate:
			names[ev.path] = ev.ino
		case evRemove:
			delete(names, ev.path)
		case evRename:
			if ino, ok := names[ev.path]; ok {
				names[ev.path2] = ino
				delete(names, ev.path)
			}
		case evLink:
			if ino, ok := names[ev.path]; ok {
				names[ev.path2] = ino
			}
		}
	}
	content := map[int][]byte{}
	out := map[string][]byte{}
	for p, ino := range names {
		if !dirs[filepath.Dir(p)] {
			continue
		}
		b, ok := content[ino]
		if !ok {
			b = s.inodes[ino].crashed(kind, rng)
			content[ino] = b
		}
		out[p] = slices.Clone(b)
	}
	return out
}

func (in *inode) crashed(kind crashKind, rng *rand.Rand) []byte {
	switch kind {
	case keepNothing:
		return slices.Clone(in.dur)
	case keepAll:
		return slices.Clone(in.vol)
	}
	b := slices.Clone(in.dur)
	lastWrite := -1
	for i, ev := range in.pend {
		if ev.kind == evWrite {
			lastWrite = i
		}
	}
	for i, ev := range in.pend {
		switch {
		case ev.kind == evTrunc:
			if kind == keepTorn || rng.IntN(2) == 0 {
				b = truncate(b, ev.off)
			}
		case kind == keepTorn && i == lastWrite:
			b = writeAt(b, ev.off, ev.data[:len(ev.data)/2])
		case kind == keepTorn:
			b = writeAt(b, ev.off, ev.data)
		default:
			// Sectors of 512 bytes, each there or not.
			for at := int64(0); at < int64(len(ev.data)); {
				end := min(int64(len(ev.data)), (ev.off+at)/512*512+512-ev.off)
				if rng.IntN(2) == 0 {
					b = writeAt(b, ev.off+at, ev.data[at:end])
				}
				at = end
			}
		}
	}
	return b
}

// do records ev and applies it, unless fail refuses it.
func (c *crashFS) do(ev fsEvent) error {
	if c.fail != nil {
		if err := c.fail(ev); err != nil {
			return err
		}
	}
	ev.data = slices.Clone(ev.data)
	c.st.apply(ev)
	c.events = append(c.events, ev)
	return nil
}

func notExist(op, p string) error { return &fs.PathError{Op: op, Path: p, Err: fs.ErrNotExist} }

func (c *crashFS) MkdirAll(dir string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st.dirs[dir] {
		return nil
	}
	return c.do(fsEvent{kind: evMkdir, path: dir})
}

func (c *crashFS) ReadDir(dir string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.st.dirs[dir] {
		return nil, notExist("readdir", dir)
	}
	var names []string
	for p := range c.st.names {
		if filepath.Dir(p) == dir {
			names = append(names, filepath.Base(p))
		}
	}
	for d := range c.st.dirs {
		if d != dir && filepath.Dir(d) == dir {
			names = append(names, filepath.Base(d))
		}
	}
	slices.Sort(names)
	return names, nil
}

func (c *crashFS) ReadFile(name string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ino, ok := c.st.names[name]
	if !ok {
		return nil, notExist("open", name)
	}
	return slices.Clone(c.st.inodes[ino].vol), nil
}

func (c *crashFS) Create(name string) (File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.st.dirs[filepath.Dir(name)] {
		return nil, notExist("create", name)
	}
	if ino, ok := c.st.names[name]; ok {
		if err := c.do(fsEvent{kind: evTrunc, path: name, ino: ino, off: 0}); err != nil {
			return nil, err
		}
		return &crashFile{c: c, ino: ino, name: name}, nil
	}
	ino := c.st.nextIno + 1
	if err := c.do(fsEvent{kind: evCreate, path: name, ino: ino}); err != nil {
		return nil, err
	}
	return &crashFile{c: c, ino: ino, name: name}, nil
}

func (c *crashFS) Open(name string) (File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ino, ok := c.st.names[name]
	if !ok {
		return nil, notExist("open", name)
	}
	return &crashFile{c: c, ino: ino, name: name, ro: true}, nil
}

func (c *crashFS) Truncate(name string, size int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ino, ok := c.st.names[name]
	if !ok {
		return notExist("truncate", name)
	}
	return c.do(fsEvent{kind: evTrunc, path: name, ino: ino, off: size})
}

func (c *crashFS) Remove(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.st.names[name]; !ok {
		return notExist("remove", name)
	}
	return c.do(fsEvent{kind: evRemove, path: name})
}

func (c *crashFS) Rename(from, to string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.st.names[from]; !ok {
		return notExist("rename", from)
	}
	return c.do(fsEvent{kind: evRename, path: from, path2: to})
}

func (c *crashFS) Link(from, to string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.st.names[from]; !ok {
		return notExist("link", from)
	}
	if _, ok := c.st.names[to]; ok {
		return &fs.PathError{Op: "link", Path: to, Err: fs.ErrExist}
	}
	if !c.st.dirs[filepath.Dir(to)] {
		return notExist("link", to)
	}
	return c.do(fsEvent{kind: evLink, path: from, path2: to})
}

func (c *crashFS) SyncDir(dir string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.st.dirs[dir] {
		return notExist("sync", dir)
	}
	return c.do(fsEvent{kind: evSyncDir, path: dir})
}

// files returns what the disk holds now (for an Open of it in another
// crashFS).
func (c *crashFS) files() map[string][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.image(keepAll, nil)
}

type crashFile struct {
	c    *crashFS
	ino  int
	name string
	ro   bool
}

func (f *crashFile) ReadAt(p []byte, off int64) (int, error) {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	b := f.c.st.inodes[f.ino].vol
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *crashFile) WriteAt(p []byte, off int64) (int, error) {
	if f.ro {
		return 0, fmt.Errorf("write %s: file open read-only", f.name)
	}
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	if err := f.c.do(fsEvent{kind: evWrite, path: f.name, ino: f.ino, off: off, data: p}); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (f *crashFile) Truncate(size int64) error {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	return f.c.do(fsEvent{kind: evTrunc, path: f.name, ino: f.ino, off: size})
}

func (f *crashFile) Sync() error {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	return f.c.do(fsEvent{kind: evSync, path: f.name, ino: f.ino})
}

func (f *crashFile) Close() error { return nil }

// replay builds, event by event, the states after each prefix of events
// (seeded with files, all durable), calling at(k, state) after the first
// k events for every k from 0 to len(events).
func replay(files map[string][]byte, events []fsEvent, at func(k int, st *fsState)) {
	st := crashFSFrom(files).st
	at(0, st)
	for k, ev := range events {
		st.apply(ev)
		at(k+1, st)
	}
}

func describeImage(img map[string][]byte) string {
	var b strings.Builder
	paths := make([]string, 0, len(img))
	for p := range img {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		fmt.Fprintf(&b, "%s (%d bytes)\n", p, len(img[p]))
	}
	return b.String()
}
