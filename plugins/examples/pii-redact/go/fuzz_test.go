package main

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

// FuzzRedact checks that the scanner never panics, keeps valid UTF-8
// valid, only replaces ASCII spans (with markers), and leaves text without
// matches alone.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		"jane@example.com", "+1 (555) 123-4567", "4111 1111 1111 1111", "2001:db8::1", "10.0.0.1",
		"Bearer abc123def456", "?token=x&a=b", "AKIAIOSFODNN7EXAMPLE", "é😀中", "eyJabcdefghij.eyJabcdefghij.sig",
		"::ffff:1.2.3.4", "%40", "(((", "+", "1.2.3.4.5", "", "?email=jöhn@example.de&x=é",
	} {
		f.Add([]byte(s))
	}
	r := NewRedactor(DefaultOptions())
	f.Fuzz(func(t *testing.T, in []byte) {
		out, changed := r.Redact(in)
		if !changed {
			if out != nil {
				t.Fatal("output without a change")
			}
			return
		}
		if utf8.Valid(in) && !utf8.Valid(out) {
			t.Fatalf("%q -> invalid UTF-8 %q", in, out)
		}
		if !bytes.Contains(out, []byte("[")) {
			t.Fatalf("%q changed without a marker: %q", in, out)
		}
		// Every byte of a non-ASCII character is kept, except in the value
		// of a deny-listed parameter, which goes whole ("?email=jöhn@…"):
		// the other matches are ASCII only, and a value ends at an ASCII
		// delimiter, so no character is ever cut.
		switch hi, ho := highBytes(in), highBytes(out); {
		case ho > hi:
			t.Fatalf("%q -> %q: non-ASCII bytes added", in, out)
		case ho < hi && !bytes.Contains(in, []byte("=")):
			t.Fatalf("%q -> %q: non-ASCII bytes changed outside a parameter's value", in, out)
		}
	})
}

func highBytes(b []byte) int {
	n := 0
	for _, c := range b {
		if c >= 0x80 {
			n++
		}
	}
	return n
}
