package storage

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"unsafe"
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
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return errNotObject
	}
	i = skipSpace(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return nil
	}
	for {
		if i >= len(obj) || obj[i] != '"' {
			return errNotObject
		}
		end := skipString(obj, i)
		if end < 0 {
			return errNotObject
		}
		key := obj[i+1 : end-1]
		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return errNotObject
		}
		i = skipSpace(obj, i+1)
		vend := skipValue(obj, i)
		if vend < 0 {
			return errNotObject
		}
		m.keys, m.vals = append(m.keys, key), append(m.vals, obj[i:vend])
		i = skipSpace(obj, vend)
		if i >= len(obj) {
			return errNotObject
		}
		if obj[i] == '}' {
			return nil
		}
		if obj[i] != ',' {
			return errNotObject
		}
		i = skipSpace(obj, i+1)
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

func parseNum(b []byte) (float64, bool) {
	if len(b) == 0 || !(b[0] == '-' || b[0] >= '0' && b[0] <= '9') {
		return 0, false
	}
	// The string does not outlive the call (a parse error, which would keep
	// it, is dropped).
	f, err := strconv.ParseFloat(unsafe.String(&b[0], len(b)), 64)
	return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"',
// or -1.
func skipString(b []byte, i int) int {
	j := i + 1
	for {
		q := bytes.IndexByte(b[j:], '"')
		if q < 0 {
			return -1
		}
		j += q
		// The quote ends the string unless an odd run of backslashes
		// escapes it.
		n := 0
		for k := j - 1; k > i && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return j + 1
		}
		j++
	}
}

// skipValue returns the index after the value starting at b[i], or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end := skipString(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
		j++
	}
	if j == i {
		return -1
	}
	return j
}
