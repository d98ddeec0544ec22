package sdktest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
)

// Guest is the plugin of the package under test: built once from source
// for the whole test binary, compiled once, instantiated per test.
//
//	var guest = &sdktest.Guest{Committed: "my-plugin.wasm"}
//	func TestMain(m *testing.M) { os.Exit(guest.Main(m, "-ldflags=-s -w")) }
//	func TestX(t *testing.T) { p := guest.Plugin(t, `{}`); … }
type Guest struct {
	Committed string // the committed module's file name, beside the source

	built string
	once  sync.Once
	mod   *Module
	err   error
}

// Main builds the plugin in the current directory (with the build flags
// extra), runs the tests and removes the build; its result is the exit
// code for os.Exit.
func (g *Guest) Main(m *testing.M, extra ...string) int {
	path, cleanup, err := BuildTemp(".", g.Committed, extra...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	g.built = path
	return m.Run()
}

// Built is the path of the module Main built.
func (g *Guest) Built() string { return g.built }

// Module returns the built module, compiled on first use.
func (g *Guest) Module(t testing.TB) *Module {
	t.Helper()
	g.once.Do(func() {
		wasm, err := os.ReadFile(g.built)
		if err == nil {
			g.mod, err = Compile(context.Background(), wasm)
		}
		g.err = err
	})
	if g.err != nil {
		t.Fatal(g.err)
	}
	return g.mod
}

// Plugin instantiates the module with config, closed when the test ends.
func (g *Guest) Plugin(t testing.TB, config string) *Plugin {
	t.Helper()
	p, err := g.Module(t).Instantiate(context.Background(), []byte(config))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

// CheckCommitted fails the test when the committed module differs from the
// one Main built (see the function CheckCommitted).
func (g *Guest) CheckCommitted(t testing.TB) { CheckCommitted(t, g.Committed, g.built) }
