package storage

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestWritebackFollowsTheFilesBeingWritten: list keeps open (for push)
// only the highest-numbered value-log and memtable file of each dir, by
// number, not by name order, and lets go of files that are gone or no
// longer the newest.
func TestWritebackFollowsTheFilesBeingWritten(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	touch := func(dir string, names ...string) {
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	touch(a, "000001.vlog", "999999.vlog", "1000000.vlog", "00002.mem", "00010.mem", "000003.sst", "MANIFEST", "x.vlog")
	touch(b, "000004.vlog")
	w := newWriteback(a, b, filepath.Join(a, "missing"))
	defer w.close()
	open := func() []string {
		var out []string
		for p := range w.files {
			out = append(out, p)
		}
		slices.Sort(out)
		return out
	}
	w.list()
	want := []string{filepath.Join(a, "00010.mem"), filepath.Join(a, "1000000.vlog"), filepath.Join(b, "000004.vlog")}
	slices.Sort(want)
	if got := open(); !slices.Equal(got, want) {
		t.Fatalf("open %v, want %v", got, want)
	}
	os.Remove(filepath.Join(b, "000004.vlog"))
	touch(a, "00011.mem")
	w.list()
	want = []string{filepath.Join(a, "00011.mem"), filepath.Join(a, "1000000.vlog")}
	if got := open(); !slices.Equal(got, want) {
		t.Fatalf("after changes: open %v, want %v", got, want)
	}
	// push lists on its first call and every listEvery calls after.
	touch(a, "1000001.vlog")
	w2 := newWriteback(a)
	defer w2.close()
	w2.push()
	touch(a, "1000002.vlog")
	for i := 1; i < listEvery; i++ {
		w2.push()
	}
	if _, ok := w2.files[filepath.Join(a, "1000001.vlog")]; !ok || len(w2.files) != 2 {
		t.Fatalf("before relisting: %v", w2.files)
	}
	w2.push()
	if _, ok := w2.files[filepath.Join(a, "1000002.vlog")]; !ok || len(w2.files) != 2 {
		t.Fatalf("after relisting: %v", w2.files)
	}
}
