package storage

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	"github.com/uptimizr/edge/core"
)

// TestMembersAgreesWithFastjson: the aggregator's member index reads the
// same fields as a full parse, on canonical events and on JSON with space
// and escapes.
func TestMembersAgreesWithFastjson(t *testing.T) {
	docs := []string{
		`{"type":"camera_sample","sceneId":"lobby","visitorId":"v1","position":[1,2,3],"direction":[0.1,-0.2,0.97],"hitPoint":[1.5,0,-2e3]}`,
		`{ "sceneId" : "a\"b\\u00e9" , "mesh":"wheel \u2014 front","nested":{"x":[1,{"y":"}]"}]},"fps":59.5,"screen":[0.25,0.75] }`,
		`{"device":{"engine":"webgl2","vendor":"x,y"},"user":{"id":"abc","traits":{"a":null,"b":true}},"jsHeapBytes":12345678}`,
		`{}`,
	}
	var p fastjson.Parser
	var m members
	for _, d := range docs {
		v, err := p.Parse(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.index([]byte(d)); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		o, _ := v.Object()
		n := 0
		o.Visit(func(k []byte, x *fastjson.Value) {
			n++
			if x.Type() == fastjson.TypeString {
				if got := string(m.str(string(k))); got != string(x.GetStringBytes()) {
					t.Errorf("%s: %q = %q, want %q", d, k, got, x.GetStringBytes())
				}
			}
			if x.Type() == fastjson.TypeNumber {
				if got, ok := m.num(string(k)); !ok || got != x.GetFloat64() {
					t.Errorf("%s: %q = %v, want %v", d, k, got, x.GetFloat64())
				}
			}
			if x.Type() == fastjson.TypeObject {
				if got := string(m.raw(string(k))); got != string(x.MarshalTo(nil)) {
					t.Errorf("%s: %q = %s, want %s", d, k, got, x.MarshalTo(nil))
				}
			}
			if a := x.GetArray(); len(a) > 0 && a[0].Type() == fastjson.TypeNumber {
				dst := make([]float64, len(a))
				if !m.vec(string(k), dst) {
					t.Errorf("%s: %q not read as a vector", d, k)
				}
				for i := range a {
					if dst[i] != a[i].GetFloat64() {
						t.Errorf("%s: %q[%d] = %v", d, k, i, dst[i])
					}
				}
				if m.vec(string(k), make([]float64, len(a)+1)) {
					t.Errorf("%s: %q read with the wrong length", d, k)
				}
			}
		})
		if n != len(m.keys) {
			t.Errorf("%s: %d members, fastjson %d", d, len(m.keys), n)
		}
	}
	for _, bad := range []string{``, `[]`, `{"a":}`, `{"a":1`, `{"a" 1}`, `{"a":"x}`, `{"a":[1,2}`, `{"a":1,}`} {
		if m.index([]byte(bad)) == nil {
			t.Errorf("%q indexed without error", bad)
		}
	}
}

func FuzzMembers(f *testing.F) {
	f.Add([]byte(`{"sceneId":"s","screen":[0.1,0.2],"device":{"a":[1,"]"]}}`))
	f.Add([]byte(`{"a":"\"","b":[[]],"c":{}}`))
	f.Add([]byte(`{"":"\0"}`))          // an invalid escape
	f.Add([]byte("{\"\":\"\x87\\b\"}")) // invalid UTF-8 beside an escape
	var m members
	var p fastjson.Parser
	f.Fuzz(func(t *testing.T, b []byte) {
		ierr := m.index(b)
		// Where a full parser reads an object, the index reads the same
		// members (it is more lenient, not less). Compared on valid JSON in
		// valid UTF-8 only, which is what ingest writes: on anything else
		// fastjson keeps bytes verbatim (an invalid escape "\0", a stray
		// 0x87) where encoding/json, which the index unescapes with,
		// substitutes or refuses.
		if v, err := p.ParseBytes(b); err == nil && v.Type() == fastjson.TypeObject && json.Valid(b) && utf8.Valid(b) {
			if ierr != nil {
				t.Fatalf("%q: fastjson reads an object, the index fails: %v", b, ierr)
			}
			o, _ := v.Object()
			if o.Len() != len(m.keys) {
				t.Fatalf("%q: %d members, fastjson %d", b, len(m.keys), o.Len())
			}
			o.Visit(func(k []byte, x *fastjson.Value) {
				// Escapes are compared by TestMembersAgreesWithFastjson: with
				// them, keys are matched as written and strings unescaped by
				// encoding/json, where fastjson has its own lenient rules.
				if bytes.IndexByte(b, '\\') >= 0 {
					return
				}
				// Duplicate keys: the index returns the first, as fastjson's
				// Get does (Visit goes through every one).
				first := v.Get(string(k))
				if first.Type() == fastjson.TypeString && string(m.str(string(k))) != string(first.GetStringBytes()) {
					t.Fatalf("%q: %q = %q, fastjson %q", b, k, m.str(string(k)), first.GetStringBytes())
				}
			})
		}
		if ierr != nil {
			return
		}
		for i, k := range m.keys {
			_ = m.str(string(k))
			_, _ = m.num(string(k))
			_ = m.vec(string(k), make([]float64, 3))
			if len(m.vals[i]) == 0 {
				t.Fatalf("empty value for %q", k)
			}
		}
	})
}

// TestFastNumMatchesParseNumber: the one-pass parse gives what
// core.ParseNumber gives, bit for bit, for tokens of every shape, and
// refuses what it refuses.
func TestFastNumMatchesParseNumber(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	toks := []string{"0", "-0", "1", "-1", "0.5", "-0.0", "123456789012345", "1234567890123456", "0.1", "0.30000000000000004",
		"1e3", "1E-3", "-2.5e+10", "01", "-", ".5", "-.5", "1.", "+1", "1e", "1.5.5", "9007199254740993", "1e400", "-1e400", "00", "0.000000000000001"}
	for i := 0; i < 20000; i++ {
		v := (r.Float64() - 0.5) * math.Pow(10, float64(r.IntN(30)-15))
		switch i % 4 {
		case 0:
			toks = append(toks, strconv.FormatFloat(v, 'f', -1, 64))
		case 1:
			toks = append(toks, strconv.FormatFloat(v, 'f', r.IntN(8), 64))
		case 2:
			toks = append(toks, strconv.FormatFloat(v, 'g', -1, 64))
		default:
			toks = append(toks, strconv.FormatFloat(v, 'e', r.IntN(17), 64))
		}
	}
	for _, tok := range toks {
		want, wok := core.ParseNumber([]byte(tok))
		got, gok := parseNum([]byte(tok))
		if gok != wok || wok && math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("%q: %v %v, want %v %v", tok, got, gok, want, wok)
		}
	}
	var v [3]float64
	for _, c := range []struct {
		tok  string
		ok   bool
		want [3]float64
	}{
		{"[1,2,3]", true, [3]float64{1, 2, 3}},
		{"[ -0.25 , 1e2,3.5 ]", true, [3]float64{-0.25, 100, 3.5}},
		{"[1,2]", false, [3]float64{}},
		{"[1,2,3,4]", false, [3]float64{}},
		{"[1,,3]", false, [3]float64{}},
		{"[1,2,x]", false, [3]float64{}},
		{"[1 2 3]", false, [3]float64{}},
	} {
		v = [3]float64{}
		if ok := tokVec([]byte(c.tok), v[:]); ok != c.ok || ok && v != c.want {
			t.Errorf("tokVec(%s) = %v %v, want %v %v", c.tok, v, ok, c.want, c.ok)
		}
	}
}

// FuzzFastNum: for any bytes, parseNum agrees with core.ParseNumber.
func FuzzFastNum(f *testing.F) {
	for _, s := range []string{"0", "-1.5", "1e3", "123456789012345678", "01", ".5", "-0.0"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, wok := core.ParseNumber(b)
		got, gok := parseNum(b)
		if gok != wok || wok && math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("%q: %v %v, want %v %v", b, got, gok, want, wok)
		}
	})
}
