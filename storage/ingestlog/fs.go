package ingestlog

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// FS is what the log needs of a file system: the few calls whose order and
// durability its crash safety rests on. OS is the real one; the power-cut
// suite gives it one that records every write and sync and builds, from any
// prefix of them, the disk a crash could leave.
//
// Durability follows POSIX, no more: data written to a file is durable once
// File.Sync returns; a name created, removed, renamed or linked in a
// directory is durable once SyncDir of that directory returns.
type FS interface {
	MkdirAll(dir string) error
	// ReadDir returns the names in dir (a missing dir is an error wrapping
	// os.ErrNotExist).
	ReadDir(dir string) ([]string, error)
	ReadFile(name string) ([]byte, error)
	// Create opens name for reading and writing, created or emptied.
	Create(name string) (File, error)
	// Open opens name read-only.
	Open(name string) (File, error)
	Truncate(name string, size int64) error
	Remove(name string) error
	// Rename replaces to with from, atomically.
	Rename(from, to string) error
	// Link gives from's file a second name, to.
	Link(from, to string) error
	SyncDir(dir string) error
}

// File is an open file of an FS.
type File interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	Truncate(size int64) error
	// Sync makes the file's data durable (fdatasync).
	Sync() error
	Close() error
}

// OS is the operating system's file system.
type OS struct{}

func (OS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o700) }

func (OS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, err
}

func (OS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

func (OS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (OS) Open(name string) (File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (OS) Truncate(name string, size int64) error { return os.Truncate(name, size) }
func (OS) Remove(name string) error               { return os.Remove(name) }
func (OS) Rename(from, to string) error           { return os.Rename(from, to) }
func (OS) Link(from, to string) error             { return os.Link(from, to) }

func (OS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

type osFile struct{ *os.File }

// Sync is fdatasync: the log's files are preallocated by nothing and grow
// by appends, whose new size fdatasync makes durable with the data.
func (f osFile) Sync() error {
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return fmt.Errorf("fdatasync %s: %w", f.Name(), err)
	}
	return nil
}
