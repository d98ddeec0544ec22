package storage

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/valyala/fastjson"
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
