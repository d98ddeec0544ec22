package storage

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/internal/jsonscan"
)

// members indexes the top-level members of one JSON object without
// building a tree: the aggregator reads a handful of fields of every event,
// from the canonical JSON that ingest wrote (core's encoder), and a full
// parse of each event cost more than the folding itself. Values are raw
// spans of the input, valid until the next index call.
type members struct {
	keys, vals [][]byte
}

var errNotObject = errors.New("storage: event is not a JSON object")

// index scans obj, a JSON object, and records its members.
func (m *members) index(obj []byte) error {
	m.keys, m.vals = m.keys[:0], m.vals[:0]
	i := jsonscan.SkipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return errNotObject
	}
	i = jsonscan.SkipSpace(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return nil
	}
	for {
		if i >= len(obj) || obj[i] != '"' {
			return errNotObject
		}
		end := jsonscan.SkipString(obj, i)
		if end < 0 {
			return errNotObject
		}
		key := obj[i+1 : end-1]
		i = jsonscan.SkipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return errNotObject
		}
		i = jsonscan.SkipSpace(obj, i+1)
		vend := jsonscan.SkipValue(obj, i)
		if vend < 0 {
			return errNotObject
		}
		m.keys, m.vals = append(m.keys, key), append(m.vals, obj[i:vend])
		i = jsonscan.SkipSpace(obj, vend)
		if i >= len(obj) {
			return errNotObject
		}
		if obj[i] == '}' {
			return nil
		}
		if obj[i] != ',' {
			return errNotObject
		}
		i = jsonscan.SkipSpace(obj, i+1)
	}
}

// raw returns the raw value of a member, or nil.
func (m *members) raw(key string) []byte {
	for i, k := range m.keys {
		if string(k) == key {
			return m.vals[i]
		}
	}
	return nil
}

// str returns a string member's value, unescaped (nil if absent or not a
// string). Without escapes it is a span of the input.
func (m *members) str(key string) []byte { return tokStr(m.raw(key)) }

// num returns a finite number member's value.
func (m *members) num(key string) (float64, bool) { return parseNum(m.raw(key)) }

// vec parses an array member of exactly len(dst) numbers into dst.
func (m *members) vec(key string, dst []float64) bool { return tokVec(m.raw(key), dst) }

// tokStr returns the string a JSON string token holds, unescaped (nil if v
// is not a string). Without escapes it is a span of v.
func tokStr(v []byte) []byte {
	if len(v) < 2 || v[0] != '"' {
		return nil
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return v[1 : len(v)-1]
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return nil
	}
	return []byte(s)
}

// tokVec parses an array token of exactly len(dst) numbers into dst.
func tokVec(v []byte, dst []float64) bool {
	if len(v) < 2 || v[0] != '[' || v[len(v)-1] != ']' {
		return false
	}
	v = v[1 : len(v)-1]
	for n := range dst {
		i := skipSpace(v, 0)
		f, m, ok := fastNum(v[i:])
		if !ok {
			return false
		}
		dst[n] = f
		i = skipSpace(v, i+m)
		switch {
		case n == len(dst)-1:
			if i != len(v) {
				return false
			}
		case i < len(v) && v[i] == ',':
			v = v[i+1:]
		default:
			return false
		}
	}
	return true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// fastNum parses the JSON number at the start of b and returns it with
// its length. A plain decimal of at most 15 digits (nearly every number
// an event carries) is read in one pass: its digits make an integer below
// 2^53, and one division by an exact power of ten rounds correctly, as
// strconv would. Anything else (an exponent, more digits) goes to
// core.ParseNumber.
func fastNum(b []byte) (f float64, n int, ok bool) {
	i := 0
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	start := i
	var m uint64
	for i < len(b) && b[i]-'0' <= 9 {
		m = m*10 + uint64(b[i]-'0')
		i++
	}
	digits := i - start
	if digits == 0 || digits > 1 && b[start] == '0' {
		return slowNum(b) // no integer digit, or a leading zero: not JSON
	}
	frac := 0
	if i < len(b) && b[i] == '.' {
		i++
		fs := i
		for i < len(b) && b[i]-'0' <= 9 {
			m = m*10 + uint64(b[i]-'0')
			i++
		}
		frac = i - fs
		digits += frac
		if frac == 0 {
			return slowNum(b)
		}
	}
	if digits > 15 || i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		return slowNum(b)
	}
	f = float64(m)
	if frac > 0 {
		f /= pow10[frac]
	}
	if neg {
		f = -f
	}
	return f, i, true
}

var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// slowNum is fastNum for the numbers its one pass does not take.
func slowNum(b []byte) (float64, int, bool) {
	n := 0
	for n < len(b) && (b[n]-'0' <= 9 || b[n] == '-' || b[n] == '+' || b[n] == '.' || b[n] == 'e' || b[n] == 'E') {
		n++
	}
	f, ok := core.ParseNumber(b[:n])
	return f, n, ok
}

// parseNum parses a JSON number token (core.ParseNumber): the log holds
// the validator's tokens, which follow the JSON grammar.
func parseNum(b []byte) (float64, bool) {
	f, n, ok := fastNum(b)
	return f, ok && n == len(b)
}
