// Package meter rewrites a WebAssembly module so that a host can interrupt
// it: it weaves a check into the entry of functions and the header of every
// loop, so that no guest can run for long without passing one.
//
// Two kinds of check are offered.
//
// ModeFuel adds a mutable i64 global, exported as FuelExport. Each check
// subtracts a static cost from it and traps (unreachable) once it goes
// negative. The host sets the budget before a call and can read what is
// left after it. Consumption depends only on the path the guest takes, so
// it is deterministic, but the budget is in abstract units, not time.
//
// ModeFlag adds a mutable i32 global, exported as StopExport. Each check
// reads it and traps when it is non-zero. The host arms a timer per call
// (see Alarm) that sets it from another goroutine when the deadline passes.
//
// Memory model: the flag is written by one goroutine and read by the
// guest's compiled code running on another, with no synchronisation that
// the Go memory model knows of. wazero keeps the value of a defined global
// in the instance's memory, and its compiler reloads it at every check that
// follows a branch target (every loop header, every function entry), so the
// store becomes visible to the guest as soon as the hardware propagates it
// (amd64 and arm64 are cache coherent; TestFlagInterruptsSpin measures the
// latency). The guest never writes the flag, so there is no lost update.
// The race detector does not see the guest's reads.
//
// Scheduling hazard: compiled guest code cannot be preempted by the Go
// runtime. A stop-the-world phase (every garbage collection has two) that
// begins while a guest runs waits until the guest returns, and until then
// no other goroutine runs, including the timer that would set the flag. A
// runaway ModeFlag guest that meets a garbage collection therefore hangs
// the whole process (TestFlagStallsUnderGC). ModeFuel needs no other
// goroutine: the guest stops itself when its fuel is gone, so a collection
// that starts meanwhile is delayed by at most the time the remaining fuel
// lasts. (wazero's WithCloseOnContextDone avoids the hazard by leaving
// compiled code at every loop header, which is why it is slow.)
//
// Whatever the mode, a trap leaves the instance in an undefined state (the
// guest's runtime may have been stopped half-way through a change to its
// heap): the host must close that instance and never call it again.
package meter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Mode selects the kind of check that Instrument weaves in.
type Mode uint8

const (
	// ModeFuel charges a static cost at each check against an i64 budget.
	ModeFuel Mode = iota + 1
	// ModeFlag tests an i32 stop flag at each check.
	ModeFlag
)

func (m Mode) String() string {
	switch m {
	case ModeFuel:
		return "fuel"
	case ModeFlag:
		return "flag"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Names of the globals that Instrument exports. Every export whose name
// starts with ReservedPrefix is reserved: modules that already have one are
// rejected.
const (
	ReservedPrefix = "__uptimizr_"
	FuelExport     = ReservedPrefix + "fuel"
	StopExport     = ReservedPrefix + "stop"
)

// DefaultInitialFuel is the fuel a ModeFuel instance starts with when
// Options.InitialFuel is zero.
const DefaultInitialFuel = 1 << 30

// Options configures Instrument. The zero value of every field except Mode
// is the recommended setting.
type Options struct {
	Mode Mode

	// AllEntries also checks at the entry of functions that make no call.
	// Such a function can only run for long inside a loop, whose header is
	// checked, so by default their entry is left alone. (The entry of a
	// function whose body starts with a loop is never checked: the loop's
	// own check comes first.)
	AllEntries bool

	// FlatCost (ModeFuel) charges one unit per check instead of the length
	// of the straight-line run of instructions that follows the check.
	FlatCost bool

	// InitialFuel (ModeFuel) is the value the fuel global starts with, and
	// so the budget of the start function, if the module has one and
	// AllowStart is set. Zero means DefaultInitialFuel.
	InitialFuel int64

	// AllowStart accepts modules with a start function. By default they
	// are rejected: a start function runs during instantiation, before the
	// host can reach the flag global, so ModeFlag cannot interrupt it, and
	// in ModeFuel it can only be bounded by InitialFuel. Plugins should
	// export an initialiser instead (Go's c-shared build mode and
	// AssemblyScript's --exportStart do).
	AllowStart bool
}

// Errors that Instrument wraps.
var (
	ErrMalformed   = errors.New("meter: malformed module")
	ErrUnsupported = errors.New("meter: unsupported module")
	ErrReserved    = errors.New("meter: module exports a reserved name")
)

// Section ids.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13
)

// sectionRank gives the required order of the non-custom sections.
var sectionRank = [...]int{
	secType: 1, secImport: 2, secFunction: 3, secTable: 4, secMemory: 5,
	secTag: 6, secGlobal: 7, secExport: 8, secStart: 9, secElement: 10,
	secDataCount: 11, secCode: 12, secData: 13,
}

type section struct {
	id   byte
	body []byte // contents, without id and size
}

// Instrument returns a copy of the wasm module with interruption checks
// woven in. The module itself is not modified. Function indices, global
// indices and existing exports are unchanged: one defined global is added
// after all others and exported under the mode's reserved name.
func Instrument(module []byte, opts Options) ([]byte, error) {
	if opts.Mode != ModeFuel && opts.Mode != ModeFlag {
		return nil, fmt.Errorf("meter: unknown mode %d", opts.Mode)
	}
	if len(module) < 8 || !bytes.Equal(module[:4], []byte("\x00asm")) {
		return nil, fmt.Errorf("%w: not a wasm binary", ErrMalformed)
	}
	if binary.LittleEndian.Uint32(module[4:8]) != 1 {
		return nil, fmt.Errorf("%w: binary format version %d", ErrUnsupported, binary.LittleEndian.Uint32(module[4:8]))
	}

	// Split into sections, checking their order.
	var secs []section
	r := &reader{b: module, off: 8}
	last := 0
	for !r.eof() {
		at := r.off
		id := r.byte()
		body := r.bytes(r.u32())
		if r.err != nil {
			return nil, fmt.Errorf("%w: section at offset %d: %v", ErrMalformed, at, r.err)
		}
		if id != secCustom {
			if int(id) >= len(sectionRank) {
				return nil, fmt.Errorf("%w: unknown section id %d at offset %d", ErrMalformed, id, at)
			}
			if sectionRank[id] <= last {
				return nil, fmt.Errorf("%w: section %d out of order or repeated at offset %d", ErrMalformed, id, at)
			}
			last = sectionRank[id]
		}
		secs = append(secs, section{id, body})
	}

	var (
		globalIndex uint32 // index of the added global
		nFuncs      uint32 // defined functions, from the function section
		haveFuncs   bool
		haveCode    bool
	)
	for _, s := range secs {
		switch s.id {
		case secImport:
			n, err := importedGlobals(s.body)
			if err != nil {
				return nil, err
			}
			globalIndex += n
		case secGlobal:
			sr := &reader{b: s.body}
			globalIndex += sr.u32()
			if sr.err != nil {
				return nil, fmt.Errorf("%w: global section: %v", ErrMalformed, sr.err)
			}
		case secFunction:
			sr := &reader{b: s.body}
			nFuncs = sr.u32()
			haveFuncs = true
			if sr.err != nil {
				return nil, fmt.Errorf("%w: function section: %v", ErrMalformed, sr.err)
			}
		case secExport:
			if err := checkExports(s.body); err != nil {
				return nil, err
			}
		case secStart:
			if !opts.AllowStart {
				return nil, fmt.Errorf("%w: module has a start function (export an initialiser instead)", ErrUnsupported)
			}
		case secTag:
			return nil, fmt.Errorf("%w: exception handling", ErrUnsupported)
		case secCode:
			haveCode = true
		}
	}
	if globalIndex >= 1<<31 {
		return nil, fmt.Errorf("%w: too many globals", ErrMalformed)
	}
	if haveFuncs && nFuncs > 0 && !haveCode {
		return nil, fmt.Errorf("%w: function section without code section", ErrMalformed)
	}

	ins := instrumenter{opts: opts, global: globalIndex}
	ins.buildChecks()

	out := make([]byte, 0, len(module)+len(module)/4+64)
	out = append(out, module[:8]...)
	wroteGlobal, wroteExport := false, false
	// flush writes the added global and export sections if they are still
	// due before a section of the given rank.
	flush := func(rank int) {
		if !wroteGlobal && rank > sectionRank[secGlobal] {
			out = appendSection(out, secGlobal, ins.globalSection(nil))
			wroteGlobal = true
		}
		if !wroteExport && rank > sectionRank[secExport] {
			out = appendSection(out, secExport, ins.exportSection(nil))
			wroteExport = true
		}
	}
	for _, s := range secs {
		switch s.id {
		case secCustom:
			sr := &reader{b: s.body}
			name := sr.name()
			if sr.err != nil {
				return nil, fmt.Errorf("%w: custom section: %v", ErrMalformed, sr.err)
			}
			// DWARF describes code offsets that instrumentation moves.
			if strings.HasPrefix(string(name), ".debug_") {
				continue
			}
			out = appendSection(out, s.id, s.body)
		case secGlobal:
			flush(sectionRank[secGlobal])
			out = appendSection(out, s.id, ins.globalSection(s.body))
			wroteGlobal = true
		case secExport:
			flush(sectionRank[secExport])
			out = appendSection(out, s.id, ins.exportSection(s.body))
			wroteExport = true
		case secCode:
			flush(sectionRank[secCode])
			body, n, err := ins.codeSection(s.body)
			if err != nil {
				return nil, err
			}
			if haveFuncs && n != nFuncs {
				return nil, fmt.Errorf("%w: %d function bodies for %d functions", ErrMalformed, n, nFuncs)
			}
			out = appendSection(out, s.id, body)
		default:
			flush(sectionRank[s.id])
			out = appendSection(out, s.id, s.body)
		}
	}
	flush(len(sectionRank) + 1)
	return out, nil
}

// wrap returns err as an ErrUnsupported or, if it is not one, an
// ErrMalformed error, prefixed with where.
func wrap(where string, err error) error {
	if where != "" {
		where += ": "
	}
	if errors.Is(err, ErrUnsupported) {
		return fmt.Errorf("%s%w", where, err)
	}
	return fmt.Errorf("%w: %s%v", ErrMalformed, where, err)
}

func appendSection(out []byte, id byte, body []byte) []byte {
	out = append(out, id)
	out = binary.AppendUvarint(out, uint64(len(body)))
	return append(out, body...)
}

// importedGlobals counts the global imports.
func importedGlobals(b []byte) (uint32, error) {
	r := &reader{b: b}
	var globals uint32
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.name()
		r.name()
		switch kind := r.byte(); kind {
		case 0x00: // function
			r.u32()
		case 0x01: // table
			r.valType()
			r.limits()
		case 0x02: // memory
			r.limits()
		case 0x03: // global
			r.valType()
			r.byte()
			globals++
		default:
			if r.err == nil {
				return 0, fmt.Errorf("%w: import kind 0x%02x", ErrUnsupported, kind)
			}
		}
	}
	if r.err == nil && r.off != len(b) {
		r.fail("%d trailing bytes", len(b)-r.off)
	}
	if r.err != nil {
		return 0, wrap("import section", r.err)
	}
	return globals, nil
}

// checkExports rejects export sections that are malformed or use a
// reserved name.
func checkExports(b []byte) error {
	r := &reader{b: b}
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		name := r.name()
		r.byte()
		r.u32()
		if r.err == nil && strings.HasPrefix(string(name), ReservedPrefix) {
			return fmt.Errorf("%w: %q", ErrReserved, name)
		}
	}
	if r.err == nil && r.off != len(b) {
		r.fail("%d trailing bytes", len(b)-r.off)
	}
	if r.err != nil {
		return wrap("export section", r.err)
	}
	return nil
}

type instrumenter struct {
	opts   Options
	global uint32 // index of the added global

	// Check sequences, split where the fuel cost goes.
	pre, post []byte

	sites []site // reused per function body
}

// site is a place in a function body where a check goes.
type site struct {
	at   int   // offset in the body's code, after the locals
	cost int64 // fuel to charge there
}

func (ins *instrumenter) buildChecks() {
	g := binary.AppendUvarint(nil, uint64(ins.global))
	switch ins.opts.Mode {
	case ModeFuel:
		// global.get $fuel; i64.const cost; i64.sub; global.set $fuel
		// global.get $fuel; i64.const 0; i64.lt_s; if; unreachable; end
		ins.pre = append(append([]byte{0x23}, g...), 0x42)
		ins.post = append(append([]byte{0x7d, 0x24}, g...), 0x23)
		ins.post = append(append(ins.post, g...), 0x42, 0x00, 0x53, 0x04, 0x40, 0x00, 0x0b)
	case ModeFlag:
		// global.get $stop; if; unreachable; end
		ins.pre = append(append([]byte{0x23}, g...), 0x04, 0x40, 0x00, 0x0b)
	}
}

func (ins *instrumenter) appendCheck(out []byte, cost int64) []byte {
	out = append(out, ins.pre...)
	if ins.opts.Mode == ModeFuel {
		if ins.opts.FlatCost {
			cost = 1
		}
		out = appendSleb(out, cost)
		out = append(out, ins.post...)
	}
	return out
}

func appendSleb(out []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(out, c)
		}
		out = append(out, c|0x80)
	}
}

func (ins *instrumenter) globalSection(old []byte) []byte {
	var n uint32
	var rest []byte
	if old != nil {
		r := &reader{b: old}
		n = r.u32() // validated already
		rest = old[r.off:]
	}
	out := binary.AppendUvarint(nil, uint64(n)+1)
	out = append(out, rest...)
	switch ins.opts.Mode {
	case ModeFuel:
		fuel := ins.opts.InitialFuel
		if fuel == 0 {
			fuel = DefaultInitialFuel
		}
		out = append(out, 0x7e, 0x01, 0x42) // mut i64 = i64.const
		out = appendSleb(out, fuel)
		out = append(out, 0x0b)
	case ModeFlag:
		out = append(out, 0x7f, 0x01, 0x41, 0x00, 0x0b) // mut i32 = i32.const 0
	}
	return out
}

func (ins *instrumenter) exportSection(old []byte) []byte {
	var n uint32
	var rest []byte
	if old != nil {
		r := &reader{b: old}
		n = r.u32() // validated already
		rest = old[r.off:]
	}
	name := FuelExport
	if ins.opts.Mode == ModeFlag {
		name = StopExport
	}
	out := binary.AppendUvarint(nil, uint64(n)+1)
	out = append(out, rest...)
	out = binary.AppendUvarint(out, uint64(len(name)))
	out = append(out, name...)
	out = append(out, 0x03) // global
	return binary.AppendUvarint(out, uint64(ins.global))
}

// codeSection rewrites every function body, returning the new section and
// the number of bodies.
func (ins *instrumenter) codeSection(b []byte) ([]byte, uint32, error) {
	r := &reader{b: b}
	n := r.u32()
	if r.err != nil {
		return nil, 0, fmt.Errorf("%w: code section: %v", ErrMalformed, r.err)
	}
	out := make([]byte, 0, len(b)+len(b)/4+16)
	out = binary.AppendUvarint(out, uint64(n))
	var fn []byte
	for i := uint32(0); i < n; i++ {
		at := r.off
		body := r.bytes(r.u32())
		if r.err != nil {
			return nil, 0, fmt.Errorf("%w: body of function %d at offset %d: %v", ErrMalformed, i, at, r.err)
		}
		var err error
		fn, err = ins.function(fn[:0], body)
		if err != nil {
			return nil, 0, fmt.Errorf("body of function %d: %w", i, err)
		}
		out = binary.AppendUvarint(out, uint64(len(fn)))
		out = append(out, fn...)
	}
	if r.off != len(b) {
		return nil, 0, fmt.Errorf("%w: code section: %d trailing bytes", ErrMalformed, len(b)-r.off)
	}
	return out, n, nil
}

// function appends the instrumented copy of one function body to out.
func (ins *instrumenter) function(out, body []byte) ([]byte, error) {
	r := &reader{b: body}
	groups := r.u32()
	for i := uint32(0); i < groups && r.err == nil; i++ {
		r.u32()
		r.valType()
	}
	if r.err != nil {
		return nil, wrap("locals", r.err)
	}
	locals := body[:r.off]
	code := body[r.off:]

	// Scan the code for check sites, and whether it calls.
	sites := append(ins.sites[:0], site{at: 0, cost: 1})
	open := 0      // index of the site whose straight-line run is being counted, or -1
	calls := false // the function calls another
	leading := true
	entryCovered := false // a loop header comes before any other instruction
	depth := 1
	r = &reader{b: code}
	for depth > 0 {
		op, class := r.instr()
		if r.err != nil {
			return nil, wrap("", r.err)
		}
		if open >= 0 {
			sites[open].cost++
			if class != opPlain {
				open = -1
			}
		}
		if leading {
			switch {
			case class == opLoop:
				entryCovered = true
				leading = false
			case op != 0x02: // only blocks may come before the loop
				leading = false
			}
		}
		switch class {
		case opBlock, opLoop:
			depth++
		case opEnd:
			depth--
		case opCall, opTail:
			calls = true
		}
		if class == opLoop {
			sites = append(sites, site{at: r.off, cost: 1})
			open = len(sites) - 1
		}
	}
	if r.off != len(code) {
		return nil, fmt.Errorf("%w: %d bytes after the end of the body", ErrMalformed, len(code)-r.off)
	}
	ins.sites = sites[:0]
	if entryCovered || (!calls && !ins.opts.AllEntries) {
		sites = sites[1:]
	}

	out = append(out, locals...)
	prev := 0
	for _, s := range sites {
		out = append(out, code[prev:s.at]...)
		out = ins.appendCheck(out, s.cost)
		prev = s.at
	}
	return append(out, code[prev:]...), nil
}
