package jsonscan

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func fixtureEvents(tb testing.TB) [][]byte {
	paths, _ := filepath.Glob("../../testdata/fixtures/batch200*.json")
	if len(paths) == 0 {
		tb.Fatal("fixtures not found in testdata/fixtures")
	}
	var out [][]byte
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		var doc struct{ Events []json.RawMessage }
		if err := json.Unmarshal(raw, &doc); err != nil {
			tb.Fatal(err)
		}
		for _, e := range doc.Events {
			out = append(out, e)
		}
	}
	return out
}

func BenchmarkSkipValue(b *testing.B) {
	evs := fixtureEvents(b)
	n := 0
	for _, e := range evs {
		n += len(e)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		for _, e := range evs {
			if SkipValue(e, 0) != len(e) {
				b.Fatal("wrong end")
			}
		}
	}
}

// TestSkipValue: every fixture event ends where it ends, and so do values
// whose strings hold quotes, backslashes and brackets.
func TestSkipValue(t *testing.T) {
	for _, e := range fixtureEvents(t) {
		if got := SkipValue(append(append([]byte(nil), e...), ",{}"...), 0); got != len(e) {
			t.Fatalf("event of %d bytes ends at %d", len(e), got)
		}
	}
	cases := map[string]int{
		`"a\"b" ,`:              6,
		`"a\\" ,`:               5,
		`{"k":"}\"]"},1`:        12,
		`[1,[2,{"x":"["}],3] x`: 19,
		`123,`:                  3,
		`true}`:                 4,
		`-1.5e3]`:               6,
		`"unterminated`:         -1,
		`{"a":[1,2}`:            -1,
		`{"a":[1,2`:             -1,
		``:                      -1,
		`,`:                     -1,
	}
	for in, want := range cases {
		if got := SkipValue([]byte(in), 0); got != want {
			t.Errorf("SkipValue(%q) = %d, want %d", in, got, want)
		}
	}
	if got := SkipSpace([]byte(" \t\r\n x"), 0); got != 5 {
		t.Errorf("SkipSpace = %d", got)
	}
}

// BenchmarkSkipValueEscaped is BenchmarkSkipValue for SkipValueEscaped, the
// splitter of the edge's body decoder: run both to compare.
func BenchmarkSkipValueEscaped(b *testing.B) {
	evs := fixtureEvents(b)
	n := 0
	for _, e := range evs {
		n += len(e)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		for _, e := range evs {
			if end, _ := SkipValueEscaped(e, 0); end != len(e) {
				b.Fatal("wrong end")
			}
		}
	}
}

func TestSkipValueEscaped(t *testing.T) {
	cases := map[string]bool{
		`"a\"b" ,`:               true,
		`"ab" ,`:                 false,
		`{"k":"}\"]"},1`:         true,
		`{"k":"v","a":[1,"x"]}`:  false,
		`[1,[2,{"x":"\u0041"}]]`: true,
		`{"\n":1}`:               true,
		`123,`:                   false,
		`"unterminated`:          false,
		`{"a":[1,2`:              false,
		``:                       false,
	}
	for in, esc := range cases {
		end, got := SkipValueEscaped([]byte(in), 0)
		if want := SkipValue([]byte(in), 0); end != want {
			t.Errorf("SkipValueEscaped(%q) ends at %d, SkipValue at %d", in, end, want)
		}
		if end >= 0 && got != esc {
			t.Errorf("SkipValueEscaped(%q) escaped = %v, want %v", in, got, esc)
		}
	}
	for _, e := range fixtureEventsOrNone(t) {
		end, esc := SkipValueEscaped(e, 0)
		if end != len(e) || esc != bytes.Contains(e, []byte(`\`)) {
			t.Fatalf("fixture event of %d bytes: end %d, escaped %v", len(e), end, esc)
		}
	}
}

func fixtureEventsOrNone(tb testing.TB) [][]byte {
	return fixtureEvents(tb)
}

func TestFixEscapes(t *testing.T) {
	const hi, lo = "\xed\xa0\x80", "\xed\xb0\x80"
	cases := []struct {
		in, out string
		bad     int
	}{
		{`"abc"`, `"abc"`, -1},
		{`"\n\"\\\/\b\f\r\t\u0041\u00e9"`, `"\n\"\\\/\b\f\r\t\u0041\u00e9"`, -1},
		{`"\ud800"`, `"` + hi + `"`, -1},
		{`"\uD800"`, `"` + hi + `"`, -1},
		{`"\udc00"`, `"` + lo + `"`, -1},
		{`"\udfff"`, "\"\xed\xbf\xbf\"", -1},
		{`"\ud83d\ude00"`, `"\ud83d\ude00"`, -1},
		{`"\uD83D\uDE00"`, `"\uD83D\uDE00"`, -1},
		{`"\ud800\u0041"`, `"` + hi + `\u0041"`, -1},
		{`"\udc00\ud800"`, `"` + lo + hi + `"`, -1},
		{`"\ud800\ud800\udc00"`, `"` + hi + `\ud800\udc00"`, -1},
		{`"a\ud800b\\ud800c"`, `"a` + hi + `b\\ud800c"`, -1},
		{`{"\ud800":["x\udc00",1]}`, `{"` + hi + `":["x` + lo + `",1]}`, -1},
		{`"\ud800\\"`, `"` + hi + `\\"`, -1},
		{`"\ud800\u12"`, `"\ud800\u12"`, 7},
		{`"ok\x"`, `"ok\x"`, 3},
		{`"\u12"`, `"\u12"`, 1},
		{`"\u12G4"`, `"\u12G4"`, 1},
		{`"\U0041"`, `"\U0041"`, 1},
		{`"\`, `"\`, 1},
	}
	dst := make([]byte, 0, 64)
	for _, c := range cases {
		out, bad := FixEscapes(dst, []byte(c.in))
		if string(out) != c.out || bad != c.bad {
			t.Errorf("FixEscapes(%q) = %q, %d; want %q, %d", c.in, out, bad, c.out, c.bad)
		}
		if c.in == c.out && c.bad < 0 && len(out) > 0 && &out[0] == &dst[:1][0] {
			t.Errorf("FixEscapes(%q) copied a text it did not change", c.in)
		}
		if c.in != c.out && &out[0] != &dst[:1][0] {
			t.Errorf("FixEscapes(%q) did not reuse dst", c.in)
		}
	}
}
