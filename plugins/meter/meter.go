// Package meter rewrites a WebAssembly module so that a host can interrupt
// it: it weaves a check into the entry of functions and the header of every
// loop, so that no guest can run for long without passing one.
//
// The checks count fuel in a mutable i64 global, exported as FuelExport.
// Each check subtracts a static cost from it; bulk memory and table
// instructions are charged their length besides (see BulkShift), before
// they run, through a second global that is not exported. When the fuel
// goes negative, the guest calls a host function (imported as
// YieldModule.YieldFunc, see InstantiateYield). The host function checks
// the call's context, traps if its deadline has passed or it was
// cancelled, and otherwise refills the fuel with one slice. So the guest
// returns to Go code once per slice: deadlines are wall-clock, and the Go
// scheduler gets the goroutine back regularly (see the scheduling hazard
// below). A Cutter also zeroes the fuel at the deadline, so that the guest
// yields at its next check instead of at the end of its slice. Consumption
// depends only on the path the guest takes, so it is deterministic. Adding
// an import shifts the indices of the module's own functions by one; every
// reference to them is rewritten.
//
// Memory model: a Cutter's timer writes the fuel from one goroutine while
// the guest's compiled code reads and writes it on another, with no
// synchronisation that the Go memory model knows of. wazero keeps the
// value of a defined global in the instance's memory, and its compiler
// reloads it at every check that follows a branch target (every loop
// header, every function entry), so the store becomes visible to the guest
// as soon as the hardware propagates it (amd64 and arm64 are cache
// coherent). The guest's own update of the fuel can overwrite that store,
// which is why the Cutter repeats it (see Cutter). The race detector does
// not see the guest's reads and writes.
//
// Scheduling hazard: compiled guest code cannot be preempted by the Go
// runtime. A stop-the-world phase (every garbage collection has two) that
// begins while a guest runs waits until the guest returns or calls the
// host, and until then no other goroutine runs, including the Cutter's
// timer. The guest calls the host at the end of every slice of fuel, so
// such a collection is delayed by at most one slice, and the yield
// function compares the clock with the deadline itself, so the deadline is
// still seen at the end of the slice. An interrupt that relied only on
// another goroutine (a stop flag set by a timer) would hang the whole
// process there. (wazero's WithCloseOnContextDone avoids the hazard by
// leaving compiled code at every loop header, which is why it is slow.)
//
// A trap leaves the instance in an undefined state (the guest's runtime
// may have been stopped half-way through a change to its heap): the host
// must close that instance and never call it again.
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

// ModeYield charges a static cost at each check against an i64 fuel
// global, and calls the host to check the deadline and refill it whenever
// it is exhausted. It is the only mode.
const ModeYield Mode = 1

func (m Mode) String() string {
	if m == ModeYield {
		return "yield"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Names that Instrument adds. Every export whose name starts with
// ReservedPrefix is reserved, and so is the import module YieldModule:
// modules that already use one are rejected.
const (
	ReservedPrefix = "__uptimizr_"
	FuelExport     = ReservedPrefix + "fuel" // the fuel global
	YieldModule    = "__uptimizr"            // import module
	YieldFunc      = "yield"                 // import name
)

// maxLocals bounds the locals of one function, as browsers do: wazero
// allocates by the declared count.
const maxLocals = 50000

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

	// AllowStart accepts modules with a start function. By default they
	// are rejected: a start function runs during instantiation, before the
	// host can reach the instance's fuel (and arm a Cutter), so only the
	// yield function's check of the instantiation's context bounds it,
	// once per slice (the fuel starts at zero: its first check yields).
	// Plugins should export an initialiser instead (Go's c-shared build
	// mode and AssemblyScript's --exportStart do).
	AllowStart bool
}

// Errors that Instrument wraps.
var (
	ErrMalformed   = errors.New("meter: malformed module")
	ErrUnsupported = errors.New("meter: unsupported module")
	ErrReserved    = errors.New("meter: module uses a reserved name")
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
// woven in. The module itself is not modified. Two defined globals are
// added after all others, the fuel (exported as FuelExport) and the
// scratch of bulk charges, so global indices do not change. A function
// import is added after the others, so the module's own functions move up
// by one and every reference to them (calls, ref.func, exports, the start
// function, element segments, the name section) is rewritten.
func Instrument(module []byte, opts Options) ([]byte, error) {
	if opts.Mode != ModeYield {
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
	present := map[byte]bool{}
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
			if int(id) >= len(sectionRank) || sectionRank[id] == 0 {
				return nil, fmt.Errorf("%w: unknown section id %d at offset %d", ErrMalformed, id, at)
			}
			if sectionRank[id] <= last {
				return nil, fmt.Errorf("%w: section %d out of order or repeated at offset %d", ErrMalformed, id, at)
			}
			last = sectionRank[id]
			present[id] = true
			if id != secStart && id != secDataCount {
				sr := &reader{b: body}
				sr.count()
				if sr.err != nil {
					return nil, wrap(fmt.Sprintf("section %d", id), sr.err)
				}
			}
		}
		secs = append(secs, section{id, body})
	}

	ins := &instrumenter{opts: opts}
	var nFuncs uint32 // defined functions, from the function section
	for _, s := range secs {
		var err error
		switch s.id {
		case secType:
			ins.types, err = countTypes(s.body)
		case secImport:
			ins.funcImports, ins.global, err = countImports(s.body)
		case secGlobal:
			sr := &reader{b: s.body}
			ins.global += sr.u32()
			err = wrap("global section", sr.err)
		case secFunction:
			sr := &reader{b: s.body}
			nFuncs = sr.u32()
			err = wrap("function section", sr.err)
		case secTable:
			err = checkTables(s.body)
		case secStart:
			if !opts.AllowStart {
				err = fmt.Errorf("%w: module has a start function (export an initialiser instead)", ErrUnsupported)
			}
		case secTag:
			err = fmt.Errorf("%w: exception handling", ErrUnsupported)
		}
		if err != nil {
			return nil, err
		}
	}
	if ins.global >= 1<<31 || ins.funcImports >= 1<<31 || nFuncs >= 1<<31 {
		return nil, fmt.Errorf("%w: too many globals or functions", ErrMalformed)
	}
	if nFuncs > 0 && !present[secCode] {
		return nil, fmt.Errorf("%w: function section without code section", ErrMalformed)
	}
	ins.yield = ins.funcImports
	ins.buildChecks()

	out := make([]byte, 0, len(module)+len(module)/4+64)
	out = append(out, module[:8]...)
	// Sections that Instrument adds to, written empty where the module has
	// none.
	need := map[byte]bool{secType: true, secImport: true, secGlobal: true, secExport: true}
	emit := func(id byte, body []byte) error {
		var err error
		switch id {
		case secType:
			body = ins.typeSection(body)
		case secImport:
			body = ins.importSection(body)
		case secGlobal:
			body, err = ins.globalSection(body)
		case secExport:
			body, err = ins.exportSection(body)
		case secStart:
			sr := &reader{b: body}
			idx := sr.u32()
			if sr.err != nil || sr.off != len(body) {
				return fmt.Errorf("%w: start section", ErrMalformed)
			}
			body = binary.AppendUvarint(nil, uint64(ins.fn(idx)))
		case secElement:
			body, err = ins.elementSection(body)
		case secData:
			err = checkData(body)
		case secCode:
			var n uint32
			body, n, err = ins.codeSection(body)
			if err == nil && n != nFuncs {
				err = fmt.Errorf("%w: %d function bodies for %d functions", ErrMalformed, n, nFuncs)
			}
		}
		if err != nil {
			return err
		}
		out = appendSection(out, id, body)
		delete(need, id)
		return nil
	}
	// flush writes the added sections that are due before a section of
	// the given rank.
	flush := func(rank int) error {
		for _, id := range []byte{secType, secImport, secGlobal, secExport} {
			if need[id] && !present[id] && sectionRank[id] < rank {
				if err := emit(id, nil); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, s := range secs {
		if s.id == secCustom {
			sr := &reader{b: s.body}
			name := string(sr.name())
			if sr.err != nil {
				return nil, fmt.Errorf("%w: custom section: %v", ErrMalformed, sr.err)
			}
			switch {
			case strings.HasPrefix(name, ".debug_"):
				// DWARF describes code offsets that instrumentation moves.
			case name == "name":
				if body := ins.nameSection(s.body, sr.off); body != nil {
					out = appendSection(out, secCustom, body)
				}
			default:
				out = appendSection(out, secCustom, s.body)
			}
			continue
		}
		if err := flush(sectionRank[s.id]); err != nil {
			return nil, err
		}
		if err := emit(s.id, s.body); err != nil {
			return nil, err
		}
	}
	if err := flush(len(sectionRank) + 1); err != nil {
		return nil, err
	}
	return out, nil
}

// wrap returns err as an ErrUnsupported or, if it is not one, an
// ErrMalformed error, prefixed with where. It returns nil for nil.
func wrap(where string, err error) error {
	if err == nil {
		return nil
	}
	if where != "" {
		where += ": "
	}
	if errors.Is(err, ErrUnsupported) || errors.Is(err, ErrMalformed) || errors.Is(err, ErrReserved) {
		return fmt.Errorf("%s%w", where, err)
	}
	return fmt.Errorf("%w: %s%v", ErrMalformed, where, err)
}

func appendSection(out []byte, id byte, body []byte) []byte {
	out = append(out, id)
	out = binary.AppendUvarint(out, uint64(len(body)))
	return append(out, body...)
}

// trailing records an error if r has not consumed all of its input.
func (r *reader) trailing() {
	if r.err == nil && r.off != len(r.b) {
		r.fail("%d trailing bytes", len(r.b)-r.off)
	}
}

// countTypes counts the type section's entries, which must all be plain
// function types (one type index each).
func countTypes(b []byte) (uint32, error) {
	r := &reader{b: b}
	n := r.count()
	for i := uint32(0); i < n && r.err == nil; i++ {
		if form := r.byte(); form != 0x60 && r.err == nil {
			r.unsupported("type form 0x%02x", form)
		}
		for range 2 { // parameters, results
			k := r.count()
			for j := uint32(0); j < k && r.err == nil; j++ {
				r.valType()
			}
		}
	}
	r.trailing()
	return n, wrap("type section", r.err)
}

// checkData checks the structure of the data section.
func checkData(b []byte) error {
	r := &reader{b: b}
	n := r.count()
	for i := uint32(0); i < n && r.err == nil; i++ {
		switch flags := r.u32(); flags {
		case 0: // active, memory 0
			skipExpr(r)
		case 1: // passive
		case 2: // active, explicit memory
			r.u32()
			skipExpr(r)
		default:
			if r.err == nil {
				r.unsupported("data segment flags %d", flags)
			}
		}
		r.name() // the bytes
	}
	r.trailing()
	return wrap("data section", r.err)
}

// skipExpr skips a constant expression.
func skipExpr(r *reader) {
	for depth := 1; depth > 0 && r.err == nil; {
		switch _, class := r.instr(); class {
		case opBlock, opLoop:
			depth++
		case opEnd:
			depth--
		}
	}
}

// countImports counts the function and global imports.
func countImports(b []byte) (funcs, globals uint32, err error) {
	r := &reader{b: b}
	n := r.count()
	for i := uint32(0); i < n && r.err == nil; i++ {
		if string(r.name()) == YieldModule && r.err == nil {
			return 0, 0, fmt.Errorf("%w: import from %q", ErrReserved, YieldModule)
		}
		r.name()
		switch kind := r.byte(); kind {
		case 0x00: // function
			r.u32()
			funcs++
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
				r.unsupported("import kind 0x%02x", kind)
			}
		}
	}
	r.trailing()
	return funcs, globals, wrap("import section", r.err)
}

// checkTables checks the table section. Tables with an initialiser
// expression (which could refer to functions) are not supported.
func checkTables(b []byte) error {
	r := &reader{b: b}
	n := r.count()
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.valType()
		r.limits()
	}
	r.trailing()
	return wrap("table section", r.err)
}

type instrumenter struct {
	opts        Options
	types       uint32 // number of types: the index of the added one
	funcImports uint32 // number of function imports
	global      uint32 // index of the added global
	yield       uint32 // index of the added import

	// Check sequence, split where the fuel cost goes.
	pre, post []byte

	sites []site  // reused per function body
	edits []patch // reused per function body
}

// site is a place in a function body where a check goes.
type site struct {
	at   int   // offset in the body's code, after the locals
	cost int64 // fuel to charge there
	bulk bool  // a bulk memory or table instruction starts at at: charge its length
}

// BulkShift sets the charge of a bulk memory or table instruction
// (memory.fill, memory.copy, memory.init, table.fill, table.copy,
// table.init): one unit of fuel per 1<<BulkShift bytes or elements of
// its length, charged (and checked) before it runs. A fill or copy moves
// about 16 bytes in the time of an ordinary instruction; at a flat cost a
// guest could loop on 64 MiB fills for minutes on one slice of fuel, and a
// garbage collection waiting for it would stop the whole process.
const BulkShift = 4

// patch replaces a function index immediate in a function body.
type patch struct {
	at, end int    // the immediate's bytes in the body's code
	idx     uint32 // the new index
}

// fn maps an original function index to the instrumented module's: the
// added import moves the module's own functions up by one.
func (ins *instrumenter) fn(idx uint32) uint32 {
	if idx >= ins.funcImports {
		return idx + 1
	}
	return idx
}

func (ins *instrumenter) buildChecks() {
	g := binary.AppendUvarint(nil, uint64(ins.global))
	// global.get $fuel; i64.const cost; i64.sub; global.set $fuel
	// global.get $fuel; i64.const 0; i64.lt_s; if
	//   call $yield
	// end
	ins.pre = append(append([]byte{0x23}, g...), 0x42)
	ins.post = append(append([]byte{0x7d, 0x24}, g...), 0x23)
	ins.post = append(append(ins.post, g...), 0x42, 0x00, 0x53, 0x04, 0x40)
	ins.post = binary.AppendUvarint(append(ins.post, 0x10), uint64(ins.yield))
	ins.post = append(ins.post, 0x0b)
}

func (ins *instrumenter) appendCheck(out []byte, cost int64) []byte {
	out = append(out, ins.pre...)
	out = appendSleb(out, cost)
	return append(out, ins.post...)
}

// appendBulk charges the length on top of the stack (the last operand of
// every bulk instruction, an i32) before the instruction:
//
//	global.set $scratch; global.get $fuel; global.get $scratch
//	i64.extend_i32_u; i64.const BulkShift; i64.shr_u; i64.sub; global.set $fuel
//	(the check of appendCheck); global.get $scratch
func (ins *instrumenter) appendBulk(out []byte) []byte {
	g := binary.AppendUvarint(nil, uint64(ins.global))
	sc := binary.AppendUvarint(nil, uint64(ins.global)+1)
	out = append(append(out, 0x24), sc...)
	out = append(append(out, 0x23), g...)
	out = append(append(out, 0x23), sc...)
	out = append(out, 0xad, 0x42, BulkShift, 0x88)
	// ins.post starts with i64.sub; global.set $fuel and ends the check.
	out = append(out, ins.post...)
	return append(append(out, 0x23), sc...)
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

func appendName(out []byte, name string) []byte {
	out = binary.AppendUvarint(out, uint64(len(name)))
	return append(out, name...)
}

// vecTail returns a section's entry count and the bytes after it; b has
// been checked to start with a count.
func vecTail(b []byte) (uint32, []byte) {
	if b == nil {
		return 0, nil
	}
	r := &reader{b: b}
	n := r.count()
	return n, b[r.off:]
}

// typeSection appends the type of the yield import, () -> ().
func (ins *instrumenter) typeSection(old []byte) []byte {
	n, rest := vecTail(old)
	out := binary.AppendUvarint(nil, uint64(n)+1)
	out = append(out, rest...)
	return append(out, 0x60, 0, 0)
}

// importSection appends the yield import, after all others.
func (ins *instrumenter) importSection(old []byte) []byte {
	n, rest := vecTail(old)
	out := binary.AppendUvarint(nil, uint64(n)+1)
	out = append(out, rest...)
	out = appendName(out, YieldModule)
	out = appendName(out, YieldFunc)
	out = append(out, 0x00)
	return binary.AppendUvarint(out, uint64(ins.types))
}

// globalSection copies the globals, rewriting function references in their
// initialisers, and appends the added ones.
func (ins *instrumenter) globalSection(old []byte) ([]byte, error) {
	r := &reader{b: old}
	var n uint32
	if old != nil {
		n = r.count()
	}
	out := binary.AppendUvarint(nil, uint64(n)+2) // the fuel and the scratch of bulk charges
	for i := uint32(0); i < n && r.err == nil; i++ {
		at := r.off
		r.valType()
		r.byte()
		out = append(out, old[at:r.off]...)
		out = ins.expr(r, out)
	}
	r.trailing()
	if r.err != nil {
		return nil, wrap("global section", r.err)
	}
	// The fuel: mut i64 = i64.const 0, so the first check yields.
	out = append(out, 0x7e, 0x01, 0x42, 0x00, 0x0b)
	// The scratch of bulk charges (see appendBulk): mut i32 = i32.const 0.
	// Not exported.
	return append(out, 0x7f, 0x01, 0x41, 0x00, 0x0b), nil
}

// exportSection copies the exports, rewriting function indices, and
// appends the fuel global's.
func (ins *instrumenter) exportSection(old []byte) ([]byte, error) {
	r := &reader{b: old}
	var n uint32
	if old != nil {
		n = r.count()
	}
	out := binary.AppendUvarint(nil, uint64(n)+1)
	for i := uint32(0); i < n && r.err == nil; i++ {
		name := r.name()
		kind := r.byte()
		idx := r.u32()
		if r.err != nil {
			break
		}
		if strings.HasPrefix(string(name), ReservedPrefix) {
			return nil, fmt.Errorf("%w: export %q", ErrReserved, name)
		}
		switch kind {
		case 0x00:
			idx = ins.fn(idx)
		case 0x03:
			if idx >= ins.global {
				return nil, fmt.Errorf("%w: export of global %d, which does not exist", ErrMalformed, idx)
			}
		}
		out = appendName(out, string(name))
		out = append(out, kind)
		out = binary.AppendUvarint(out, uint64(idx))
	}
	r.trailing()
	if r.err != nil {
		return nil, wrap("export section", r.err)
	}
	out = appendName(out, FuelExport)
	out = append(out, 0x03) // global
	return binary.AppendUvarint(out, uint64(ins.global)), nil
}

// elementSection rewrites the function indices of element segments.
func (ins *instrumenter) elementSection(b []byte) ([]byte, error) {
	r := &reader{b: b}
	n := r.count()
	out := binary.AppendUvarint(nil, uint64(n))
	for i := uint32(0); i < n && r.err == nil; i++ {
		at := r.off
		flags := r.u32()
		if flags > 7 {
			r.unsupported("element segment flags %d", flags)
			break
		}
		if flags&2 != 0 && flags&1 == 0 { // explicit table index
			r.u32()
		}
		out = append(out, b[at:r.off]...)
		if flags&1 == 0 { // active: offset expression
			out = ins.expr(r, out)
		}
		if flags&3 != 0 { // element kind or reference type
			at := r.off
			if flags&4 == 0 {
				if k := r.byte(); k != 0 && r.err == nil {
					r.unsupported("element kind 0x%02x", k)
				}
			} else {
				r.valType()
			}
			out = append(out, b[at:r.off]...)
		}
		k := r.count()
		out = binary.AppendUvarint(out, uint64(k))
		for j := uint32(0); j < k && r.err == nil; j++ {
			if flags&4 == 0 {
				out = binary.AppendUvarint(out, uint64(ins.fn(r.u32())))
			} else {
				out = ins.expr(r, out)
			}
		}
	}
	r.trailing()
	if r.err != nil {
		return nil, wrap("element section", r.err)
	}
	return out, nil
}

// expr copies a constant expression, rewriting ref.func.
func (ins *instrumenter) expr(r *reader, out []byte) []byte {
	for depth := 1; depth > 0 && r.err == nil; {
		at := r.off
		op, class := r.instr()
		switch class {
		case opBlock, opLoop:
			depth++
		case opEnd:
			depth--
		}
		if op == 0xd2 && r.err == nil {
			ir := &reader{b: r.b, off: at + 1}
			out = append(out, op)
			out = binary.AppendUvarint(out, uint64(ins.fn(ir.u32())))
			continue
		}
		out = append(out, r.b[at:r.off]...)
	}
	return out
}

// nameSection rewrites the function indices of the name section whose
// body is b, with the section's name ending at off. Label names are
// dropped: the added checks renumber labels. It returns nil, to drop the
// section, if the section cannot be read: it only serves debugging.
func (ins *instrumenter) nameSection(b []byte, off int) []byte {
	r := &reader{b: b, off: off}
	out := append([]byte(nil), b[:off]...)
	for !r.eof() {
		id := r.byte()
		sub := &reader{b: r.bytes(r.u32())}
		if r.err != nil {
			return nil
		}
		var body []byte
		switch id {
		case 1, 2: // function names, local names
			n := sub.count()
			body = binary.AppendUvarint(nil, uint64(n))
			for i := uint32(0); i < n && sub.err == nil; i++ {
				body = binary.AppendUvarint(body, uint64(ins.fn(sub.u32())))
				at := sub.off
				if id == 1 {
					sub.name()
				} else {
					m := sub.count()
					for j := uint32(0); j < m && sub.err == nil; j++ {
						sub.u32()
						sub.name()
					}
				}
				body = append(body, sub.b[at:sub.off]...)
			}
			sub.trailing()
			if sub.err != nil {
				return nil
			}
		case 3: // label names
			continue
		default:
			body = sub.b
		}
		out = append(out, id)
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	return out
}

// codeSection rewrites every function body, returning the new section and
// the number of bodies.
func (ins *instrumenter) codeSection(b []byte) ([]byte, uint32, error) {
	r := &reader{b: b}
	n := r.count()
	if r.err != nil {
		return nil, 0, wrap("code section", r.err)
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
	groups := r.count()
	var nLocals uint64
	for i := uint32(0); i < groups && r.err == nil; i++ {
		nLocals += uint64(r.u32())
		r.valType()
	}
	if r.err != nil {
		return nil, wrap("locals", r.err)
	}
	if nLocals > maxLocals {
		return nil, fmt.Errorf("%w: %d locals (at most %d)", ErrUnsupported, nLocals, maxLocals)
	}
	locals := body[:r.off]
	code := body[r.off:]

	// Scan the code for check sites, function indices to rewrite, and
	// whether it calls.
	sites := append(ins.sites[:0], site{at: 0, cost: 1})
	edits := ins.edits[:0]
	open := 0      // index of the site whose straight-line run is being counted, or -1
	calls := false // the function calls another
	leading := true
	entryCovered := false // a loop header comes before any other instruction
	depth := 1
	r = &reader{b: code}
	for depth > 0 {
		at := r.off
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
		switch op {
		case 0x03: // loop
			sites = append(sites, site{at: r.off, cost: 1})
			open = len(sites) - 1
		case 0x10, 0x12, 0xd2: // call, return_call, ref.func
			ir := &reader{b: code, off: at + 1}
			edits = append(edits, patch{at: at + 1, end: r.off, idx: ins.fn(ir.u32())})
		case 0xfc:
			ir := &reader{b: code, off: at + 1}
			switch ir.u32() {
			case 8, 10, 11, 12, 14, 17: // memory.init, .copy, .fill; table.init, .copy, .fill
				sites = append(sites, site{at: at, bulk: true})
			}
		case 0x23, 0x24: // global.get, global.set
			ir := &reader{b: code, off: at + 1}
			if idx := ir.u32(); idx >= ins.global {
				// Valid only once the global is added: the guest would
				// reach the host's control global.
				return nil, fmt.Errorf("%w: reference to global %d, which does not exist", ErrMalformed, idx)
			}
		}
	}
	if r.off != len(code) {
		return nil, fmt.Errorf("%w: %d bytes after the end of the body", ErrMalformed, len(code)-r.off)
	}
	ins.sites, ins.edits = sites[:0], edits[:0]
	if entryCovered || (!calls && !ins.opts.AllEntries) {
		sites = sites[1:]
	}

	out = append(out, locals...)
	prev := 0
	for len(sites) > 0 || len(edits) > 0 {
		if len(edits) == 0 || (len(sites) > 0 && sites[0].at <= edits[0].at) {
			s := sites[0]
			sites = sites[1:]
			out = append(out, code[prev:s.at]...)
			if s.bulk {
				out = ins.appendBulk(out)
			} else {
				out = ins.appendCheck(out, s.cost)
			}
			prev = s.at
		} else {
			e := edits[0]
			edits = edits[1:]
			out = append(out, code[prev:e.at]...)
			out = binary.AppendUvarint(out, uint64(e.idx))
			prev = e.end
		}
	}
	return append(out, code[prev:]...), nil
}
