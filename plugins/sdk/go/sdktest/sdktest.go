// Package sdktest runs a plugin module under wazero the way ABI v1
// (docs/PLUGIN_ABI.md) describes, so that plugins can be tested with
// `go test` on the host. It is a test harness, not the production plugin
// host: it has no deadline, pool or failure policy.
//
// The calling sequence is the ABI's: instantiate with WASI (no
// filesystem, environment or arguments; stdout and stderr discarded; real
// clocks and random), call _initialize when exported, check
// uptimizr_abi_version() == 1, copy the config into uptimizr_alloc'd
// memory and call uptimizr_init, then per batch alloc, copy and call
// uptimizr_filter and decode the result.
package sdktest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// MemoryLimitPages caps each instance's linear memory: 1024 pages of
// 64 KiB = 64 MiB, the host's default.
const MemoryLimitPages = 1024

// Build compiles the Go plugin in dir (a main package) to out with
// GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath, and
// the given extra flags (for instance "-ldflags=-s -w").
func Build(dir, out string, extra ...string) error {
	args := append([]string{"build", "-buildmode=c-shared", "-trimpath", "-o", out}, extra...)
	args = append(args, ".")
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build in %s: %v\n%s", dir, err, msg)
	}
	return nil
}

// Module is a compiled plugin module from which instances are made.
type Module struct {
	rt       wazero.Runtime
	compiled wazero.CompiledModule
}

// Compile compiles a plugin module. Compiled code is cached on disk (in
// the system temp directory), so that test runs after the first one skip
// most of the work for a module that did not change.
func Compile(ctx context.Context, wasm []byte) (*Module, error) {
	cfg := wazero.NewRuntimeConfig().WithMemoryLimitPages(MemoryLimitPages)
	if cache, err := wazero.NewCompilationCacheWithDir(filepath.Join(os.TempDir(), "uptimizr-sdktest-wazero")); err == nil {
		cfg = cfg.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	compiled, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		rt.Close(ctx)
		return nil, err
	}
	m := &Module{rt: rt, compiled: compiled}
	for _, imp := range m.Imports() {
		if !strings.HasPrefix(imp, "wasi_snapshot_preview1.") && imp != "env.abort" {
			rt.Close(ctx)
			return nil, fmt.Errorf("import %s is not allowed by ABI v1", imp)
		}
	}
	return m, nil
}

// Imports lists the module's imported functions as "module.name".
func (m *Module) Imports() []string {
	var names []string
	for _, f := range m.compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		names = append(names, mod+"."+name)
	}
	return names
}

// Exports lists the module's exported functions and memories.
func (m *Module) Exports() []string {
	var names []string
	for name := range m.compiled.ExportedFunctions() {
		names = append(names, name)
	}
	for name := range m.compiled.ExportedMemories() {
		names = append(names, name)
	}
	return names
}

// Close releases the runtime and every instance made from it.
func (m *Module) Close(ctx context.Context) error { return m.rt.Close(ctx) }

// CodeError is a negative result of uptimizr_init or uptimizr_filter.
type CodeError struct {
	Func string
	Code int64
}

func (e *CodeError) Error() string { return fmt.Sprintf("%s returned %d", e.Func, e.Code) }

// Code returns the ABI code of err when it is a *CodeError, else 0.
func Code(err error) int64 {
	var ce *CodeError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// Plugin is one instance, initialised with a config. Like the host's
// instances it serves one call at a time.
type Plugin struct {
	mod    api.Module
	mem    api.Memory
	alloc  api.Function
	filter api.Function
}

// Instantiate makes an instance and runs the ABI's start-up sequence with
// config ("{}" when nil). A refusal by uptimizr_init is a *CodeError.
func (m *Module) Instantiate(ctx context.Context, config []byte) (*Plugin, error) {
	mc := wazero.NewModuleConfig().WithName("").WithStartFunctions().
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().WithRandSource(rand.Reader)
	mod, err := m.rt.InstantiateModule(ctx, m.compiled, mc)
	if err != nil {
		return nil, err
	}
	p := &Plugin{mod: mod, mem: mod.Memory(),
		alloc: mod.ExportedFunction("uptimizr_alloc"), filter: mod.ExportedFunction("uptimizr_filter")}
	fail := func(err error) (*Plugin, error) {
		mod.Close(ctx)
		return nil, err
	}
	version, initFn := mod.ExportedFunction("uptimizr_abi_version"), mod.ExportedFunction("uptimizr_init")
	if p.mem == nil || p.alloc == nil || p.filter == nil || version == nil || initFn == nil {
		return fail(errors.New("module does not export the ABI v1 functions and memory"))
	}
	if start := mod.ExportedFunction("_initialize"); start != nil {
		if _, err := start.Call(ctx); err != nil {
			return fail(fmt.Errorf("_initialize: %w", err))
		}
	}
	res, err := version.Call(ctx)
	if err != nil {
		return fail(fmt.Errorf("uptimizr_abi_version: %w", err))
	}
	if v := int32(res[0]); v != 1 {
		return fail(fmt.Errorf("uptimizr_abi_version returned %d, want 1", v))
	}
	if config == nil {
		config = []byte("{}")
	}
	ptr, err := p.copyIn(ctx, config)
	if err != nil {
		return fail(err)
	}
	res, err = initFn.Call(ctx, uint64(ptr), uint64(len(config)))
	if err != nil {
		return fail(fmt.Errorf("uptimizr_init: %w", err))
	}
	if code := int32(res[0]); code != 0 {
		return fail(&CodeError{Func: "uptimizr_init", Code: int64(code)})
	}
	return p, nil
}

func (p *Plugin) copyIn(ctx context.Context, b []byte) (uint32, error) {
	res, err := p.alloc.Call(ctx, uint64(len(b)))
	if err != nil {
		return 0, fmt.Errorf("uptimizr_alloc: %w", err)
	}
	ptr := uint32(res[0])
	if ptr == 0 {
		return 0, fmt.Errorf("uptimizr_alloc(%d) returned 0", len(b))
	}
	if !p.mem.Write(ptr, b) {
		return 0, fmt.Errorf("uptimizr_alloc(%d) returned %d, outside memory", len(b), ptr)
	}
	return ptr, nil
}

// FilterBatch runs uptimizr_filter on an encoded batch and returns a view
// of the output in guest memory (valid until the next call into the
// instance), or a *CodeError for a negative result.
func (p *Plugin) FilterBatch(ctx context.Context, batch []byte) ([]byte, error) {
	ptr, err := p.copyIn(ctx, batch)
	if err != nil {
		return nil, err
	}
	res, err := p.filter.Call(ctx, uint64(ptr), uint64(len(batch)))
	if err != nil {
		return nil, fmt.Errorf("uptimizr_filter: %w", err)
	}
	r := int64(res[0])
	if r < 0 {
		return nil, &CodeError{Func: "uptimizr_filter", Code: r}
	}
	outPtr, outLen := uint32(uint64(r)>>32), uint32(r)
	out, ok := p.mem.Read(outPtr, outLen)
	if !ok {
		return nil, fmt.Errorf("uptimizr_filter output [%d,+%d) outside memory", outPtr, outLen)
	}
	return out, nil
}

// Filter encodes events as a batch, filters it and decodes the result
// (copied out of guest memory).
func (p *Plugin) Filter(ctx context.Context, events [][]byte) ([]Result, error) {
	out, err := p.FilterBatch(ctx, EncodeBatch(events))
	if err != nil {
		return nil, err
	}
	return DecodeOutput(out, len(events))
}

// MemoryBytes returns the current size of the instance's linear memory.
func (p *Plugin) MemoryBytes() uint32 { return p.mem.Size() }

// Close closes the instance.
func (p *Plugin) Close(ctx context.Context) error { return p.mod.Close(ctx) }

// Ops of the output encoding.
const (
	OpKeep    = 0
	OpDrop    = 1
	OpReplace = 2
)

// Result is the plugin's answer for one event.
type Result struct {
	Op   byte
	JSON []byte // the replacement, for OpReplace
}

// EncodeBatch encodes events in the ABI v1 batch encoding.
func EncodeBatch(events [][]byte) []byte {
	n := 8
	for _, e := range events {
		n += 4 + len(e)
	}
	b := make([]byte, 0, n)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(events)))
	for _, e := range events {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(e)))
		b = append(b, e...)
	}
	return b
}

// DecodeOutput decodes an ABI v1 output for a batch of count events,
// applying the host's framing checks: the count matches, ops are known,
// entries are complete, nothing trails. Replacements are copied.
func DecodeOutput(out []byte, count int) ([]Result, error) {
	if len(out) < 4 {
		return nil, errors.New("output shorter than its count")
	}
	if n := binary.LittleEndian.Uint32(out); int64(n) != int64(count) {
		return nil, fmt.Errorf("output count %d, want %d", n, count)
	}
	res := make([]Result, count)
	pos := 4
	for i := range res {
		if pos >= len(out) {
			return nil, fmt.Errorf("entry %d: truncated", i)
		}
		op := out[pos]
		pos++
		res[i].Op = op
		switch op {
		case OpKeep, OpDrop:
		case OpReplace:
			if len(out)-pos < 4 {
				return nil, fmt.Errorf("entry %d: truncated length", i)
			}
			n := binary.LittleEndian.Uint32(out[pos:])
			pos += 4
			if uint64(n) > uint64(len(out)-pos) {
				return nil, fmt.Errorf("entry %d: replacement of %d bytes is truncated", i, n)
			}
			res[i].JSON = append([]byte(nil), out[pos:pos+int(n)]...)
			pos += int(n)
		default:
			return nil, fmt.Errorf("entry %d: unknown op %d", i, op)
		}
	}
	if pos != len(out) {
		return nil, fmt.Errorf("%d trailing bytes after the last entry", len(out)-pos)
	}
	return res, nil
}
