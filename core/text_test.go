package core

import (
	"fmt"
	"testing"
	"unicode/utf8"
)

func TestInvalidText(t *testing.T) {
	for u := 0xD800; u <= 0xDFFF; u++ {
		enc := []byte{0xE0 | byte(u>>12), 0x80 | byte(u>>6)&0x3F, 0x80 | byte(u)&0x3F}
		if utf8.Valid(enc) {
			t.Fatalf("%x: encoded surrogate is valid UTF-8", u)
		}
		s := append([]byte("é😀a"), enc...)
		want := fmt.Sprintf(`invalid text: unpaired UTF-16 surrogate \u%04x`, u)
		if got := InvalidText(s); got != want {
			t.Fatalf("%q: %q, want %q", s, got, want)
		}
	}
	for s, want := range map[string]string{
		"\xff":                     "invalid text: not valid UTF-8",
		"ok\xc3":                   "invalid text: not valid UTF-8", // truncated é
		"\xed\xa0":                 "invalid text: not valid UTF-8", // truncated surrogate
		"a\xffb\xed\xa0\x80":       "invalid text: not valid UTF-8", // the first fault is named
		"\xed\xa0\xbd\xed\xb8\x80": `invalid text: unpaired UTF-16 surrogate \ud83d`,
		"\xed\x9f\xbf\xff":         "invalid text: not valid UTF-8", // U+D7FF is fine
	} {
		if got := InvalidText([]byte(s)); got != want {
			t.Errorf("InvalidText(%q) = %q, want %q", s, got, want)
		}
	}
	s := []byte("x\xed\xb0\x80")
	InvalidText(s)
	if n := testing.AllocsPerRun(100, func() { InvalidText(s) }); n != 0 {
		t.Fatalf("InvalidText allocates %.1f times", n)
	}
}
