package storage

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uptimizr/edge/core"
)

func testSeed(day int64, fill byte) core.DaySeed {
	s := core.DaySeed{Day: day}
	for i := range s.Seed {
		s.Seed[i] = fill ^ byte(i)
	}
	return s
}

// dirHolds reports whether any file under dir holds the seed, raw or as hex
// (either case).
func dirHolds(t *testing.T, dir string, seed [32]byte) string {
	t.Helper()
	needles := [][]byte{seed[:], []byte(hex.EncodeToString(seed[:])), []byte(strings.ToUpper(hex.EncodeToString(seed[:])))}
	found := ""
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		for _, n := range needles {
			if bytes.Contains(b, n) {
				found = p
			}
		}
		return nil
	})
	return found
}

func TestVisitorSeedSaveLoadAndWipe(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := LoadVisitorSeed(dir); !errors.Is(err, ErrNoVisitorSeed) {
		t.Fatalf("empty dir: %v, want ErrNoVisitorSeed", err)
	}
	d1 := testSeed(20000, 0x11)
	if err := SaveVisitorSeed(dir, &d1, nil); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(VisitorSeedPath(dir))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("seed file: %v, mode %v (want 0600)", err, fi.Mode().Perm())
	}
	got, pend, err := LoadVisitorSeed(dir)
	if err != nil || got != d1 || pend != nil {
		t.Fatalf("load: %v %v %v", got.Day, pend, err)
	}
	// The next day: the file is replaced and the old seed is nowhere in the
	// dir.
	d2 := d1
	d2.Next()
	next := testSeed(20010, 0x22)
	if err := SaveVisitorSeed(dir, &d2, &next); err != nil {
		t.Fatal(err)
	}
	if p := dirHolds(t, dir, d1.Seed); p != "" {
		t.Fatalf("the replaced seed is still in %s", p)
	}
	got, pend, err = LoadVisitorSeed(dir)
	if err != nil || got != d2 || pend == nil || *pend != next {
		t.Fatalf("load after replace: %v %v", pend, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("dir holds %d files after a save, want 1", len(entries))
	}
}

// Load finishes a save that a crash cut short, at every point of it.
func TestVisitorSeedCrashDuringSave(t *testing.T) {
	old := testSeed(20000, 0x33)
	newer := testSeed(20001, 0x44)
	write := func(t *testing.T, dir string, s *core.DaySeed, name string) {
		t.Helper()
		scratch := t.TempDir()
		if err := SaveVisitorSeed(scratch, s, nil); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(VisitorSeedPath(scratch))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("new file whole, old not yet wiped", func(t *testing.T) {
		dir := t.TempDir()
		write(t, dir, &newer, seedNewName)
		write(t, dir, &old, VisitorSeedFile)
		got, _, err := LoadVisitorSeed(dir)
		if err != nil || got != newer {
			t.Fatalf("got day %d, %v; want the new state", got.Day, err)
		}
		if p := dirHolds(t, dir, old.Seed); p != "" {
			t.Fatalf("old seed left in %s", p)
		}
	})
	t.Run("old wiped, rename not done", func(t *testing.T) {
		dir := t.TempDir()
		write(t, dir, &newer, seedNewName)
		os.WriteFile(VisitorSeedPath(dir), make([]byte, 150), 0o600)
		got, _, err := LoadVisitorSeed(dir)
		if err != nil || got != newer {
			t.Fatalf("got day %d, %v; want the new state", got.Day, err)
		}
	})
	t.Run("new file torn", func(t *testing.T) {
		dir := t.TempDir()
		write(t, dir, &old, VisitorSeedFile)
		b := []byte(seedHeader + "current 2024-10-10 abcd")
		os.WriteFile(filepath.Join(dir, seedNewName), b, 0o600)
		got, _, err := LoadVisitorSeed(dir)
		if err != nil || got != old {
			t.Fatalf("got day %d, %v; want the old, whole state", got.Day, err)
		}
		if _, err := os.Stat(filepath.Join(dir, seedNewName)); !os.IsNotExist(err) {
			t.Fatal("the torn file was not removed")
		}
	})
}

func TestVisitorSeedBadFiles(t *testing.T) {
	for name, content := range map[string]string{
		"zeros":     string(make([]byte, 120)),
		"foreign":   "hello\n",
		"short hex": seedHeader + "current 2026-12-06 abcd\n",
		"bad hex":   seedHeader + "current 2026-12-06 " + strings.Repeat("zz", 32) + "\n",
		"bad day":   seedHeader + "current 2026-13-06 " + strings.Repeat("ab", 32) + "\n",
		"no line":   seedHeader + "current 2026-12-06 " + strings.Repeat("ab", 32),
		"no cur":    seedHeader + "pending 2026-12-06 " + strings.Repeat("ab", 32) + "\n",
		"all zero":  seedHeader + "current 2026-12-06 " + strings.Repeat("00", 32) + "\n",
	} {
		dir := t.TempDir()
		os.WriteFile(VisitorSeedPath(dir), []byte(content), 0o600)
		if _, _, err := LoadVisitorSeed(dir); err == nil || errors.Is(err, ErrNoVisitorSeed) {
			t.Errorf("%s: %v, want a clear error", name, err)
		}
	}
}

// FuzzVisitorSeedFile: any content either fails to parse with an error or
// parses to a state that encodes back to the same content.
func FuzzVisitorSeedFile(f *testing.F) {
	a, b := testSeed(20000, 1), testSeed(20005, 2)
	f.Add(encodeSeedFile(&a, nil))
	f.Add(encodeSeedFile(&a, &b))
	f.Add([]byte(seedHeader + "current 2026-12-06 " + strings.Repeat("ab", 32)))
	f.Add(make([]byte, 100))
	f.Fuzz(func(t *testing.T, data []byte) {
		cur, pend, err := parseSeedFile(data)
		if err != nil {
			return
		}
		if cur.IsZero() {
			t.Fatal("accepted a zero seed")
		}
		if again := encodeSeedFile(&cur, pend); !bytes.Equal(again, data) {
			// Accepted forms are canonical but for letter case of the hex.
			if !bytes.EqualFold(again, data) {
				t.Fatalf("parsed %q, encodes back as %q", data, again)
			}
		}
	})
}
