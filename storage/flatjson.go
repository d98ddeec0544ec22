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

// parseNum parses a JSON number token (core.ParseNumber): the log holds
// the validator's tokens, which follow the JSON grammar.
func parseNum(b []byte) (float64, bool) { return core.ParseNumber(b) }
