package jsonvalue

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/internal/jsonscan"
)

// Tape parses one JSON value in a single pass into flat arrays and serves
// it as core.Value: the write path's parser. It finds where the value ends
// as it parses, so a body needs no separate scan to split its events, and
// its nodes, children and unescaped strings are kept from one parse to the
// next, so a parse in steady state allocates nothing.
//
// Tape reads a strict subset of what Parser reads. Where it accepts a text,
// it gives the values Parser gives: the same kinds, the same raw number
// tokens, the same unescaped bytes (an unpaired surrogate escape as its
// generalized UTF-8 form, as FixEscapes makes it). Where it refuses one,
// Parse reports only that it did, not why: the caller parses that text
// again with Parser, which names the error, or accepts what Tape leaves
// out: number-like tokens such as NaN and Infinity (fastjson takes them as
// numbers, which the validator then rejects), and nesting deeper than
// tapeMaxDepth. So a caller that falls back to Parser on refusal decides
// every text exactly as Parser alone would.
//
// Like Parser's, a value is valid until the next parse; a Tape is not safe
// for concurrent use. The zero value is ready to use.
type Tape struct {
	src   []byte
	nodes []tapeNode
	vals  []tapeVal // vals[i] is node i as a core.Value; kept across parses
	kids  []int32   // a container's children: an array's elements; an object's key and value, in turn
	stack []int32   // the children of the containers being parsed
	ubuf  []byte    // unescaped strings
}

// tapeNode is one value. It holds no pointer, so that making one is a
// plain store.
type tapeNode struct {
	kind  core.Kind
	inBuf bool   // a string whose bytes are t.ubuf[s:e] (else t.src[s:e])
	s, e  uint32 // a number's token, a string's bytes
	k, n  uint32 // a container's children: t.kids[k:], n elements or members
}

// tapeMaxDepth bounds the nesting Tape parses (fastjson's bound is 300:
// deeper texts are left to Parser).
const tapeMaxDepth = 200

// Parse parses the value at src[i] (no whitespace before it) and returns it
// and the offset after it; ok is false when Tape refuses the text (see
// Tape). Nothing after the value is looked at.
func (t *Tape) Parse(src []byte, i int) (v core.Value, end int, ok bool) {
	t.src = src
	t.nodes, t.kids, t.stack, t.ubuf = t.nodes[:0], t.kids[:0], t.stack[:0], t.ubuf[:0]
	n, end, ok := t.value(i, 0)
	if !ok {
		return nil, 0, false
	}
	for len(t.vals) < len(t.nodes) {
		t.vals = append(t.vals, tapeVal{t: t, i: uint32(len(t.vals))})
	}
	return &t.vals[n], end, true
}

// tapeVal is a node as a core.Value: a pointer to it fits an interface
// without allocating, and it is the same for node i in every parse.
type tapeVal struct {
	t *Tape
	i uint32
}

// Release drops the references the last parse holds, so an idle Tape does
// not keep a request's body alive.
func (t *Tape) Release() {
	t.src = nil
	if cap(t.nodes) > 1<<16 {
		t.nodes, t.vals, t.kids, t.stack = nil, nil, nil, nil
	}
	if cap(t.ubuf) > 1<<20 {
		t.ubuf = nil
	}
}

// tapeNumChar marks the bytes fastjson takes into a number token.
var tapeNumChar = [256]bool{'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true,
	'7': true, '8': true, '9': true, '.': true, '-': true, '+': true, 'e': true, 'E': true}

// tapeStrStop marks the bytes a string's scan stops at.
var tapeStrStop = [256]bool{'"': true, '\\': true}

func skipWS(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

func (t *Tape) node(k core.Kind, s, e int) int32 {
	n := len(t.nodes)
	if n == cap(t.nodes) {
		t.nodes = append(t.nodes, tapeNode{})
	}
	t.nodes = t.nodes[:n+1]
	// Field by field: a composite literal is built on the stack and
	// copied, and the copy's wide loads stall on the narrow stores.
	x := &t.nodes[n]
	x.kind, x.inBuf, x.s, x.e, x.k, x.n = k, false, uint32(s), uint32(e), 0, 0
	return int32(n)
}

func (t *Tape) value(i, depth int) (int32, int, bool) {
	b := t.src
	if i >= len(b) {
		return 0, 0, false
	}
	switch b[i] {
	case '{':
		return t.object(i+1, depth+1)
	case '[':
		return t.array(i+1, depth+1)
	case '"':
		return t.parseStr(i + 1)
	case 't':
		if len(b)-i >= 4 && string(b[i:i+4]) == "true" {
			return t.node(core.KindTrue, i, i+4), i + 4, true
		}
		return 0, 0, false
	case 'f':
		if len(b)-i >= 5 && string(b[i:i+5]) == "false" {
			return t.node(core.KindFalse, i, i+5), i + 5, true
		}
		return 0, 0, false
	case 'n':
		if len(b)-i >= 4 && string(b[i:i+4]) == "null" {
			return t.node(core.KindNull, i, i+4), i + 4, true
		}
		return 0, 0, false
	}
	j := i
	for j < len(b) && tapeNumChar[b[j]] {
		j++
	}
	// An empty token, or a lone sign: fastjson refuses both in a container
	// (and a lone sign ending its input is a quirk left to Parser).
	if j == i || j == i+1 && (b[i] == '-' || b[i] == '+') {
		return 0, 0, false
	}
	return t.node(core.KindNumber, i, j), j, true
}

func (t *Tape) object(i, depth int) (int32, int, bool) {
	if depth > tapeMaxDepth {
		return 0, 0, false
	}
	b := t.src
	me := t.node(core.KindObject, 0, 0)
	base := len(t.stack)
	i = skipWS(b, i)
	if i < len(b) && b[i] == '}' {
		t.nodes[me].k = uint32(len(t.kids))
		return me, i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, 0, false
		}
		kn, j, ok := t.parseStr(i + 1)
		if !ok {
			return 0, 0, false
		}
		if i = skipWS(b, j); i >= len(b) || b[i] != ':' {
			return 0, 0, false
		}
		vn, j, ok := t.value(skipWS(b, i+1), depth)
		if !ok {
			return 0, 0, false
		}
		t.stack = append(t.stack, kn, vn)
		if i = skipWS(b, j); i >= len(b) {
			return 0, 0, false
		}
		if b[i] == ',' {
			i = skipWS(b, i+1)
			continue
		}
		if b[i] != '}' {
			return 0, 0, false
		}
		t.close(me, base, 2)
		return me, i + 1, true
	}
}

func (t *Tape) array(i, depth int) (int32, int, bool) {
	if depth > tapeMaxDepth {
		return 0, 0, false
	}
	b := t.src
	me := t.node(core.KindArray, 0, 0)
	base := len(t.stack)
	i = skipWS(b, i)
	if i < len(b) && b[i] == ']' {
		t.nodes[me].k = uint32(len(t.kids))
		return me, i + 1, true
	}
	for {
		vn, j, ok := t.value(i, depth)
		if !ok {
			return 0, 0, false
		}
		t.stack = append(t.stack, vn)
		if i = skipWS(b, j); i >= len(b) {
			return 0, 0, false
		}
		if b[i] == ',' {
			i = skipWS(b, i+1)
			continue
		}
		if b[i] != ']' {
			return 0, 0, false
		}
		t.close(me, base, 1)
		return me, i + 1, true
	}
}

// close moves the children of container me from the stack to kids.
func (t *Tape) close(me int32, base, per int) {
	k := len(t.kids)
	t.kids = append(t.kids, t.stack[base:]...)
	t.stack = t.stack[:base]
	n := &t.nodes[me]
	n.k, n.n = uint32(k), uint32((len(t.kids)-k)/per)
}

// str parses the string whose first byte is src[i] (after the quote).
func (t *Tape) parseStr(i int) (int32, int, bool) {
	b := t.src
	j := strStop(b, i)
	if j >= len(b) {
		return 0, 0, false
	}
	if b[j] == '"' {
		return t.node(core.KindString, i, j), j + 1, true
	}
	// Escapes: the string is unescaped into ubuf.
	s := len(t.ubuf)
	u := append(t.ubuf, b[i:j]...)
	for {
		if j >= len(b) {
			return 0, 0, false
		}
		switch c := b[j]; c {
		case '"':
			t.ubuf = u
			n := t.node(core.KindString, s, len(u))
			t.nodes[n].inBuf = true
			return n, j + 1, true
		case '\\':
			if j+1 >= len(b) {
				return 0, 0, false
			}
			switch e := b[j+1]; e {
			case '"', '\\', '/':
				u = append(u, e)
			case 'b':
				u = append(u, '\b')
			case 'f':
				u = append(u, '\f')
			case 'n':
				u = append(u, '\n')
			case 'r':
				u = append(u, '\r')
			case 't':
				u = append(u, '\t')
			case 'u':
				u16, ok := jsonscan.Hex4(b, j+2)
				if !ok {
					return 0, 0, false
				}
				r := rune(u16)
				j += 6
				if r < 0xD800 || r > 0xDFFF {
					u = utf8.AppendRune(u, r)
					continue
				}
				if r < 0xDC00 && j+1 < len(b) && b[j] == '\\' && b[j+1] == 'u' {
					if lo, ok := jsonscan.Hex4(b, j+2); ok && lo >= 0xDC00 && lo <= 0xDFFF {
						u = utf8.AppendRune(u, utf16.DecodeRune(r, rune(lo)))
						j += 6
						continue
					}
				}
				// Unpaired: its generalized UTF-8 form, which the
				// validator finds and names (FixEscapes).
				u = append(u, 0xE0|byte(r>>12), 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
				continue
			default:
				return 0, 0, false
			}
			j += 2
		default:
			k := strStop(b, j)
			u = append(u, b[j:k]...)
			j = k
		}
	}
}

// strStop returns the index of the first quote or backslash in b at or
// after i, or len(b). It looks at eight bytes at a time: strings are most
// of a body, and most are longer than eight bytes.
func strStop(b []byte, i int) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	for i+8 <= len(b) {
		x := binary.LittleEndian.Uint64(b[i:])
		q, s := x^(lo*'"'), x^(lo*'\\')
		// A byte of q or s is zero where x holds a quote or a backslash;
		// the lowest byte flagged is exact.
		if m := ((q-lo)&^q | (s-lo)&^s) & hi; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
		i += 8
	}
	for i < len(b) && !tapeStrStop[b[i]] {
		i++
	}
	return i
}

func (v *tapeVal) node() *tapeNode { return &v.t.nodes[v.i] }

func (v *tapeVal) Kind() core.Kind { return v.node().kind }

// AppendNumber appends the number's token as it was sent (a literal's
// text for true, false and null).
func (v *tapeVal) AppendNumber(dst []byte) []byte {
	n := v.node()
	if n.kind > core.KindNumber {
		return dst
	}
	return append(dst, v.t.src[n.s:n.e]...)
}

func (v *tapeVal) Str() []byte { return v.t.str(v.node()) }

func (t *Tape) str(n *tapeNode) []byte {
	switch {
	case n.kind != core.KindString:
		return nil
	case n.inBuf:
		return t.ubuf[n.s:n.e:n.e]
	}
	return t.src[n.s:n.e:n.e]
}

func (v *tapeVal) Len() int {
	n := v.node()
	if n.kind != core.KindArray {
		return 0
	}
	return int(n.n)
}

func (v *tapeVal) At(i int) core.Value { return &v.t.vals[v.t.kids[int(v.node().k)+i]] }

func (v *tapeVal) Fields(dst []core.Field) []core.Field {
	n := v.node()
	if n.kind != core.KindObject {
		return dst
	}
	t := v.t
	kids := t.kids[n.k : n.k+2*n.n]
	for j := 0; j+1 < len(kids); j += 2 {
		dst = append(dst, core.Field{Key: t.str(&t.nodes[kids[j]]), Val: &t.vals[kids[j+1]]})
	}
	return dst
}
