// Package jsonscan finds the ends of JSON values without parsing them: the
// aggregator uses it to index an event's members, and the edge to split a
// request's events so that each is parsed on its own. It does not validate:
// callers that need valid JSON parse what it delimits. FixEscapes checks the
// one thing fastjson does not: string escapes.
package jsonscan

import "bytes"

// SkipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// SkipString returns the index after the string starting at b[i] == '"',
// or -1. A backslash escapes the byte after it.
func SkipString(b []byte, i int) int {
	j := i + 1
	for {
		for j < len(b) && !stringStop[b[j]] {
			j++
		}
		if j >= len(b) {
			return -1
		}
		if b[j] == '"' {
			return j + 1
		}
		j += 2
	}
}

// stringStop marks the bytes SkipString stops at.
var stringStop = [256]bool{'"': true, '\\': true}

// structural marks the bytes SkipValue stops at inside an object or array.
var structural = [256]bool{'"': true, '{': true, '}': true, '[': true, ']': true}

// SkipValue returns the index after the value starting at b[i], or -1. An
// object or array ends at the bracket that closes as many as it opened,
// whichever their kind; a scalar ends before the next delimiter.
func SkipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return SkipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			for j < len(b) && !structural[b[j]] {
				j++
			}
			if j == len(b) {
				break
			}
			switch b[j] {
			case '"':
				end := SkipString(b, j)
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

// SkipValueEscaped is SkipValue that also reports whether any string in the
// value holds a backslash escape. It costs what SkipValue costs: the scan
// stops at every backslash anyway, to step over the escaped byte.
func SkipValueEscaped(b []byte, i int) (end int, escaped bool) {
	if i >= len(b) {
		return -1, false
	}
	switch b[i] {
	case '"':
		return skipStringEscaped(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			for j < len(b) && !structural[b[j]] {
				j++
			}
			if j == len(b) {
				break
			}
			switch b[j] {
			case '"':
				end, esc := skipStringEscaped(b, j)
				if end < 0 {
					return -1, escaped
				}
				escaped = escaped || esc
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, escaped
				}
			}
		}
		return -1, escaped
	}
	return SkipValue(b, i), false
}

// skipStringEscaped is SkipString that also reports whether the string
// holds a backslash.
func skipStringEscaped(b []byte, i int) (end int, escaped bool) {
	j := i + 1
	for {
		for j < len(b) && !stringStop[b[j]] {
			j++
		}
		if j >= len(b) {
			return -1, escaped
		}
		if b[j] == '"' {
			return j + 1, escaped
		}
		escaped = true
		j += 2
	}
}

// FixEscapes checks the backslash escapes of b, a JSON text, and prepares
// it for a parser that reads \u escapes leniently, as fastjson does (it
// keeps an unpaired surrogate escape as its six characters, and turns a
// high surrogate followed by any other \u escape into U+FFFD, swallowing
// that escape).
//
// An escape of a UTF-16 surrogate that is not half of a pair (a high one,
// \uD800–\uDBFF, not followed by an escaped low one, \uDC00–\uDFFF, or a low
// one on its own) is replaced by the surrogate's three-byte generalized
// UTF-8 form (ED A0 80 to ED BF BF), which valid UTF-8 never contains: a
// validator of the unescaped text finds it, and can name the surrogate.
// Pairs and all other escapes are left for the parser.
//
// out is b itself when nothing was replaced, else the fixed text appended
// to dst[:0]. bad is the offset in b of the first backslash that does not
// start one of JSON's escapes (\" \\ \/ \b \f \n \r \t \uXXXX), or -1; out
// is then b. Backslashes outside strings are taken as escapes too: they are
// syntax errors either way.
func FixEscapes(dst, b []byte) (out []byte, bad int) {
	out = b
	fixed := false
	done := 0 // b[:done] has been copied to out, when fixed
	for i := 0; i < len(b); {
		k := bytes.IndexByte(b[i:], '\\')
		if k < 0 {
			break
		}
		i += k
		if i+1 >= len(b) {
			return b, i
		}
		switch b[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
			continue
		case 'u':
		default:
			return b, i
		}
		u, ok := Hex4(b, i+2)
		if !ok {
			return b, i
		}
		if u < 0xD800 || u > 0xDFFF {
			i += 6
			continue
		}
		if u < 0xDC00 && i+7 < len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
			if lo, ok := Hex4(b, i+8); ok && lo >= 0xDC00 && lo <= 0xDFFF {
				i += 12 // a pair: the parser decodes it
				continue
			}
		}
		if !fixed {
			out = append(dst[:0], b[:i]...)
			fixed = true
		} else {
			out = append(out, b[done:i]...)
		}
		out = append(out, 0xE0|byte(u>>12), 0x80|byte(u>>6)&0x3F, 0x80|byte(u)&0x3F)
		i += 6
		done = i
	}
	if fixed {
		out = append(out, b[done:]...)
	}
	return out, -1
}

// Hex4 decodes the four hex digits at b[i:] (a \u escape's).
func Hex4(b []byte, i int) (uint16, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var u uint16
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		u = u<<4 | uint16(c)
	}
	return u, true
}
