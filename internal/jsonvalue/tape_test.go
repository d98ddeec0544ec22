package jsonvalue

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/internal/jsonscan"
)

// sameValue reports how a and b differ, walking both through core.Value
// ("" when they agree in kind, token, bytes and members, in order).
func sameValue(path string, a, b core.Value) string {
	if a.Kind() != b.Kind() {
		return fmt.Sprintf("%s: kind %d against %d", path, a.Kind(), b.Kind())
	}
	switch a.Kind() {
	case core.KindNumber:
		if x, y := a.AppendNumber(nil), b.AppendNumber(nil); !bytes.Equal(x, y) {
			return fmt.Sprintf("%s: number %q against %q", path, x, y)
		}
	case core.KindString:
		if x, y := a.Str(), b.Str(); !bytes.Equal(x, y) {
			return fmt.Sprintf("%s: string %q against %q", path, x, y)
		}
	case core.KindArray:
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: %d elements against %d", path, a.Len(), b.Len())
		}
		for i := range a.Len() {
			if d := sameValue(fmt.Sprintf("%s[%d]", path, i), a.At(i), b.At(i)); d != "" {
				return d
			}
		}
	case core.KindObject:
		fa, fb := a.Fields(nil), b.Fields(nil)
		if len(fa) != len(fb) {
			return fmt.Sprintf("%s: %d members against %d", path, len(fa), len(fb))
		}
		for i := range fa {
			if !bytes.Equal(fa[i].Key, fb[i].Key) {
				return fmt.Sprintf("%s: key %d %q against %q", path, i, fa[i].Key, fb[i].Key)
			}
			if d := sameValue(path+"."+string(fa[i].Key), fa[i].Val, fb[i].Val); d != "" {
				return d
			}
		}
	}
	return ""
}

// checkTape holds the tape to Parser on b: where the tape accepts b whole,
// Parser must accept it too, with the same values.
func checkTape(t *testing.T, tp *Tape, p *Parser, b []byte) (accepted bool) {
	t.Helper()
	v, end, ok := tp.Parse(b, 0)
	if !ok || skipWS(b, end) != len(b) {
		return false
	}
	if end > len(b) {
		t.Fatalf("%q: end %d past the text", b, end)
	}
	w, err := p.ParseBytes(b)
	if err != nil {
		t.Fatalf("%q: the tape accepts what fastjson refuses: %v", b, err)
	}
	if d := sameValue("$", v, Wrap(w)); d != "" {
		t.Fatalf("%q: %s", b, d)
	}
	return true
}

var tapeSeeds = []string{
	`{}`, `[]`, `{"a":1}`, ` [1, -2.5e+3, 0, "x", true, false, null, {"k":[{}]}]`,
	`{"a":"b","a":"c"}`, `{"a":{"b":{"c":[1,[2,[3]]]}}}`,
	`"\"\\\/\b\f\n\r\t"`, `"\u0041\u00e9\u20ac\ud83d\ude00"`, `"\uD83D\uDE00"`, `"\u0000"`,
	`"\ud800"`, `"\udc00"`, `"\udbff\u0041"`, `"a\ud83d"`, `"\ud800\ud800"`, `"\ud800\\"`,
	`"\x"`, `"\u12"`, `"\u12G4"`, `"\U0041"`, "\"\xed\xa0\x80\"", "\"raw\ttab\"",
	`{"\u0065vents":1}`, `{"a":-}`, `[-]`, `[+]`, `[+1]`, `[1.2.3]`, `[01]`, `[.5]`, `[1.]`, `[e5]`,
	`[NaN]`, `[nan]`, `[-Infinity]`, `[inf]`, `[tru]`, `[truex]`, `[1,]`, `{"a":1,}`, `{"a" 1}`,
	`{a:1}`, `[1 2]`, `{"a":1}}`, `[`, `{"a":"b`, `"abc`, `12`, ``, ` `,
	strings.Repeat("[", 199) + strings.Repeat("]", 199),
	strings.Repeat("[", 250) + strings.Repeat("]", 250),
	strings.Repeat("[", 310) + strings.Repeat("]", 310),
}

func TestTapeAgreesWithParser(t *testing.T) {
	var tp Tape
	var p Parser
	accepted := 0
	for _, s := range tapeSeeds {
		if checkTape(t, &tp, &p, []byte(s)) {
			accepted++
		}
	}
	if accepted < 20 {
		t.Fatalf("the tape accepted only %d of %d seeds", accepted, len(tapeSeeds))
	}
	// What the tape must refuse, to leave it to Parser: an escape that is
	// not JSON's, number-like tokens, a lone sign, too deep a nesting.
	for _, s := range []string{`"\x"`, `"\u12G4"`, `[NaN]`, `[-Infinity]`, `{"a":-}`, `[+]`,
		strings.Repeat("[", 250) + strings.Repeat("]", 250), `[1,]`, `{"a" 1}`, `"abc`} {
		if _, _, ok := tp.Parse([]byte(s), 0); ok {
			t.Errorf("the tape accepted %q", s)
		}
	}
}

func TestTapeValues(t *testing.T) {
	var tp Tape
	v, end, ok := tp.Parse([]byte(`{"s":"a\"b\ud83d\ude00","n":-1.5e3,"u":"\ud800","a":[true,null]} tail`), 0)
	if !ok || end != len(`{"s":"a\"b\ud83d\ude00","n":-1.5e3,"u":"\ud800","a":[true,null]}`) {
		t.Fatalf("ok %v, end %d", ok, end)
	}
	f := v.Fields(nil)
	if len(f) != 4 || string(f[0].Key) != "s" || string(f[0].Val.Str()) != "a\"b😀" {
		t.Fatalf("fields %v", f)
	}
	if got := string(f[1].Val.AppendNumber(nil)); got != "-1.5e3" {
		t.Fatalf("number %q", got)
	}
	if got := f[2].Val.Str(); !bytes.Equal(got, []byte{0xED, 0xA0, 0x80}) {
		t.Fatalf("unpaired surrogate %x", got)
	}
	if a := f[3].Val; a.Len() != 2 || a.At(0).Kind() != core.KindTrue || a.At(1).Kind() != core.KindNull {
		t.Fatalf("array %v", a)
	}
}

// TestTapeAllocatesNothing: a parse in steady state allocates nothing.
func TestTapeAllocatesNothing(t *testing.T) {
	b := []byte(`{"type":"camera_sample","sessionId":"s\u00e9","ts":1,"position":[1.5,2,3],"props":{"a":[{"b":"c"}]}}`)
	var tp Tape
	tp.Parse(b, 0)
	if n := testing.AllocsPerRun(100, func() {
		if _, _, ok := tp.Parse(b, 0); !ok {
			t.Fatal("refused")
		}
	}); n != 0 {
		t.Fatalf("%v allocations a parse", n)
	}
}

// FuzzTape holds the tape to Parser on arbitrary text.
func FuzzTape(f *testing.F) {
	for _, s := range tapeSeeds {
		f.Add([]byte(s))
	}
	var tp Tape
	var p Parser
	f.Fuzz(func(t *testing.T, b []byte) {
		checkTape(t, &tp, &p, b)
	})
}

func BenchmarkTape(b *testing.B) {
	ev := []byte(`{"type":"camera_sample","projectId":"p","sessionId":"s-1234","ts":1795892750123,"sdkVersion":"1.4.0","sceneId":"showroom","position":[1.25,2.5,-3.75],"direction":[0.1,-0.2,0.97],"fov":0.8,"hitPoint":[4.5,0.25,-1.5],"props":{"k":"v"}}`)
	b.Run("tape", func(b *testing.B) {
		var tp Tape
		b.SetBytes(int64(len(ev)))
		b.ReportAllocs()
		for b.Loop() {
			tp.Parse(ev, 0)
		}
	})
	// What the tape replaces: the splitter finds the event's end, then
	// fastjson parses it.
	b.Run("split+fastjson", func(b *testing.B) {
		var p Parser
		b.SetBytes(int64(len(ev)))
		b.ReportAllocs()
		for b.Loop() {
			end, esc := jsonscan.SkipValueEscaped(ev, 0)
			p.Parse(ev[:end], esc)
		}
	})
}
