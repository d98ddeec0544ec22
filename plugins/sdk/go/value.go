package sdk

import (
	"iter"
	"math"
	"strconv"
	"unsafe"
)

// Kind is the JSON type of a Value.
type Kind uint8

const (
	Invalid Kind = iota // the zero Value, or a lookup that found nothing
	Null
	Bool
	Number
	String
	Array
	Object
)

func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case Bool:
		return "bool"
	case Number:
		return "number"
	case String:
		return "string"
	case Array:
		return "array"
	case Object:
		return "object"
	}
	return "invalid"
}

// Value is a view of one JSON value inside a document (an event, or a
// document given to ParseValue). It holds offsets, not a copy: it is only
// valid while the document is, which for an event passed to a handler is
// until the handler returns. Values are small and passed by value.
type Value struct {
	doc    []byte
	off    int // first byte of the value
	end    int // offset after the value
	key    int // opening quote of the member name when the value is an object member, else -1
	parent int // offset of the enclosing object when the value is an object member, else -1
}

// ParseValue checks that b holds exactly one JSON value (surrounding
// whitespace allowed) and returns it. It is meant for configuration and
// tests; events come through Handle already parsed.
func ParseValue(b []byte) (Value, error) {
	i := skipSpace(b, 0)
	end, err := scan(b, i, nil)
	if err != nil {
		return Value{}, err
	}
	if j := skipSpace(b, end); j != len(b) {
		return Value{}, syntaxErr(j, "data after the value")
	}
	return Value{doc: b, off: i, end: end, key: -1, parent: -1}, nil
}

// Kind returns the value's JSON type.
func (v Value) Kind() Kind {
	if v.end <= v.off || v.end > len(v.doc) {
		return Invalid
	}
	switch c := v.doc[v.off]; c {
	case '"':
		return String
	case '{':
		return Object
	case '[':
		return Array
	case 't', 'f':
		return Bool
	case 'n':
		return Null
	default:
		return Number
	}
}

// Raw returns the value's JSON text. It aliases the document: do not
// modify it, and copy it to keep it past the handler call.
func (v Value) Raw() []byte {
	if v.Kind() == Invalid {
		return nil
	}
	return v.doc[v.off:v.end:v.end]
}

// String returns the text of a string value, unescaped. For any other
// kind it returns the value's JSON text ("" for Invalid).
func (v Value) String() string {
	if v.Kind() != String {
		return string(v.Raw())
	}
	raw := v.doc[v.off+1 : v.end-1]
	for _, c := range raw {
		if c == '\\' {
			return string(appendUnescaped(make([]byte, 0, len(raw)), raw))
		}
	}
	return string(raw)
}

// AppendText appends the unescaped text of a string value to dst, without
// allocating when dst has room. For other kinds it appends nothing.
func (v Value) AppendText(dst []byte) []byte {
	if v.Kind() != String {
		return dst
	}
	return appendUnescaped(dst, v.doc[v.off+1:v.end-1])
}

// Is reports whether v is a string whose text equals s. It does not
// allocate.
func (v Value) Is(s string) bool {
	if v.Kind() != String {
		return false
	}
	raw := v.doc[v.off+1 : v.end-1]
	escaped := false
	for _, c := range raw {
		if c == '\\' {
			escaped = true
			break
		}
	}
	if !escaped {
		return string(raw) == s
	}
	if len(raw) < len(s) { // escapes only make the raw form longer
		return false
	}
	var buf [128]byte
	return string(appendUnescaped(buf[:0], raw)) == s
}

// Float returns a number's value. ok is false for other kinds. Numbers too
// large for a float64 come back as ±Inf with ok true.
func (v Value) Float() (f float64, ok bool) {
	if v.Kind() != Number {
		return 0, false
	}
	raw := v.doc[v.off:v.end]
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(raw), len(raw)), 64)
	if err != nil {
		if ne, isNum := err.(*strconv.NumError); isNum && ne.Err == strconv.ErrRange {
			return f, true
		}
		return 0, false
	}
	return f, true
}

// Int returns a number's value as an integer. A plain integer token is
// read exactly (within int64); other spellings of an integer (1e3,
// 1000.0) are accepted when |n| ≤ 2^53, where float64 is exact. ok is
// false for fractions and other kinds.
func (v Value) Int() (n int64, ok bool) {
	if v.Kind() != Number {
		return 0, false
	}
	raw := v.doc[v.off:v.end]
	if n, err := strconv.ParseInt(unsafe.String(unsafe.SliceData(raw), len(raw)), 10, 64); err == nil {
		return n, true
	}
	f, ok := v.Float()
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

// Bool returns a boolean's value. ok is false for other kinds.
func (v Value) Bool() (b, ok bool) {
	if v.Kind() != Bool {
		return false, false
	}
	return v.doc[v.off] == 't', true
}

// IsNull reports whether v is JSON null.
func (v Value) IsNull() bool { return v.Kind() == Null }

// Get follows a path of member names from v through nested objects. With
// no names it returns v itself. ok is false when a name is missing or a
// step is not an object.
func (v Value) Get(path ...string) (Value, bool) {
	for _, name := range path {
		if v.Kind() != Object {
			return Value{}, false
		}
		found := false
		i := v.off + 1
		for {
			m, next, ok := nextMember(v.doc, i)
			if !ok {
				break
			}
			if m.nameIs(v.doc, name) {
				v = Value{doc: v.doc, off: m.val, end: m.end, key: m.key, parent: v.off}
				found = true
				break
			}
			i = next
		}
		if !found {
			return Value{}, false
		}
	}
	return v, v.Kind() != Invalid
}

// Members iterates over an object's members in document order, yielding
// each name (unescaped) and value. It yields nothing for other kinds.
func (v Value) Members() iter.Seq2[string, Value] {
	return func(yield func(string, Value) bool) {
		if v.Kind() != Object {
			return
		}
		i := v.off + 1
		for {
			m, next, ok := nextMember(v.doc, i)
			if !ok {
				return
			}
			if !yield(m.name(v.doc), Value{doc: v.doc, off: m.val, end: m.end, key: m.key, parent: v.off}) {
				return
			}
			i = next
		}
	}
}

// Elements iterates over an array's elements, yielding each index and
// value. It yields nothing for other kinds.
func (v Value) Elements() iter.Seq2[int, Value] {
	return func(yield func(int, Value) bool) {
		if v.Kind() != Array {
			return
		}
		b := v.doc
		i := skipSpace(b, v.off+1)
		for n := 0; i < v.end && b[i] != ']'; n++ {
			end := skipValue(b, i)
			if end <= i {
				return
			}
			if !yield(n, Value{doc: b, off: i, end: end, key: -1, parent: -1}) {
				return
			}
			i = skipSpace(b, end)
			if i < len(b) && b[i] == ',' {
				i = skipSpace(b, i+1)
			}
		}
	}
}

// Len returns the number of members of an object or elements of an
// array, and 0 for other kinds.
func (v Value) Len() int {
	n := 0
	switch v.Kind() {
	case Object:
		for i := v.off + 1; ; n++ {
			_, next, ok := nextMember(v.doc, i)
			if !ok {
				break
			}
			i = next
		}
	case Array:
		for range v.Elements() {
			n++
		}
	}
	return n
}
