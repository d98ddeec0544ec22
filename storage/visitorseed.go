package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/storage/ingestlog"
)

// The visitor-salt ratchet's state lives in one small file of the data dir,
// DATA_DIR/visitor-seed (mode 0600):
//
//	uptimizr-visitor-seed 1
//	current YYYY-MM-DD <64 hex digits>
//	pending YYYY-MM-DD <64 hex digits>     (only while a re-key waits for its day)
//
// A save writes visitor-seed.new and fsyncs it, overwrites the old file with
// zeros and fsyncs that, then renames the new file over it and fsyncs the
// directory: the old day's seed is overwritten before its file is removed,
// and at every instant one of the two files holds a whole valid state. Load
// finishes a save that a crash cut short.

// VisitorSeedFile is the name of the ratchet's state file in the data dir.
const VisitorSeedFile = "visitor-seed"

const (
	seedHeader  = "uptimizr-visitor-seed 1\n"
	seedNewName = VisitorSeedFile + ".new"
)

// ErrNoVisitorSeed is returned by LoadVisitorSeed when the data dir holds no
// seed.
var ErrNoVisitorSeed = errors.New("no visitor seed in the data dir")

// VisitorSeedPath is the state file's path in dir.
func VisitorSeedPath(dir string) string { return filepath.Join(dir, VisitorSeedFile) }

// LoadVisitorSeed reads the ratchet's state from dir, finishing a save cut
// short by a crash. pending is nil unless a re-key is scheduled.
func LoadVisitorSeed(dir string) (cur core.DaySeed, pending *core.DaySeed, err error) {
	main, newer := VisitorSeedPath(dir), filepath.Join(dir, seedNewName)
	c2, p2, errNew := readSeedFile(newer)
	if errNew == nil {
		// A save was cut short after its new file was whole: finish it.
		if err := wipeFile(main); err != nil && !errors.Is(err, os.ErrNotExist) {
			c2.Wipe()
			return cur, nil, err
		}
		if err := os.Rename(newer, main); err != nil {
			c2.Wipe()
			return cur, nil, err
		}
		if err := syncDir(dir); err != nil {
			return cur, nil, err
		}
		return c2, p2, nil
	}
	if !errors.Is(errNew, os.ErrNotExist) {
		// A torn new file: the old state is whole. Wipe the torn one.
		if err := wipeFile(newer); err != nil {
			return cur, nil, err
		}
	}
	cur, pending, err = readSeedFile(main)
	if errors.Is(err, os.ErrNotExist) {
		return cur, nil, ErrNoVisitorSeed
	}
	return cur, pending, err
}

// ReadVisitorSeed reads the ratchet's state from dir without changing
// anything, for a reader beside the node that owns the dir (a save may be
// under way: the newer of the two files that is whole wins).
func ReadVisitorSeed(dir string) (cur core.DaySeed, pending *core.DaySeed, err error) {
	c1, p1, err1 := readSeedFile(VisitorSeedPath(dir))
	c2, p2, err2 := readSeedFile(filepath.Join(dir, seedNewName))
	switch {
	case err2 == nil && (err1 != nil || c2.Day >= c1.Day):
		c1.Wipe()
		if p1 != nil {
			p1.Wipe()
		}
		return c2, p2, nil
	case err1 == nil:
		c2.Wipe()
		if p2 != nil {
			p2.Wipe()
		}
		return c1, p1, nil
	case errors.Is(err1, os.ErrNotExist) && errors.Is(err2, os.ErrNotExist):
		return cur, nil, ErrNoVisitorSeed
	}
	return cur, nil, err1
}

// SaveVisitorSeed replaces the ratchet's state in dir with cur (and pending,
// if not nil), wiping the state it replaces.
func SaveVisitorSeed(dir string, cur, pending *core.DaySeed) error {
	buf := encodeSeedFile(cur, pending)
	defer core.Wipe(buf)
	newer := filepath.Join(dir, seedNewName)
	f, err := os.OpenFile(newer, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("visitor seed: %w", err)
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		wipeFile(newer)
		return fmt.Errorf("visitor seed: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		wipeFile(newer)
		return fmt.Errorf("visitor seed: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("visitor seed: %w", err)
	}
	main := VisitorSeedPath(dir)
	if err := OverwriteZeros(main); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("visitor seed: wiping the old state: %w", err)
	}
	if err := os.Rename(newer, main); err != nil {
		return fmt.Errorf("visitor seed: %w", err)
	}
	return syncDir(dir)
}

// encodeSeedFile is a state file's content.
func encodeSeedFile(cur, pending *core.DaySeed) []byte {
	buf := make([]byte, 0, 256)
	buf = append(buf, seedHeader...)
	buf = append(buf, "current "...)
	buf = cur.AppendText(buf)
	buf = append(buf, '\n')
	if pending != nil {
		buf = append(buf, "pending "...)
		buf = pending.AppendText(buf)
		buf = append(buf, '\n')
	}
	return buf
}

// readSeedFile parses one state file, wiping every buffer that held the
// seeds' text.
func readSeedFile(path string) (cur core.DaySeed, pending *core.DaySeed, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return cur, nil, err
	}
	defer core.Wipe(b)
	cur, pending, err = parseSeedFile(b)
	if err != nil {
		return cur, nil, fmt.Errorf("%s: %w", path, err)
	}
	return cur, pending, nil
}

// parseSeedFile parses a state file's content.
func parseSeedFile(b []byte) (cur core.DaySeed, pending *core.DaySeed, err error) {
	bad := func(why string) error { return errors.New(why) }
	if !bytes.HasPrefix(b, []byte(seedHeader)) {
		if len(bytes.Trim(b, "\x00")) == 0 {
			return cur, nil, bad("wiped (all zeros)")
		}
		return cur, nil, bad("not a visitor seed file")
	}
	rest := b[len(seedHeader):]
	seen := false
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			cur.Wipe()
			if pending != nil {
				pending.Wipe()
			}
			return core.DaySeed{}, nil, bad("torn (no line end)")
		}
		line := rest[:i]
		rest = rest[i+1:]
		kind, val, ok := bytes.Cut(line, []byte{' '})
		if !ok {
			return core.DaySeed{}, nil, bad("malformed line")
		}
		var dst *core.DaySeed
		switch string(kind) {
		case "current":
			if seen {
				return core.DaySeed{}, nil, bad("two current seeds")
			}
			seen = true
			dst = &cur
		case "pending":
			if pending != nil || !seen {
				return core.DaySeed{}, nil, bad("a pending seed must follow the one current seed")
			}
			pending = new(core.DaySeed)
			dst = pending
		default:
			return core.DaySeed{}, nil, bad("unknown line " + string(kind))
		}
		day, hexText, ok := bytes.Cut(val, []byte{' '})
		if !ok {
			return core.DaySeed{}, nil, bad("malformed line")
		}
		d, err := core.ParseDay(string(day))
		if err != nil {
			return core.DaySeed{}, nil, bad(err.Error())
		}
		dst.Day = d
		if err := dst.ParseSeed(hexText); err != nil {
			cur.Wipe()
			return core.DaySeed{}, nil, bad(err.Error())
		}
	}
	if !seen {
		if pending != nil {
			pending.Wipe()
		}
		return core.DaySeed{}, nil, bad("no current seed")
	}
	return cur, pending, nil
}

// OverwriteZeros overwrites the whole of path with zeros and fsyncs it
// (secrets' files, before they are replaced or removed).
func OverwriteZeros(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	zeros := make([]byte, 4096)
	for off := int64(0); off < fi.Size(); off += int64(len(zeros)) {
		n := min(int64(len(zeros)), fi.Size()-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return err
		}
	}
	return f.Sync()
}

// wipeFile overwrites path with zeros, fsyncs it, removes it and fsyncs its
// directory.
func wipeFile(path string) error {
	if err := OverwriteZeros(path); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// WipeFile is wipeFile for the command line (the dev secret it replaces).
func WipeFile(path string) error { return wipeFile(path) }

// syncDir makes the names in dir durable.
func syncDir(dir string) error {
	if err := (ingestlog.OS{}).SyncDir(dir); err != nil {
		return fmt.Errorf("storage: sync %s: %w", dir, err)
	}
	return nil
}
