package sdk

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

const sampleEvent = `{"type":"session_start","projectId":"p1","sessionId":"s1","visitorId":"0123456789abcdef0123456789abcdef","ts":1795892682261,"sdkVersion":"0.5.0","sceneId":"configurator","url":"https://shop.example.com/c?x=1","pageMeta":{"title":"Configure \"your\" car","viewport":[1920,1080],"devicePixelRatio":2,"language":"en-US"},"device":{"engine":"webgl2","isMobile":true,"maxTextureSize":16384,"deviceMemoryGb":null},"user":{"id":"u-1","traits":{"plan":"pro","email":"a@b.co","age":41,"beta":false}}}`

func mustEvent(t testing.TB, s string) *Event {
	t.Helper()
	e, err := ParseEvent([]byte(s))
	if err != nil {
		t.Fatalf("ParseEvent(%s): %v", s, err)
	}
	return e
}

func TestGetPaths(t *testing.T) {
	e := mustEvent(t, sampleEvent)
	if got := e.Type(); got != "session_start" {
		t.Fatalf("Type() = %q", got)
	}
	cases := []struct {
		path []string
		kind Kind
		text string
	}{
		{[]string{"url"}, String, "https://shop.example.com/c?x=1"},
		{[]string{"pageMeta", "title"}, String, `Configure "your" car`},
		{[]string{"pageMeta", "viewport"}, Array, "[1920,1080]"},
		{[]string{"pageMeta", "devicePixelRatio"}, Number, "2"},
		{[]string{"device", "isMobile"}, Bool, "true"},
		{[]string{"device", "deviceMemoryGb"}, Null, "null"},
		{[]string{"user", "traits", "email"}, String, "a@b.co"},
		{[]string{"user", "traits"}, Object, `{"plan":"pro","email":"a@b.co","age":41,"beta":false}`},
		{[]string{"ts"}, Number, "1795892682261"},
	}
	for _, c := range cases {
		v, ok := e.Get(c.path...)
		if !ok {
			t.Errorf("Get(%v): not found", c.path)
			continue
		}
		if v.Kind() != c.kind || v.String() != c.text {
			t.Errorf("Get(%v) = %v %q, want %v %q", c.path, v.Kind(), v.String(), c.kind, c.text)
		}
	}
	for _, path := range [][]string{{"nope"}, {"url", "x"}, {"pageMeta", "nope"}, {"pageMeta", "viewport", "0"}, {"user", "traits", "email", "x"}} {
		if v, ok := e.Get(path...); ok || v.Kind() != Invalid {
			t.Errorf("Get(%v) = %v, %v; want not found", path, v, ok)
		}
	}
	root, ok := e.Get()
	if !ok || root.Kind() != Object || string(root.Raw()) != sampleEvent {
		t.Errorf("Get() = %v %v", root.Kind(), ok)
	}
	if ts, ok := e.Get("ts"); !ok {
		t.Error("no ts")
	} else if n, ok := ts.Int(); !ok || n != 1795892682261 {
		t.Errorf("ts.Int() = %d, %v", n, ok)
	}
}

func TestStringsAndEscapes(t *testing.T) {
	doc := `{"a":"\u00e9\u4e2d\ud83d\ude00","b":"q\"uote\\back\/slash\b\f\n\r\t","c":"\ud800x","d":"\udc00","k\u0065y":1,"e":"plain é 中"}`
	v, err := ParseValue([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal([]byte(doc), &want); err != nil {
		t.Fatal(err)
	}
	n := 0
	for k, m := range v.Members() {
		n++
		w, ok := want[k]
		if !ok {
			t.Errorf("member %q not in encoding/json's decoding", k)
			continue
		}
		if s, isStr := w.(string); isStr {
			if got := m.String(); got != s {
				t.Errorf("%s: String() = %q, want %q", k, got, s)
			}
			if !m.Is(s) {
				t.Errorf("%s: Is(%q) = false", k, s)
			}
			if m.Is(s + "x") {
				t.Errorf("%s: Is(%q+x) = true", k, s)
			}
			if got := string(m.AppendText([]byte(">"))); got != ">"+s {
				t.Errorf("%s: AppendText = %q", k, got)
			}
		}
	}
	if n != len(want) {
		t.Errorf("%d members, want %d", n, len(want))
	}
	if got, ok := v.Get("key"); !ok || got.String() != "1" {
		t.Errorf(`Get("key") over an escaped name = %v, %v`, got, ok)
	}
}

func TestNumbers(t *testing.T) {
	for _, c := range []struct {
		in    string
		f     float64
		isInt bool
	}{
		{"0", 0, true}, {"-0", 0, true}, {"12", 12, true}, {"-3.25", -3.25, false},
		{"1e3", 1000, true}, {"1000.0", 1000, true}, {"2.5E-3", 0.0025, false},
		{"9007199254740993", 9007199254740992, true}, {"1e16", 1e16, false}, {"99999999999999999999", 1e20, false}, {"1e400", math.Inf(1), false},
	} {
		v, err := ParseValue([]byte(c.in))
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		f, ok := v.Float()
		if !ok || f != c.f {
			t.Errorf("%s: Float() = %v, %v; want %v", c.in, f, ok, c.f)
		}
		if _, ok := v.Int(); ok != c.isInt {
			t.Errorf("%s: Int() ok = %v, want %v", c.in, ok, c.isInt)
		}
	}
	big, _ := ParseValue([]byte("9007199254740993"))
	if n, _ := big.Int(); n != 9007199254740993 {
		t.Errorf("plain integer token read inexactly: %d", n)
	}
	s, _ := ParseValue([]byte(`"12"`))
	if _, ok := s.Float(); ok {
		t.Error(`Float() of a string reported ok`)
	}
	if _, ok := s.Bool(); ok {
		t.Error(`Bool() of a string reported ok`)
	}
}

func TestIteration(t *testing.T) {
	v, err := ParseValue([]byte(` { "a" : [ 1 , "two" , {"x":[]} , [ ] , null ] , "b" : { } } `))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := v.Get("a")
	var kinds []Kind
	var raws []string
	for i, el := range a.Elements() {
		if i != len(kinds) {
			t.Fatalf("index %d out of order", i)
		}
		kinds = append(kinds, el.Kind())
		raws = append(raws, string(el.Raw()))
	}
	if got := strings.Join(raws, "|"); got != `1|"two"|{"x":[]}|[ ]|null` {
		t.Errorf("elements = %s", got)
	}
	if kinds[2] != Object || kinds[3] != Array || kinds[4] != Null {
		t.Errorf("kinds = %v", kinds)
	}
	if a.Len() != 5 || v.Len() != 2 {
		t.Errorf("Len = %d, %d", a.Len(), v.Len())
	}
	b, _ := v.Get("b")
	for range b.Members() {
		t.Error("empty object yielded a member")
	}
	// early stop
	n := 0
	for range a.Elements() {
		n++
		break
	}
	if n != 1 {
		t.Errorf("break after first element: %d", n)
	}
	// non-containers iterate nothing
	one, _ := ParseValue([]byte("1"))
	for range one.Members() {
		t.Error("number yielded a member")
	}
	for range one.Elements() {
		t.Error("number yielded an element")
	}
}

func TestMalformed(t *testing.T) {
	bad := []string{
		``, ` `, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,"a":1}`, `{"a":1 "b":2}`, `{"a":01}`,
		`{"a":.5}`, `{"a":1.}`, `{"a":-}`, `{"a":1e}`, `{"a":+1}`, `{"a":NaN}`, `{"a":tru}`,
		`{"a":"x}`, `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12g4"}`, "{\"a\":\"\x01\"}", `{"a":[1,]}`,
		`{"a":[1 2]}`, `{"a":1}x`, `{"a":1}{}`, `[1]`, `"s"`, `{a:1}`, `{"a":'x'}`, `{"a":1`,
		`{"a":"\`, `{"a":"\u`, strings.Repeat("[", MaxDepth+5) + strings.Repeat("]", MaxDepth+5),
		`{"a":` + strings.Repeat(`{"a":`, MaxDepth+1) + `1` + strings.Repeat(`}`, MaxDepth+2),
	}
	for _, s := range bad {
		e, err := ParseEvent([]byte(s))
		if err == nil {
			t.Errorf("ParseEvent(%.40q) accepted", s)
			continue
		}
		if e != nil {
			t.Errorf("ParseEvent(%.40q) returned an event with an error", s)
		}
		var se *SyntaxError
		if !errors.As(err, &se) && !errors.Is(err, ErrNotEvent) {
			t.Errorf("ParseEvent(%.40q): unexpected error type %T", s, err)
		}
	}
	// a nil *Event-like zero value answers without panicking
	var e Event
	if _, ok := e.Get("type"); ok || e.Type() != "" {
		t.Error("zero Event found something")
	}
	if err := e.SetString([]string{"a"}, "x"); err == nil {
		t.Error("edit of a zero Event succeeded")
	}
	if _, err := e.AppendJSON(nil); err == nil {
		t.Error("AppendJSON of a zero Event succeeded")
	}
	var v Value
	if v.Kind() != Invalid || v.String() != "" || v.Len() != 0 {
		t.Error("zero Value is not Invalid")
	}
	if _, ok := v.Get("a"); ok {
		t.Error("zero Value Get found something")
	}
}

func TestAppendQuoted(t *testing.T) {
	for _, s := range []string{
		"", "plain", `q"uote`, `back\slash`, "ctl\x00\x01\x1f\x7f", "tab\tnl\nret\rbs\bff\f",
		"é中😀", "bad\xffutf8\xc3", "</script>&", "\u2028\u2029",
	} {
		q := AppendQuoted(nil, s)
		var back string
		if err := json.Unmarshal(q, &back); err != nil {
			t.Errorf("AppendQuoted(%q) = %s: not JSON: %v", s, q, err)
			continue
		}
		want := strings.ToValidUTF8(s, "\uFFFD")
		if back != want {
			t.Errorf("AppendQuoted(%q) round-trips to %q", s, back)
		}
		// the SDK's own reader agrees
		v, err := ParseValue(q)
		if err != nil || v.String() != want {
			t.Errorf("ParseValue(AppendQuoted(%q)) = %q, %v", s, v.String(), err)
		}
	}
	if got := string(AppendQuoted(nil, "<&>")); got != `"<&>"` {
		t.Errorf("minimal escaping: got %s", got)
	}
}
