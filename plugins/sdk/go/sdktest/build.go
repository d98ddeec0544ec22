package sdktest

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// BuildTemp builds the Go plugin in dir (see Build) into a new temporary
// directory, as name, and returns the module's path and a function that
// removes the directory. It suits a TestMain.
func BuildTemp(dir, name string, extra ...string) (path string, cleanup func(), err error) {
	tmp, err := os.MkdirTemp("", "uptimizr-plugin-build")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(tmp) }
	path = filepath.Join(tmp, name)
	if err := Build(dir, path, extra...); err != nil {
		cleanup()
		return "", nil, err
	}
	return path, cleanup, nil
}

// CheckCommitted fails the test when the committed module differs from
// the one just built from the same source with the same flags. Go builds
// are reproducible for a given Go release, so the check is skipped when
// the committed module was built by another release than the one running
// the test.
func CheckCommitted(t testing.TB, committed, built string) {
	t.Helper()
	old, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	if v := GoVersion(old); v != runtime.Version() {
		t.Skipf("%s was built by %q, this is %s", committed, v, runtime.Version())
	}
	fresh, err := os.ReadFile(built)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(old, fresh) {
		t.Errorf("%s is out of date: rebuild it with the command in its README", committed)
	}
}
