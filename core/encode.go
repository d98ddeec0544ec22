package core

import "unicode/utf8"

// utf16Len returns the length of s in UTF-16 code units, the unit the
// JavaScript SDKs measure strings in, and whether s is valid UTF-8.
func utf16Len(s []byte) (n int, ok bool) {
	i := 0
	for i < len(s) && s[i] < utf8.RuneSelf {
		i++
	}
	if i == len(s) {
		return len(s), true
	}
	if !utf8.Valid(s[i:]) {
		return 0, false
	}
	n = i
	for _, c := range s[i:] {
		if c&0xC0 != 0x80 { // a leading byte starts one code point
			n++
		}
		if c >= 0xF0 { // four bytes: outside the BMP, a surrogate pair
			n++
		}
	}
	return n, true
}

// escapes maps each byte to how it is written inside a JSON string: 0 copies
// it, 'u' writes \u00XX, any other byte c writes \c.
var escapes = func() (t [256]byte) {
	for c := 0; c < 0x20; c++ {
		t[c] = 'u'
	}
	t['\b'] = 'b'
	t['\f'] = 'f'
	t['\n'] = 'n'
	t['\r'] = 'r'
	t['\t'] = 't'
	t['"'] = '"'
	t['\\'] = '\\'
	return t
}()

const hexDigits = "0123456789abcdef"

// AppendQuoted appends s as a JSON string, escaped as the canonical encoder
// escapes it (see appendQuoted).
func AppendQuoted[S ~string | ~[]byte](dst []byte, s S) []byte { return appendQuoted(dst, s) }

// appendQuoted appends s as a JSON string. s must be valid UTF-8; only the
// quote, the backslash and control characters are escaped, which keeps the
// output compact.
func appendQuoted[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		e := escapes[s[i]]
		if e == 0 {
			continue
		}
		dst = append(dst, s[start:i]...)
		if e == 'u' {
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[s[i]>>4], hexDigits[s[i]&0xF])
		} else {
			dst = append(dst, '\\', e)
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
