package storage

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func vlogBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	paths, _ := filepath.Glob(filepath.Join(dir, "*.vlog"))
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func TestValueLogGCInterval(t *testing.T) {
	for _, c := range []struct {
		in, want time.Duration
	}{{0, DefaultValueLogGCInterval}, {-1, 0}, {time.Second, time.Second}} {
		o := Options{ValueLogGCInterval: c.in}
		if got := o.gcInterval(); got != c.want {
			t.Errorf("interval %v → %v, want %v", c.in, got, c.want)
		}
	}
	if DefaultValueLogGCInterval != 5*time.Minute {
		t.Fatal("the documented default is 5 minutes")
	}
}

// TestValueLogGCRunsAndStopsOnClose: the scheduled GC tries on every tick,
// and Close stops it.
func TestValueLogGCRunsAndStopsOnClose(t *testing.T) {
	s := openTest(t, Options{ValueLogGCInterval: 5 * time.Millisecond})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if runs, _ := s.ValueLogGCStats(); runs >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("value-log GC never ran")
		}
		time.Sleep(5 * time.Millisecond)
	}
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop value-log GC")
	}
	runs, _ := s.ValueLogGCStats()
	time.Sleep(30 * time.Millisecond)
	if again, _ := s.ValueLogGCStats(); again != runs {
		t.Fatalf("GC ran after Close: %d → %d", runs, again)
	}
}

func TestValueLogGCDisabled(t *testing.T) {
	s := openTest(t, Options{ValueLogGCInterval: -1})
	time.Sleep(50 * time.Millisecond)
	if runs, _ := s.ValueLogGCStats(); runs != 0 {
		t.Fatalf("disabled GC ran %d times", runs)
	}
	dir := t.TempDir()
	openTest(t, Options{Dir: dir}).Close()
	ro := openTest(t, Options{Dir: dir, ReadOnly: true, ValueLogGCInterval: time.Millisecond})
	time.Sleep(20 * time.Millisecond)
	if runs, _ := ro.ValueLogGCStats(); runs != 0 {
		t.Fatalf("read-only store ran GC %d times", runs)
	}
}

// TestValueLogGCReclaimsExpiredChunks shows the space of expired raw chunks
// coming back through the scheduled GC. The store's own Badger settings use
// 256 MiB value-log files; to stay small the test runs the store's GC loop on
// a Badger with 1 MiB files, filled with raw-chunk keys whose values (4 KiB,
// incompressible, so in the value log) mostly carry a 1 s TTL.
func TestValueLogGCReclaimsExpiredChunks(t *testing.T) {
	if raceEnabled {
		t.Skip("time-bound on Badger's background work; too slow under the race detector")
	}
	dir := t.TempDir()
	open := func() *badger.DB {
		db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil).
			WithValueThreshold(1 << 10).WithValueLogFileSize(1 << 20).
			WithMemTableSize(1 << 20).WithNumLevelZeroTables(1))
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	key := func(i int) []byte {
		k := RawPrefix(1, []byte("sess"))
		k = binary.BigEndian.AppendUint64(k, uint64(i))
		k = binary.BigEndian.AppendUint64(k, uint64(i))
		return binary.BigEndian.AppendUint16(k, 0)
	}
	db := open()
	val := make([]byte, 4<<10)
	rand.Read(val)
	const n, keepEvery = 2000, 10
	for i := 0; i < n; i++ {
		e := badger.NewEntry(key(i), val)
		if i%keepEvery != 0 {
			e = e.WithTTL(time.Second)
		}
		if err := db.Update(func(txn *badger.Txn) error { return txn.SetEntry(e) }); err != nil {
			t.Fatal(err)
		}
	}
	before := vlogBytes(t, dir)
	time.Sleep(1500 * time.Millisecond)
	// Compactions find the expired keys and count their dead bytes per
	// value-log file; a serving node compacts as it takes writes. Here, two
	// flushed tables and a Flatten force one.
	for i := 0; i < 2; i++ {
		if i > 0 {
			db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("m x"), []byte("y")) })
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db = open()
	}
	if err := db.Flatten(1); err != nil {
		t.Fatal(err)
	}

	s := &Store{db: db, opts: Options{Dir: dir, ValueLogGCInterval: 10 * time.Millisecond}, log: slog.New(slog.DiscardHandler), stop: make(chan struct{})}
	s.startValueLogGC()
	defer s.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, rw := s.ValueLogGCStats(); rw > 0 && vlogBytes(t, dir) < before/2 {
			break
		}
		if time.Now().After(deadline) {
			runs, rw := s.ValueLogGCStats()
			t.Fatalf("value log %d → %d bytes after %d GC runs, %d rewrites", before, vlogBytes(t, dir), runs, rw)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The live values survived the rewrites; the expired ones stay gone.
	err := db.View(func(txn *badger.Txn) error {
		for i := 0; i < n; i++ {
			item, err := txn.Get(key(i))
			if i%keepEvery != 0 {
				if !errors.Is(err, badger.ErrKeyNotFound) {
					t.Fatalf("expired key %d: %v", i, err)
				}
				continue
			}
			if err != nil {
				return err
			}
			if item.ValueSize() != int64(len(val)) {
				t.Fatalf("key %d: value of %d bytes", i, item.ValueSize())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("value log %d → %d bytes", before, vlogBytes(t, dir))
}
