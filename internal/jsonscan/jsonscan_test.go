package jsonscan

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func fixtureEvents(tb testing.TB) [][]byte {
	paths, _ := filepath.Glob("../../../shared/fixtures/batch200*.json")
	if len(paths) == 0 {
		tb.Skip("fixtures not found")
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
