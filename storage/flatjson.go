package storage

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"unsafe"

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
		end := bytes.IndexByte(v, ',')
		if n == len(dst)-1 {
			if end >= 0 {
				return false
			}
			end = len(v)
		} else if end < 0 {
			return false
		}
		f, ok := parseNum(bytes.TrimSpace(v[:end]))
		if !ok {
			return false
		}
		dst[n] = f
		if end < len(v) {
			v = v[end+1:]
		}
	}
	return true
}

// parseNum parses a number token as strconv.ParseFloat does, rejecting
// NaN and infinities.
func parseNum(b []byte) (float64, bool) {
	if len(b) == 0 || !(b[0] == '-' || b[0] >= '0' && b[0] <= '9') {
		return 0, false
	}
	if f, ok := parseShortDecimal(b); ok {
		return f, true
	}
	// The string does not outlive the call (a parse error, which would keep
	// it, is dropped).
	f, err := strconv.ParseFloat(unsafe.String(&b[0], len(b)), 64)
	return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
}

// exactPow10 holds the powers of ten that a float64 holds exactly.
var exactPow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// parseShortDecimal parses a token of the form -?digits(.digits)? with at
// most 15 digits, the form of nearly every number a fold reads
// (coordinates, durations, byte counts). Its digits make an integer that a
// float64 holds exactly, and so does the power of ten that scales it, so
// one division, correctly rounded, gives the same float64 as
// strconv.ParseFloat (Clinger's fast path, which strconv takes too, after a
// general scan that costs a fold more than the division). ok is false for
// any other token; the caller then parses it with strconv.
func parseShortDecimal(b []byte) (f float64, ok bool) {
	i := 0
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		i++
	}
	var m uint64
	digits, frac, dot := 0, 0, false
	for ; i < len(b); i++ {
		switch c := b[i]; {
		case c >= '0' && c <= '9':
			m = m*10 + uint64(c-'0')
			digits++
			if dot {
				frac++
			}
		case c == '.' && !dot && digits > 0:
			dot = true
		default:
			return 0, false
		}
	}
	if digits == 0 || digits > 15 || dot && frac == 0 {
		return 0, false
	}
	f = float64(m) / exactPow10[frac]
	if neg {
		f = -f
	}
	return f, true
}
