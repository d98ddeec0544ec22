package sdktest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestGoVersion(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "p.wasm")
	if err := Build(filepath.Join("..", "testdata", "testplugin"), out); err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := GoVersion(wasm); got != runtime.Version() {
		t.Errorf("GoVersion = %q, want %q", got, runtime.Version())
	}
	for _, bad := range [][]byte{nil, []byte("\x00asm"), []byte("\x00asm\x01\x00\x00\x00\x00\xff"), wasm[:100]} {
		if got := GoVersion(bad); got != "" {
			t.Errorf("GoVersion(%q...) = %q", bad[:min(len(bad), 8)], got)
		}
	}
}
