package plugins

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/uptimizr/edge/plugins/meter"
)

// ABIVersion is the plugin ABI this host implements.
const ABIVersion = 1

// Errors of the host. A call error wraps one of the first three.
var (
	ErrTrap      = errors.New("plugin trapped")
	ErrTimeout   = errors.New("plugin exceeded its CPU deadline")
	ErrBadOutput = errors.New("plugin produced bad output")
	ErrGuest     = errors.New("plugin returned an error code")
	ErrInvalid   = errors.New("invalid plugin module")
)

// Options configure a Host. Zero values take the defaults noted.
type Options struct {
	// CacheDir keeps wazero's compiled code across restarts ("" = memory only).
	CacheDir string
	// MemoryLimitPages caps each instance's linear memory (64 KiB pages);
	// default 1024 (64 MiB).
	MemoryLimitPages uint32
	// CallTimeout is the CPU deadline of one filter call; default 50 ms.
	CallTimeout time.Duration
	// MaxModuleSize bounds an uploaded module; default 16 MiB.
	MaxModuleSize int
	// PoolSize bounds the idle instances kept per plugin version; default 4.
	PoolSize int
	// MemoryBudget bounds the linear memory of every instance of the node
	// together, in bytes (see Budget); default DefaultMemoryBudget().
	MemoryBudget int64
	// MaxInstances bounds the live instances of the node; default
	// DefaultMaxInstances(MemoryBudget).
	MaxInstances int
	// Wait is how long a call waits for room in the budget before it fails
	// with ErrBusy; default 10 × CallTimeout.
	Wait time.Duration
	// Nice is the priority guest code runs at: core.PluginNiceIdle
	// (SCHED_IDLE), a nice value 1–19, or 0 (the caller's priority).
	Nice   int
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.MemoryLimitPages == 0 {
		o.MemoryLimitPages = 1024
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 50 * time.Millisecond
	}
	if o.MaxModuleSize <= 0 {
		o.MaxModuleSize = 16 << 20
	}
	if o.PoolSize <= 0 {
		o.PoolSize = 4
	}
	if o.MemoryBudget <= 0 {
		o.MemoryBudget = DefaultMemoryBudget()
	}
	if o.MaxInstances <= 0 {
		o.MaxInstances = DefaultMaxInstances(o.MemoryBudget)
	}
	if o.Wait <= 0 {
		o.Wait = 10 * o.CallTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Host owns the wazero runtime shared by every plugin.
type Host struct {
	opts   Options
	rt     wazero.Runtime
	cache  wazero.CompilationCache
	budget *Budget
	guests *guestPriority // nil: guest code runs at the caller's priority

	mu      sync.Mutex
	modules map[string]*Module // by content hash
}

// NewHost starts a wazero runtime (compiler mode) for plugins.
func NewHost(ctx context.Context, opts Options) (*Host, error) {
	opts.defaults()
	// The CPU limit is fuel woven into each module at upload
	// (plugins/meter, ModeYield): each slice of fuel ends in a call to the
	// host, which checks the call's wall-clock deadline. wazero's own
	// context checks cost 6–23× (docs/RATIONALE.md).
	cfg := wazero.NewRuntimeConfigCompiler().
		WithMemoryLimitPages(opts.MemoryLimitPages)
	var cache wazero.CompilationCache
	if opts.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("plugins: compilation cache: %w", err)
		}
		cache = c
		cfg = cfg.WithCompilationCache(c)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	if _, err := meter.InstantiateYield(ctx, rt, slice); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	// AssemblyScript's abort(msg, file, line, col): a trap.
	if _, err := rt.NewHostModuleBuilder("env").NewFunctionBuilder().
		WithFunc(func(ctx context.Context, m api.Module, msg, file, line, col uint32) {
			panic(fmt.Sprintf("abort at line %d col %d", line, col))
		}).Export("abort").Instantiate(ctx); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	return &Host{opts: opts, rt: rt, cache: cache, modules: map[string]*Module{},
		budget: newBudget(opts.MemoryBudget, opts.MaxInstances, opts.Wait),
		guests: newGuestPriority(opts.Nice, opts.Logger)}, nil
}

// Budget returns the node's plugin budget.
func (h *Host) Budget() *Budget { return h.budget }

// Close releases the runtime and every instance.
func (h *Host) Close(ctx context.Context) error {
	err := h.rt.Close(ctx)
	if h.cache != nil {
		h.cache.Close(ctx)
	}
	return err
}

// Module is a compiled plugin module, shared by every version that uses the
// same bytes.
type Module struct {
	Hash     string // hex SHA-256 of the uploaded bytes
	Size     int
	compiled wazero.CompiledModule
	minMem   int64 // bytes of linear memory an instance starts with
}

// Compile checks and compiles a module: size, imports (WASI and env.abort
// only), the ABI exports and their signatures, one exported memory.
func (h *Host) Compile(ctx context.Context, wasm []byte) (*Module, error) {
	if len(wasm) > h.opts.MaxModuleSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrInvalid, len(wasm), h.opts.MaxModuleSize)
	}
	sum := sha256.Sum256(wasm)
	hash := hex.EncodeToString(sum[:])
	h.mu.Lock()
	m := h.modules[hash]
	h.mu.Unlock()
	if m != nil {
		return m, nil
	}
	metered, err := meter.Instrument(wasm, meter.Options{Mode: meter.ModeYield, AllowStart: true})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	compiled, err := h.rt.CompileModule(ctx, metered)
	if err != nil {
		return nil, fmt.Errorf("%w: does not compile: %v", ErrInvalid, err)
	}
	if err := checkModule(compiled); err != nil {
		compiled.Close(ctx)
		return nil, err
	}
	m = &Module{Hash: hash, Size: len(wasm), compiled: compiled,
		minMem: int64(compiled.ExportedMemories()["memory"].Min()) << 16}
	h.mu.Lock()
	if old := h.modules[hash]; old != nil {
		h.mu.Unlock()
		compiled.Close(ctx)
		return old, nil
	}
	h.modules[hash] = m
	h.mu.Unlock()
	return m, nil
}

var i32, i64 = api.ValueTypeI32, api.ValueTypeI64

var requiredExports = map[string][2][]api.ValueType{
	"uptimizr_abi_version": {nil, {i32}},
	"uptimizr_alloc":       {{i32}, {i32}},
	"uptimizr_init":        {{i32, i32}, {i32}},
	"uptimizr_filter":      {{i32, i32}, {i64}},
}

func checkModule(c wazero.CompiledModule) error {
	for _, f := range c.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod == wasi_snapshot_preview1.ModuleName || (mod == "env" && name == "abort") ||
			(mod == meter.YieldModule && name == meter.YieldFunc) { // added by meter.Instrument
			continue
		}
		return fmt.Errorf("%w: imports %s.%s; only wasi_snapshot_preview1 and env.abort are provided", ErrInvalid, mod, name)
	}
	if len(c.ImportedMemories()) > 0 {
		return fmt.Errorf("%w: imports a memory; a plugin must define and export its own", ErrInvalid)
	}
	if _, ok := c.ExportedMemories()["memory"]; !ok {
		return fmt.Errorf("%w: exports no memory named \"memory\"", ErrInvalid)
	}
	exports := c.ExportedFunctions()
	for name, sig := range requiredExports {
		f, ok := exports[name]
		if !ok {
			return fmt.Errorf("%w: missing export %s", ErrInvalid, name)
		}
		if !sameTypes(f.ParamTypes(), sig[0]) || !sameTypes(f.ResultTypes(), sig[1]) {
			return fmt.Errorf("%w: export %s has the wrong signature", ErrInvalid, name)
		}
	}
	return nil
}

func sameTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// slice is the fuel a guest runs on between two checks of its deadline
// (meter.DefaultSlice: from about 50 µs of a tight AssemblyScript loop to
// 1 ms of Go). It bounds how late a deadline is noticed, and how long a
// spinning guest can hold off a garbage collection, which waits for every
// goroutine, including this one, to leave compiled code.
const slice = meter.DefaultSlice

// instance is one initialised module instance. It serves one call at a time.
type instance struct {
	mod    api.Module
	alloc  api.Function
	filter api.Function
	mem    api.Memory
	fuel   api.MutableGlobal
	// cut is the context of the instance's calls: it carries the call's
	// deadline and zeroes the fuel when it passes (meter.Cutter), so a
	// call is cut at the guest's next check, not at the end of its slice.
	// It is reused for every call, so a call allocates no context or timer.
	cut   *meter.Cutter
	lin   *linearMemory // its memory, charged to the budget
	b     *Budget
	stack [2]uint64
}

// newInstance instantiates m in the sandbox for p (nil: outside any
// plugin's pool) and initialises it with config. It first takes room in
// the budget, waiting for it if need be (ErrBusy when it does not come).
func (h *Host) newInstance(ctx context.Context, p *Plugin, m *Module, config []byte) (*instance, error) {
	if err := h.budget.reserve(m.minMem, p); err != nil {
		return nil, err
	}
	alloc := &memAllocator{b: h.budget, owner: p, reserved: m.minMem}
	in, err := h.instantiate(experimental.WithMemoryAllocator(ctx, alloc), m, config)
	if err != nil {
		// The module is closed (its memory freed) or was never made.
		if alloc.mem != nil {
			alloc.mem.Free()
		} else {
			h.budget.release(alloc.reserved, false)
		}
		h.budget.release(0, true)
		if alloc.mem != nil && alloc.mem.refused.Load() {
			return nil, fmt.Errorf("%w: setting up an instance: %v", ErrBusy, err)
		}
		return nil, err
	}
	in.lin, in.b = alloc.mem, h.budget
	return in, nil
}

func (h *Host) instantiate(ctx context.Context, m *Module, config []byte) (*instance, error) {
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions(). // _initialize is called below, under the deadline
		WithSysNanotime().
		WithSysWalltime().
		WithRandSource(rand.Reader)
	// Setup (a start function, _initialize, uptimizr_init) may take longer
	// than a filter call, within reason.
	ctx, cancel := context.WithTimeout(ctx, 10*h.opts.CallTimeout)
	defer cancel()
	mod, err := h.rt.InstantiateModule(ctx, m.compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: instantiate: %v", ErrTrap, err)
	}
	in := &instance{mod: mod, alloc: mod.ExportedFunction("uptimizr_alloc"), filter: mod.ExportedFunction("uptimizr_filter"),
		mem: mod.Memory(), fuel: meter.FuelGlobal(mod)}
	fail := func(err error) (*instance, error) {
		mod.Close(context.Background())
		return nil, err
	}
	if in.fuel == nil {
		return fail(fmt.Errorf("%w: the module was not metered", ErrInvalid))
	}
	in.cut = meter.NewCutter(in.fuel, slice)
	in.fuel.Set(slice)
	if f := mod.ExportedFunction("_initialize"); f != nil {
		if _, err := f.Call(ctx); err != nil {
			return fail(callErr(ctx, "_initialize", err))
		}
	}
	res, err := mod.ExportedFunction("uptimizr_abi_version").Call(ctx)
	if err != nil {
		return fail(callErr(ctx, "uptimizr_abi_version", err))
	}
	if v := int32(res[0]); v != ABIVersion {
		return fail(fmt.Errorf("%w: ABI version %d, this host runs %d", ErrInvalid, v, ABIVersion))
	}
	if len(config) == 0 {
		config = []byte("{}")
	}
	ptr, err := in.write(ctx, config)
	if err != nil {
		return fail(err)
	}
	res, err = mod.ExportedFunction("uptimizr_init").Call(ctx, uint64(ptr), uint64(len(config)))
	if err != nil {
		return fail(callErr(ctx, "uptimizr_init", err))
	}
	if code := int32(res[0]); code != 0 {
		return fail(fmt.Errorf("%w: uptimizr_init returned %d", ErrGuest, code))
	}
	return in, nil
}

// write copies b into guest memory obtained from uptimizr_alloc.
func (in *instance) write(ctx context.Context, b []byte) (uint32, error) {
	in.stack[0] = uint64(len(b))
	if err := in.alloc.CallWithStack(ctx, in.stack[:]); err != nil {
		return 0, callErr(ctx, "uptimizr_alloc", err)
	}
	ptr := uint32(in.stack[0])
	if ptr == 0 && len(b) > 0 {
		return 0, fmt.Errorf("%w: uptimizr_alloc(%d) returned 0", ErrGuest, len(b))
	}
	if !in.mem.Write(ptr, b) {
		return 0, fmt.Errorf("%w: uptimizr_alloc returned memory outside the module", ErrBadOutput)
	}
	return ptr, nil
}

// call runs uptimizr_filter on an encoded batch and appends the output to
// dst, ending it with ErrTimeout at the guest's first check after timeout
// (wall-clock; see meter.Cutter). Any error means the instance must not be
// used again.
func (in *instance) call(ctx context.Context, batch, dst []byte, timeout time.Duration) ([]byte, error) {
	if in.lin != nil {
		in.lin.refused.Store(false)
	}
	cctx := in.cut.Arm(ctx, timeout)
	ptr, err := in.write(cctx, batch)
	if err == nil {
		in.stack[0], in.stack[1] = uint64(ptr), uint64(len(batch))
		if err = in.filter.CallWithStack(cctx, in.stack[:]); err != nil {
			err = callErr(cctx, "uptimizr_filter", err)
		}
	}
	in.cut.Disarm()
	if err != nil {
		if in.lin != nil && in.lin.refused.Load() {
			// Its memory could not grow for want of room in the node's
			// budget: not the plugin's fault.
			return dst, fmt.Errorf("%w: %v", ErrBusy, err)
		}
		return dst, err
	}
	return in.result(dst)
}

// result reads the verdicts uptimizr_filter left in stack[0].
func (in *instance) result(dst []byte) ([]byte, error) {
	r := int64(in.stack[0])
	if r < 0 {
		return dst, fmt.Errorf("%w: %d", ErrGuest, r)
	}
	outPtr, outLen := uint32(uint64(r)>>32), uint32(r)
	out, ok := in.mem.Read(outPtr, outLen)
	if !ok {
		return dst, fmt.Errorf("%w: result [%d, +%d) lies outside memory", ErrBadOutput, outPtr, outLen)
	}
	return append(dst, out...), nil
}

func (in *instance) close() {
	if in.cut != nil {
		in.cut.Disarm()
	}
	in.mod.Close(context.Background())
	if in.lin != nil {
		in.lin.Free() // wazero has; this is in case it did not
		in.b.release(0, true)
	}
}

func callErr(ctx context.Context, fn string, err error) error {
	if errors.Is(err, meter.ErrInterrupted) || ctx.Err() != nil {
		return fmt.Errorf("%w (%s)", ErrTimeout, fn)
	}
	return fmt.Errorf("%w in %s: %v", ErrTrap, fn, err)
}

// le32 helpers for the batch encoding.
func appendU32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
