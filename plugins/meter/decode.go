package meter

import (
	"errors"
	"fmt"
)

// reader decodes the wasm binary format. Errors are sticky: after the first
// one every method returns a zero value, so callers check r.err once per
// construct rather than after every field.
type reader struct {
	b   []byte
	off int
	err error
}

var errTruncated = errors.New("unexpected end of module")

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

// unsupported records an error for a construct that is valid wasm, or may
// be, but that this package does not handle.
func (r *reader) unsupported(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrUnsupported}, args...)...)
	}
}

func (r *reader) eof() bool { return r.err != nil || r.off >= len(r.b) }

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.err = errTruncated
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) bytes(n uint32) []byte {
	if r.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(r.b)-r.off) {
		r.err = errTruncated
		return nil
	}
	s := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return s
}

// uleb decodes an unsigned LEB128 number of at most bits bits.
func (r *reader) uleb(bits uint) uint64 {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		if shift+7 > bits && c&0x7f>>(bits-shift) != 0 {
			r.fail("integer too large at offset %d", r.off-1)
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
		if shift+7 >= bits {
			r.fail("integer representation too long at offset %d", r.off-1)
			return 0
		}
	}
}

// sleb decodes a signed LEB128 number of at most bits bits.
func (r *reader) sleb(bits uint) int64 {
	var v int64
	for shift := uint(0); ; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		if shift+7 >= bits {
			// Last permitted byte: no continuation, and the unused high bits
			// must all equal the sign bit.
			if c&0x80 != 0 {
				r.fail("integer representation too long at offset %d", r.off-1)
				return 0
			}
			rest := bits - shift // bits still to fill, 1..7
			hi := int8(c<<1) >> (rest)
			if hi != 0 && hi != -1 {
				r.fail("integer too large at offset %d", r.off-1)
				return 0
			}
		}
		v |= int64(c&0x7f) << shift
		if c&0x80 == 0 {
			if shift+7 < 64 && c&0x40 != 0 {
				v |= -1 << (shift + 7)
			}
			return v
		}
	}
}

func (r *reader) u32() uint32 { return uint32(r.uleb(32)) }

// count reads the length of a vector. Every entry takes at least a byte,
// so a count larger than what is left is malformed. (wazero sizes slices
// by declared counts: a few bytes claiming a hundred million entries make
// it allocate gigabytes before it finds out.)
func (r *reader) count() uint32 {
	n := r.u32()
	if r.err == nil && uint64(n) > uint64(len(r.b)-r.off) {
		r.fail("vector of %d entries in %d bytes", n, len(r.b)-r.off)
		return 0
	}
	return n
}

// name skips a length-prefixed byte string and returns it.
func (r *reader) name() []byte { return r.bytes(r.u32()) }

// Value types that can be copied without understanding them further.
func simpleValType(t byte) bool {
	switch t {
	case 0x7f, 0x7e, 0x7d, 0x7c, // i32 i64 f32 f64
		0x7b,       // v128
		0x70, 0x6f: // funcref externref
		return true
	}
	return false
}

func (r *reader) valType() {
	t := r.byte()
	if r.err == nil && !simpleValType(t) {
		r.unsupported("value type 0x%02x at offset %d", t, r.off-1)
	}
}

// blockType skips a block type: empty, a value type, or a type index.
func (r *reader) blockType() {
	at := r.off
	v := r.sleb(33)
	if r.err != nil || v >= 0 {
		return
	}
	// Negative values are single-byte type codes.
	if v == -0x40 || (r.off == at+1 && simpleValType(r.b[at])) {
		return
	}
	r.unsupported("block type at offset %d", at)
}

// limits skips table or memory limits.
func (r *reader) limits() {
	flags := r.byte()
	if flags > 7 {
		r.unsupported("limits flags 0x%02x at offset %d", flags, r.off-1)
		return
	}
	bits := uint(32)
	if flags&4 != 0 {
		bits = 64
	}
	r.uleb(bits)
	if flags&1 != 0 {
		r.uleb(bits)
	}
}

// memarg skips a memory access immediate: alignment (with the multi-memory
// bit, a memory index follows) and offset.
func (r *reader) memarg() {
	align := r.u32()
	if align&0x40 != 0 {
		r.u32()
	}
	r.uleb(64)
}

// Instruction classes, as far as instrumentation cares.
const (
	opPlain  = iota // straight-line
	opBlock         // block, if: opens a construct
	opLoop          // loop: opens a construct and is a check point
	opElse          // else
	opEnd           // end
	opBranch        // br, br_if, br_table, return, unreachable
	opCall          // call, call_indirect
	opTail          // return_call, return_call_indirect
)

// instr decodes one instruction, skipping its immediates, and returns its
// first opcode byte and class. Anything it does not know is an error: a
// wrong guess about an immediate's length would desynchronise the stream.
func (r *reader) instr() (op byte, class int) {
	at := r.off
	op = r.byte()
	if r.err != nil {
		return 0, opPlain
	}
	switch {
	case op == 0x00: // unreachable
		return op, opBranch
	case op == 0x01: // nop
	case op == 0x02, op == 0x04: // block, if
		r.blockType()
		return op, opBlock
	case op == 0x03: // loop
		r.blockType()
		return op, opLoop
	case op == 0x05:
		return op, opElse
	case op == 0x0b:
		return op, opEnd
	case op == 0x0c, op == 0x0d: // br, br_if
		r.u32()
		return op, opBranch
	case op == 0x0e: // br_table
		n := r.count()
		for i := uint32(0); i <= n && r.err == nil; i++ {
			r.u32()
		}
		return op, opBranch
	case op == 0x0f: // return
		return op, opBranch
	case op == 0x10: // call
		r.u32()
		return op, opCall
	case op == 0x11: // call_indirect
		r.u32()
		r.u32()
		return op, opCall
	case op == 0x12: // return_call
		r.u32()
		return op, opTail
	case op == 0x13: // return_call_indirect
		r.u32()
		r.u32()
		return op, opTail
	case op == 0x1a, op == 0x1b: // drop, select
	case op == 0x1c: // select t*
		n := r.count()
		for i := uint32(0); i < n && r.err == nil; i++ {
			r.valType()
		}
	case op >= 0x20 && op <= 0x26: // local.*, global.*, table.get/set
		r.u32()
	case op >= 0x28 && op <= 0x3e: // loads and stores
		r.memarg()
	case op == 0x3f, op == 0x40: // memory.size, memory.grow
		r.u32()
	case op == 0x41: // i32.const
		r.sleb(32)
	case op == 0x42: // i64.const
		r.sleb(64)
	case op == 0x43: // f32.const
		r.bytes(4)
	case op == 0x44: // f64.const
		r.bytes(8)
	case op >= 0x45 && op <= 0xc4: // numeric, including sign extension
	case op == 0xd0: // ref.null
		r.valType()
	case op == 0xd1: // ref.is_null
	case op == 0xd2: // ref.func
		r.u32()
	case op == 0xfc:
		r.prefixFC(at)
	case op == 0xfd:
		r.prefixFD(at)
	case op == 0xfe:
		r.prefixFE(at)
	default:
		r.unsupported("opcode 0x%02x at offset %d", op, at)
	}
	return op, opPlain
}

// prefixFC skips a saturating conversion, bulk memory or table instruction.
func (r *reader) prefixFC(at int) {
	switch sub := r.u32(); {
	case sub <= 7: // trunc_sat
	case sub == 8: // memory.init data mem
		r.u32()
		r.u32()
	case sub == 9: // data.drop
		r.u32()
	case sub == 10: // memory.copy mem mem
		r.u32()
		r.u32()
	case sub == 11: // memory.fill mem
		r.u32()
	case sub == 12: // table.init elem table
		r.u32()
		r.u32()
	case sub == 13: // elem.drop
		r.u32()
	case sub == 14: // table.copy table table
		r.u32()
		r.u32()
	case sub >= 15 && sub <= 17: // table.grow, table.size, table.fill
		r.u32()
	default:
		r.unsupported("opcode 0xfc %d at offset %d", sub, at)
	}
}

// prefixFD skips a SIMD instruction.
func (r *reader) prefixFD(at int) {
	switch sub := r.u32(); {
	case sub <= 11: // v128 loads and store
		r.memarg()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		r.bytes(16)
	case sub >= 21 && sub <= 34: // extract_lane, replace_lane
		r.byte()
	case sub >= 84 && sub <= 91: // load/store lane
		r.memarg()
		r.byte()
	case sub == 92, sub == 93: // load32_zero, load64_zero
		r.memarg()
	case sub <= 0xff: // the remaining SIMD operations take no immediate
	case sub <= 0x113: // relaxed SIMD takes no immediate either
	default:
		r.unsupported("opcode 0xfd %d at offset %d", sub, at)
	}
}

// prefixFE skips an atomic memory instruction.
func (r *reader) prefixFE(at int) {
	switch sub := r.u32(); {
	case sub <= 2: // notify, wait32, wait64
		r.memarg()
	case sub == 3: // atomic.fence
		if r.byte() != 0 && r.err == nil {
			r.fail("malformed atomic.fence at offset %d", at)
		}
	case sub >= 0x10 && sub <= 0x4e:
		r.memarg()
	default:
		r.unsupported("opcode 0xfe %d at offset %d", sub, at)
	}
}
