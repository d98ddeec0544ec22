package meter

import (
	"context"
	"flag"
	"testing"

	"github.com/tetratelabs/wazero"
)

// FuzzInstrument feeds mutated modules to Instrument. It must never panic;
// when it succeeds, its output has a check after every loop header and
// wazero compiles it, unless wazero does not compile the input either.
// While fuzzing (not when the seeds run as tests), inputs over 256 KB, the
// mutations of the Go guest, are not compiled: with coverage
// instrumentation compiling one takes longer than the fuzzer waits for a
// worker.
//
//	go test ./plugins/meter -run '^$' -fuzz FuzzInstrument -fuzztime 10m
func FuzzInstrument(f *testing.F) {
	f.Add(asGuest.wasm)
	f.Add(features)
	f.Add(envMod)
	f.Add(goGuest.wasm)
	f.Add(module(sect(secType, 1, 0x60, 0, 0), sect(secFunction, 1, 0), sect(secCode, 1, 5, 0, 0x03, 0x40, 0x0b, 0x0b)))
	ctx := context.Background()
	// No compilation cache: every input is new.
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer rt.Close(ctx)
	compiles := func(wasm []byte) error {
		cm, err := rt.CompileModule(ctx, wasm)
		if err == nil {
			cm.Close(ctx)
		}
		return err
	}
	fuzzing := flag.Lookup("test.fuzz").Value.String() != ""
	f.Fuzz(func(t *testing.T, wasm []byte) {
		for _, opts := range []Options{{Mode: ModeYield, AllEntries: true}, {Mode: ModeYield, AllowStart: true}} {
			out, err := Instrument(wasm, opts)
			if err != nil {
				continue
			}
			checkWoven(t, wasm, out, opts)
			if fuzzing && len(wasm) > 256<<10 {
				continue
			}
			if err := compiles(out); err != nil {
				if compiles(wasm) == nil {
					t.Fatalf("%+v: the input compiles but the output does not: %v", opts, err)
				}
			}
		}
	})
}
