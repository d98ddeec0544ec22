package meter

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestCommittedGuests rebuilds the committed test binaries from their
// sources, with the commands in testdata/README.md, and checks that they
// are what is committed. It needs assemblyscript 0.28.20 from npm (asc and
// Binaryen's wasm-as), found in METER_NODE_MODULES/.bin or on PATH, and
// runs only when METER_REBUILD is set.
func TestCommittedGuests(t *testing.T) {
	if os.Getenv("METER_REBUILD") == "" {
		t.Skip("set METER_REBUILD (and METER_NODE_MODULES) to rebuild the committed guests")
	}
	tool := func(name string) string {
		if dir := os.Getenv("METER_NODE_MODULES"); dir != "" {
			return filepath.Join(dir, ".bin", name)
		}
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	dir := t.TempDir()
	features := []string{"--enable-simd", "--enable-bulk-memory", "--enable-reference-types",
		"--enable-multivalue", "--enable-sign-ext", "--enable-nontrapping-float-to-int", "--enable-mutable-globals"}
	for _, c := range []struct {
		committed string
		cmd       []string
	}{
		{"asguest/scan.wasm", []string{tool("asc"), "testdata/asguest/scan.ts", "-O3", "--runtime", "stub",
			"--exportStart", "_initialize", "--use", "abort=", "-o", filepath.Join(dir, "scan.wasm")}},
		{"features/features.wasm", append(append([]string{tool("wasm-as")}, features...),
			"testdata/features/features.wat", "-o", filepath.Join(dir, "features.wasm"))},
		{"features/env.wasm", append(append([]string{tool("wasm-as")}, features...),
			"testdata/features/env.wat", "-o", filepath.Join(dir, "env.wasm"))},
	} {
		if out, err := exec.Command(c.cmd[0], c.cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", c.cmd, err, out)
		}
		built, err := os.ReadFile(filepath.Join(dir, filepath.Base(c.committed)))
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(filepath.Join("testdata", c.committed))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(built, committed) {
			t.Errorf("testdata/%s differs from a rebuild (%d bytes, rebuilt %d)", c.committed, len(committed), len(built))
		}
	}
}
