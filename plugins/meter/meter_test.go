package meter

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/tetratelabs/wazero"
)

var variants = []struct {
	name string
	opts Options
}{
	{"yield", Options{Mode: ModeYield}},
	{"yield-allentries", Options{Mode: ModeYield, AllEntries: true}},
}

// codeBodies returns the function bodies' code (without locals) of a module.
func codeBodies(tb testing.TB, wasm []byte) [][]byte {
	tb.Helper()
	r := &reader{b: wasm, off: 8}
	var bodies [][]byte
	for !r.eof() {
		id := r.byte()
		sec := r.bytes(r.u32())
		if id != secCode {
			continue
		}
		sr := &reader{b: sec}
		n := sr.u32()
		for range n {
			br := &reader{b: sr.bytes(sr.u32())}
			for range br.u32() {
				br.u32()
				br.valType()
			}
			bodies = append(bodies, br.b[br.off:])
		}
		if sr.err != nil {
			tb.Fatal(sr.err)
		}
	}
	if r.err != nil {
		tb.Fatal(r.err)
	}
	return bodies
}

// checkWoven verifies the shape of an instrumented module against its
// original: the same number of bodies and loops, and a check right after
// every loop header.
func checkWoven(tb testing.TB, orig, out []byte, opts Options) {
	tb.Helper()
	ob, nb := codeBodies(tb, orig), codeBodies(tb, out)
	if len(ob) != len(nb) {
		tb.Fatalf("%d bodies, want %d", len(nb), len(ob))
	}
	ins := instrumenter{opts: opts, global: exportedGlobalIndex(tb, out)}
	ins.buildChecks()
	for i := range nb {
		loops := func(code []byte, want []byte) (n int) {
			r := &reader{b: code}
			for !r.eof() {
				_, class := r.instr()
				if class == opLoop {
					n++
					if want != nil && !bytes.HasPrefix(code[r.off:], want) {
						tb.Fatalf("function %d: loop at %d is not followed by a check", i, r.off)
					}
				}
			}
			if r.err != nil {
				tb.Fatalf("function %d: %v", i, r.err)
			}
			return n
		}
		if a, b := loops(ob[i], nil), loops(nb[i], ins.pre); a != b {
			tb.Fatalf("function %d: %d loops, want %d", i, b, a)
		}
	}
}

// exportedGlobalIndex finds the index of the fuel global in the export
// section.
func exportedGlobalIndex(tb testing.TB, wasm []byte) uint32 {
	r := &reader{b: wasm, off: 8}
	for !r.eof() {
		id := r.byte()
		sec := r.bytes(r.u32())
		if id != secExport {
			continue
		}
		sr := &reader{b: sec}
		for range sr.u32() {
			n := sr.name()
			kind := sr.byte()
			idx := sr.u32()
			if string(n) == FuelExport && kind == 3 {
				return idx
			}
		}
	}
	tb.Fatalf("no export %q", FuelExport)
	return 0
}

func TestInstrumentedScanMatches(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t, false)
	for _, g := range guests {
		plain := start(t, rt, compile(t, rt, g.wasm), 64<<10)
		for _, v := range variants {
			t.Run(g.name+"/"+v.name, func(t *testing.T) {
				out := mustInstrument(t, g.wasm, v.opts)
				checkWoven(t, g.wasm, out, v.opts)
				in := start(t, rt, compile(t, rt, out), 64<<10)
				rng := rand.New(rand.NewPCG(uint64(len(v.name)), 7))
				for i := range 40 {
					var buf []byte
					if i%2 == 0 {
						buf = make([]byte, rng.IntN(64<<10))
						for j := range buf {
							buf[j] = "@0123456789abc, "[rng.IntN(16)]
						}
					} else {
						buf = batch(rng.IntN(60<<10)+300, uint64(i))
					}
					plain.load(t, buf)
					in.load(t, buf)
					FuelGlobal(in.mod).Set(1 << 40)
					want, err := plain.scan.Call(ctx, uint64(plain.ptr), uint64(len(buf)))
					if err != nil {
						t.Fatal(err)
					}
					got, err := in.scan.Call(ctx, uint64(in.ptr), uint64(len(buf)))
					if err != nil {
						t.Fatal(err)
					}
					if int32(got[0]) != int32(want[0]) || int32(want[0]) != refScan(buf) {
						t.Fatalf("scan of %d bytes: instrumented %#x, plain %#x, reference %#x",
							len(buf), int32(got[0]), int32(want[0]), refScan(buf))
					}
				}
				t.Logf("%d → %d bytes (+%.1f%%)", len(g.wasm), len(out), 100*float64(len(out)-len(g.wasm))/float64(len(g.wasm)))
			})
		}
	}
}

// TestFeatures runs a module that uses every instruction family the
// decoder knows, imports globals (so the added global's index is shifted by
// them) and has a loop with parameters, before and after instrumentation.
func TestFeatures(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t, false)
	// run drops its passive segments, so every call gets a fresh instance.
	call := func(cm wazero.CompiledModule, x uint64) (uint64, uint64) {
		mod, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName(""))
		if err != nil {
			t.Fatal(err)
		}
		defer mod.Close(ctx)
		run, err := mod.ExportedFunction("run").Call(ctx, x)
		if err != nil {
			t.Fatalf("run(%d): %v", x, err)
		}
		count, err := mod.ExportedFunction("count").Call(ctx, x)
		if err != nil {
			t.Fatalf("count(%d): %v", x, err)
		}
		return run[0], count[0]
	}
	plain := compile(t, rt, features)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			out := mustInstrument(t, features, v.opts)
			checkWoven(t, features, out, v.opts)
			if idx := exportedGlobalIndex(t, out); idx != 4 { // 2 imported + 2 defined
				t.Fatalf("added global has index %d, want 4", idx)
			}
			cm := compile(t, rt, out)
			// Exports keep their functions, and those their names; the
			// added import moves them up by one.
			for name, def := range plain.ExportedFunctions() {
				got := cm.ExportedFunctions()[name]
				if got == nil || got.Name() != def.Name() || got.Index() != def.Index()+1 {
					t.Fatalf("export %s: %v, want %v", name, got, def)
				}
			}
			for x := range uint64(64) {
				x = x * x * 977
				wr, wc := call(plain, x)
				gr, gc := call(cm, x)
				if wr != gr || wc != gc {
					t.Fatalf("x=%d: instrumented run %d count %d, plain %d %d", x, gr, gc, wr, wc)
				}
				if want := uint32((x - 1) * x / 2); x > 0 && uint32(wc) != want {
					t.Fatalf("count(%d) = %d, want %d", x, wc, want)
				}
			}
		})
	}
}

func TestRejects(t *testing.T) {
	yield := Options{Mode: ModeYield}
	twice := mustInstrument(t, asGuest.wasm, yield)
	if _, err := Instrument(twice, yield); !errors.Is(err, ErrReserved) {
		t.Errorf("instrumenting twice: %v, want ErrReserved", err)
	}
	imports := module(sect(secType, 1, 0x60, 0, 0), sect(secImport, append(append([]byte{1},
		appendName(appendName(nil, YieldModule), "x")...), 0, 0)...))
	if _, err := Instrument(imports, yield); !errors.Is(err, ErrReserved) {
		t.Errorf("import from %s: %v, want ErrReserved", YieldModule, err)
	}
	exports := module(
		sect(secType, 1, 0x60, 0, 0),
		sect(secFunction, 1, 0),
		sect(secExport, append(append([]byte{1}, appendName(nil, ReservedPrefix+"x")...), 0, 0)...),
		sect(secCode, 1, 2, 0, 0x0b))
	if _, err := Instrument(exports, yield); !errors.Is(err, ErrReserved) {
		t.Errorf("export named %sx: %v, want ErrReserved", ReservedPrefix, err)
	}
	if _, err := Instrument(asGuest.wasm, Options{}); err == nil {
		t.Error("no mode: no error")
	}

	// A module with a start function.
	start := module(
		sect(secType, 1, 0x60, 0, 0),
		sect(secFunction, 1, 0),
		sect(secStart, 0),
		sect(secCode, 1, 2, 0, 0x0b))
	if _, err := Instrument(start, yield); !errors.Is(err, ErrUnsupported) {
		t.Errorf("start function: %v, want ErrUnsupported", err)
	}
	if _, err := Instrument(start, Options{Mode: ModeYield, AllowStart: true}); err != nil {
		t.Errorf("start function allowed: %v", err)
	}

	for name, body := range map[string][]byte{
		"unknown opcode":                 {0, 0xff, 0x0b},
		"unknown 0xfc":                   {0, 0xfc, 0x7f, 0x0b},
		"unknown 0xfd":                   {0, 0xfd, 0xff, 0x7f, 0x0b},
		"exception handling":             {0, 0x06, 0x40, 0x0b, 0x0b},
		"typed function refs":            {0, 0x14, 0x00, 0x0b},
		"typed ref block":                {0, 0x02, 0x63, 0x70, 0x0b, 0x0b},
		"typed ref local":                {1, 1, 0x64, 0x70, 0x0b},
		"overlong local.get":             {0, 0x20, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x0b},
		"i32.const too large":            {0, 0x41, 0xff, 0xff, 0xff, 0xff, 0x4f, 0x1a, 0x0b},
		"truncated memarg":               {0, 0x28, 0x02},
		"missing end":                    {0, 0x01},
		"bytes after end":                {0, 0x0b, 0x01},
		"truncated v128.const":           {0, 0xfd, 0x0c, 1, 2, 3},
		"unbalanced end":                 {0, 0x0b, 0x0b},
		"br_table count too big":         {0, 0x0e, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x0b},
		"global.set of the added global": {0, 0x41, 0, 0x24, 0, 0x0b},
		"global.get of the added global": {0, 0x23, 0, 0x1a, 0x0b},
	} {
		m := module(
			sect(secType, 1, 0x60, 0, 0),
			sect(secFunction, 1, 0),
			sect(secCode, append([]byte{1, byte(len(body))}, body...)...))
		_, err := Instrument(m, yield)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: %v is neither ErrMalformed nor ErrUnsupported", name, err)
		}
		t.Logf("%s: %v", name, err)
	}

	for name, m := range map[string][]byte{
		"empty":          nil,
		"not wasm":       []byte("\x00asn\x01\x00\x00\x00"),
		"version 2":      []byte("\x00asm\x02\x00\x00\x00"),
		"section order":  module(sect(secFunction, 0), sect(secType, 0)),
		"repeated":       module(sect(secType, 0), sect(secType, 0)),
		"unknown id":     module(sect(42)),
		"bodies":         module(sect(secType, 1, 0x60, 0, 0), sect(secFunction, 2, 0, 0), sect(secCode, 1, 2, 0, 0x0b)),
		"no code":        module(sect(secType, 1, 0x60, 0, 0), sect(secFunction, 1, 0)),
		"section size":   append(module(), secType, 5, 0),
		"tag section":    module(sect(secTag, 0)),
		"huge count":     module(sect(secTable, 0xe2, 0xe2, 0xe2, 0x30, 0x30, 0x20, 0x30)),
		"export trailer": module(sect(secExport, 0, 0)),
	} {
		if _, err := Instrument(m, yield); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// TestTruncated instruments every prefix of the small guests and a spread
// of prefixes of the Go guest: all must fail cleanly, except those that end
// at a section boundary, which are well-formed modules.
func TestTruncated(t *testing.T) {
	try := func(g []byte, n int) {
		_, err := Instrument(g[:n], Options{Mode: ModeYield})
		if err == nil && !sectionBoundaries(g)[n] {
			t.Fatalf("prefix of %d bytes: no error", n)
		}
	}
	for _, g := range [][]byte{asGuest.wasm, features} {
		for n := range len(g) {
			try(g, n)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		try(goGuest.wasm, rng.IntN(len(goGuest.wasm)))
	}
}

func sectionBoundaries(wasm []byte) map[int]bool {
	m := map[int]bool{8: true}
	r := &reader{b: wasm, off: 8}
	for !r.eof() {
		r.byte()
		r.bytes(r.u32())
		m[r.off] = true
	}
	return m
}

// module assembles a module from sections.
func module(sections ...[]byte) []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range sections {
		m = append(m, s...)
	}
	return m
}

func sect(id byte, body ...byte) []byte {
	return append(binary.AppendUvarint([]byte{id}, uint64(len(body))), body...)
}
