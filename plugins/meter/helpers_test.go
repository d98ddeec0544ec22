package meter

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// guest is a test plugin exporting alloc, scan, spin and work.
type guest struct {
	name string
	wasm []byte
}

var (
	goGuest  guest // built by TestMain
	asGuest  guest // committed
	guests   []guest
	features []byte // committed
	envMod   []byte // committed

	// cache shares compiled modules between the runtimes of one test run.
	cache = wazero.NewCompilationCache()
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "meter-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		wasm, err := buildGoGuest(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		goGuest = guest{"go", wasm}
		for _, f := range []struct {
			p   *[]byte
			obj string
		}{{&asGuest.wasm, "asguest/scan.wasm"}, {&features, "features/features.wasm"}, {&envMod, "features/env.wasm"}} {
			if *f.p, err = os.ReadFile(filepath.Join("testdata", f.obj)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		asGuest.name = "as"
		guests = []guest{goGuest, asGuest}
		return m.Run()
	}()
	os.Exit(code)
}

func buildGoGuest(dir string) ([]byte, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, err
	}
	out := filepath.Join(dir, "guest.wasm")
	cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-o", out, "./testdata/guest")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the Go test guest: %v\n%s", err, msg)
	}
	return os.ReadFile(out)
}

// newRuntime returns a compiler runtime with WASI, the host module that
// instrumented guests import and the features module's "env" imports,
// closed when the test ends.
func newRuntime(tb testing.TB, closeOnDone bool) wazero.Runtime {
	tb.Helper()
	return newRuntimeSlice(tb, closeOnDone, 0)
}

// newRuntimeSlice is newRuntime with the host module giving slice fuel
// per yield.
func newRuntimeSlice(tb testing.TB, closeOnDone bool, slice int64) wazero.Runtime {
	tb.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(cache).
		WithCloseOnContextDone(closeOnDone))
	tb.Cleanup(func() { rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	if _, err := InstantiateYield(ctx, rt, slice); err != nil {
		tb.Fatal(err)
	}
	if _, err := rt.InstantiateWithConfig(ctx, envMod, wazero.NewModuleConfig().WithName("env")); err != nil {
		tb.Fatal(err)
	}
	return rt
}

func mustInstrument(tb testing.TB, wasm []byte, opts Options) []byte {
	tb.Helper()
	out, err := Instrument(wasm, opts)
	if err != nil {
		tb.Fatalf("Instrument(%+v): %v", opts, err)
	}
	return out
}

// instance is a started guest.
type instance struct {
	mod              api.Module
	scan, spin, work api.Function
	ptr              uint32 // the guest buffer, from alloc
	size             uint32
}

func compile(tb testing.TB, rt wazero.Runtime, wasm []byte) wazero.CompiledModule {
	tb.Helper()
	cm, err := rt.CompileModule(context.Background(), wasm)
	if err != nil {
		tb.Fatal(err)
	}
	return cm
}

// start instantiates a compiled guest, runs its initialiser and allocates
// a buffer of size bytes.
func start(tb testing.TB, rt wazero.Runtime, cm wazero.CompiledModule, size uint32) *instance {
	tb.Helper()
	ctx := context.Background()
	mod, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { mod.Close(ctx) })
	if _, err := mod.ExportedFunction("_initialize").Call(ctx); err != nil {
		tb.Fatalf("_initialize: %v", err)
	}
	in := &instance{
		mod:  mod,
		scan: mod.ExportedFunction("scan"),
		spin: mod.ExportedFunction("spin"),
		work: mod.ExportedFunction("work"),
		size: size,
	}
	if size > 0 {
		res, err := mod.ExportedFunction("alloc").Call(ctx, uint64(size))
		if err != nil {
			tb.Fatalf("alloc: %v", err)
		}
		in.ptr = uint32(res[0])
	}
	return in
}

func (in *instance) load(tb testing.TB, data []byte) {
	tb.Helper()
	if uint32(len(data)) > in.size || !in.mod.Memory().Write(in.ptr, data) {
		tb.Fatalf("cannot write %d bytes at %d", len(data), in.ptr)
	}
}

// refScan is what scan computes.
func refScan(b []byte) int32 {
	var at, digits, runs int32
	in := false
	for _, c := range b {
		switch {
		case c == '@':
			at++
			in = false
		case c >= '0' && c <= '9':
			digits++
			if !in {
				runs++
			}
			in = true
		default:
			in = false
		}
	}
	return at<<20 ^ digits<<8 ^ runs
}

// refWork is what work computes.
func refWork(n int64) int64 {
	h := int64(1469598103934665603)
	for i := int64(0); i < n; i++ {
		h = (h ^ i) * 1099511628211
	}
	return h
}

// batch returns a batch of about size bytes of event JSON with e-mail
// addresses and numbers in it, the kind of input a redaction filter scans.
func batch(size int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	b.WriteByte('[')
	for b.Len() < size-300 {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"interaction","sessionId":"s-%08x","ts":%d,"sceneId":"showroom",`+
			`"data":{"target":"mesh_%d","x":%.3f,"y":%.3f,"note":"contact %s%d@example.com or +33 6 %02d %02d %02d %02d"}}`,
			rng.Uint32(), 1700000000000+rng.Int64N(1e9), rng.IntN(500), rng.Float64()*100, rng.Float64()*100,
			[]string{"ana", "bo", "chen", "dara"}[rng.IntN(4)], rng.IntN(100),
			rng.IntN(100), rng.IntN(100), rng.IntN(100), rng.IntN(100))
	}
	b.WriteByte(']')
	for b.Len() < size {
		b.WriteByte(' ')
	}
	return b.Bytes()
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}
