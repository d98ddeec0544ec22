package storage

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	"time"
)

// Incremental writeback. Badger writes its value-log and memtable files
// through shared memory maps and leaves them to the kernel, which writes
// dirty pages back after half a minute; but when a value-log file is full,
// Badger msyncs it before starting the next one, inside its single write
// path. Left alone, that msync writes the whole file (16 MiB for the log
// database, filled in about a second under load) while every commit waits.
// Like RocksDB's bytes_per_sync, the store asks the kernel to start writing
// the files being written every writebackInterval (sync_file_range with
// SYNC_FILE_RANGE_WRITE: it starts the I/O and does not wait for it), so
// the msync at a file's end finds little left to write. It costs no
// durability: it only starts earlier writes the kernel would make anyway.

// writebackInterval is how often the files being written are pushed.
const writebackInterval = 20 * time.Millisecond

// writeback pushes the value-log and memtable files of some database dirs.
type writeback struct {
	dirs  []string
	files map[string]*os.File
	seen  map[string]bool
	ticks int // pushes so far
}

// listEvery is how many pushes reuse the files the last listing found: a
// value-log file lasts about a second at full load, so a new one goes
// without pushes for at most that long, and listing (which allocates)
// happens once a second, not fifty times.
const listEvery = 50

func newWriteback(dirs ...string) *writeback {
	return &writeback{dirs: dirs, files: map[string]*os.File{}, seen: map[string]bool{}}
}

// push starts writeback of the newest value-log and memtable file of each
// dir (the ones Badger appends to), listing the dirs every listEvery pushes.
func (w *writeback) push() {
	if w.ticks%listEvery == 0 {
		w.list()
	}
	w.ticks++
	for _, f := range w.files {
		_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
}

// list finds the newest value-log and memtable file of each dir, opening
// the new ones and closing those that are gone or no longer newest.
func (w *writeback) list() {
	clear(w.seen)
	for _, dir := range w.dirs {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		// Badger numbers files in increasing order: the highest of each
		// kind is the one being written.
		var vlog, mem string
		var vlogN, memN uint64
		for _, e := range ents {
			n := e.Name()
			num, ext, ok := strings.Cut(n, ".")
			id, err := strconv.ParseUint(num, 10, 64)
			if !ok || err != nil {
				continue
			}
			switch {
			case ext == "vlog" && (vlog == "" || id > vlogN):
				vlog, vlogN = n, id
			case ext == "mem" && (mem == "" || id > memN):
				mem, memN = n, id
			}
		}
		for _, n := range []string{vlog, mem} {
			if n == "" {
				continue
			}
			p := filepath.Join(dir, n)
			w.seen[p] = true
			if w.files[p] == nil {
				f, err := os.Open(p)
				if err != nil {
					continue
				}
				w.files[p] = f
			}
		}
	}
	for p, f := range w.files {
		if !w.seen[p] {
			f.Close()
			delete(w.files, p)
		}
	}
}

func (w *writeback) close() {
	for p, f := range w.files {
		f.Close()
		delete(w.files, p)
	}
}
