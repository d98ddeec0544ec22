package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// sceneBase is a valid representation of scene "s" with one mesh.
const sceneBase = `{"version":1,"kind":"aabb","sceneId":"s","bounds":[-10,0,-10,10,5,10],"upAxis":"y","unitScale":1,` +
	`"meshes":[{"name":"m","aabb":[0,0,0,1,1,1]}],"meshCount":1,"contentHash":"sha256:abc","capturedAt":1700000000000,"sdkVersion":"1.4.0"}`

// sceneDoc parses sceneBase with each old→new replacement of repl made once.
func sceneDoc(t testing.TB, repl ...string) *node {
	t.Helper()
	s := sceneBase
	for i := 0; i < len(repl); i += 2 {
		if !strings.Contains(s, repl[i]) {
			t.Fatalf("%q is not in the base document", repl[i])
		}
		s = strings.Replace(s, repl[i], repl[i+1], 1)
	}
	v, err := parseAsEdge([]byte(s))
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return v
}

// meshesNode is an array of n valid meshes.
func meshesNode(n int) *node {
	a := &node{kind: KindArray}
	for i := range n {
		a.elems = append(a.elems, &node{kind: KindObject, fields: []Field{
			{Key: []byte("name"), Val: strNode(fmt.Sprintf("mesh-%05d", i))},
			{Key: []byte("aabb"), Val: vecNode(6, "0")},
		}})
	}
	return a
}

func TestAppendSceneCanonical(t *testing.T) {
	// Unknown members are dropped, upAxis is stored signed, numbers are
	// re-encoded in their shortest form, and the member order is fixed.
	body := `{"sdkVersion":"1.4.0","extra":{"a":[1,2]},"capturedAt":1.7e12,"contentHash":"h1",
		"meshCount":3,"meshes":[
			{"path":"root/Floor","triangles":12,"aabb":[-0,0.10,1E-7,1e3,2.50,3],"name":"Floor","color":"red"},
			{"name":"Lamp \"A\" ☀","aabb":[0,0,0,0,0,0],"triangles":null,"path":null},
			{"name":"é𝄞","aabb":[1,1,1,2,2,2],"triangles":0,"path":""}],
		"unitScale":0.01,"upAxis":"y","bounds":[-1.0,0,-1,1,2e0,1],"sceneId":"hall-1","kind":"aabb","version":1.0}`
	want := `{"version":1,"kind":"aabb","sceneId":"hall-1","bounds":[-1,0,-1,1,2,1],"upAxis":"+y","unitScale":0.01,` +
		`"meshCount":3,"contentHash":"h1","capturedAt":1700000000000,"sdkVersion":"1.4.0","meshes":[` +
		`{"name":"Floor","aabb":[0,0.1,1e-7,1000,2.5,3],"triangles":12,"path":"root/Floor"},` +
		`{"name":"Lamp \"A\" ☀","aabb":[0,0,0,0,0,0]},` +
		`{"name":"é𝄞","aabb":[1,1,1,2,2,2],"triangles":0,"path":""}]}`
	v, err := parseAsEdge([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	doc, sc, err := AppendScene([]byte("prefix:"), v, []byte("hall-1"))
	if err != nil {
		t.Fatal(err)
	}
	if string(doc) != "prefix:"+want {
		t.Fatalf("got  %s\nwant prefix:%s", doc, want)
	}
	if string(sc.ID) != "hall-1" || sc.MeshCount != 3 || string(sc.ContentHash) != "h1" || sc.CapturedAt != 1700000000000 ||
		string(sc.SDKVersion) != "1.4.0" {
		t.Fatalf("scene %+v", sc)
	}
	// The canonical form is a fixed point.
	again, err := parseAsEdge(doc[len("prefix:"):])
	if err != nil {
		t.Fatal(err)
	}
	if doc2, _, err := AppendScene(nil, again, []byte("hall-1")); err != nil || string(doc2) != want {
		t.Fatalf("re-encoding the canonical form: %v\n%s", err, doc2)
	}

	at := time.Date(2024, 5, 6, 7, 8, 9, 12e6, time.FixedZone("x", 3600))
	sum := sc.AppendSummary([]byte("["), at)
	wantSum := `[{"scene_id":"hall-1","version":1,"kind":"aabb","meshCount":3,"contentHash":"h1","capturedAt":1700000000000,` +
		`"sdkVersion":"1.4.0","updated_at":"2024-05-06T06:08:09.012Z"}`
	if string(sum) != wantSum {
		t.Fatalf("summary %s\nwant    %s", sum, wantSum)
	}
}

func TestAppendSceneAccepts(t *testing.T) {
	for _, c := range []struct {
		name string
		v    *node
		want string // a piece of the document; "" = only accepted
	}{
		{"base", sceneDoc(t), `"upAxis":"+y"`},
		{"10000 meshes", sceneDoc(t, `"meshCount":1`, `"meshCount":10000`).with("meshes", meshesNode(10000)), ""},
		{"no meshes", sceneDoc(t, `"meshCount":1`, `"meshCount":0`).with("meshes", meshesNode(0)), `"meshes":[]}`},
		{"meshCount above listed", sceneDoc(t, `"meshCount":1`, `"meshCount":50000`), `"meshCount":50000`},
		{"name 256", sceneDoc(t, `"name":"m"`, `"name":"`+strings.Repeat("n", 256)+`"`), ""},
		{"name 128 astral = 256 units", sceneDoc(t, `"name":"m"`, `"name":"`+strings.Repeat("𝄞", 128)+`"`), ""},
		{"surrogate pair", sceneDoc(t, `"name":"m"`, `"name":"m\ud83d\ude00"`), `"name":"m😀"`},
		{"path empty", sceneDoc(t, `"name":"m"`, `"name":"m","path":""`), `"path":""`},
		{"path 1024", sceneDoc(t, `"name":"m"`, `"name":"m","path":"`+strings.Repeat("p", 1024)+`"`), ""},
		{"triangles 0", sceneDoc(t, `"name":"m"`, `"name":"m","triangles":0`), `"triangles":0}`},
		{"triangles 1e3", sceneDoc(t, `"name":"m"`, `"name":"m","triangles":1e3`), `"triangles":1000}`},
		{"aabb point", sceneDoc(t, `"aabb":[0,0,0,1,1,1]`, `"aabb":[1,1,1,1,1,1]`), `"aabb":[1,1,1,1,1,1]`},
		{"bounds flat", sceneDoc(t, `"bounds":[-10,0,-10,10,5,10]`, `"bounds":[0,0,0,0,0,0]`), `"bounds":[0,0,0,0,0,0]`},
		{"unitScale tiny", sceneDoc(t, `"unitScale":1`, `"unitScale":1e-300`), `"unitScale":1e-300`},
		{"unitScale large", sceneDoc(t, `"unitScale":1`, `"unitScale":1.5e300`), `"unitScale":1.5e+300`},
		{"version 1e0", sceneDoc(t, `"version":1`, `"version":1e0`), `{"version":1,`},
		{"capturedAt 0", sceneDoc(t, `"capturedAt":1700000000000`, `"capturedAt":0`), `"capturedAt":0,`},
		{"capturedAt 2^53", sceneDoc(t, `"capturedAt":1700000000000`, `"capturedAt":9007199254740992`), `"capturedAt":9007199254740992,`},
		{"capturedAt -0", sceneDoc(t, `"capturedAt":1700000000000`, `"capturedAt":-0`), `"capturedAt":0,`},
		{"upAxis z", sceneDoc(t, `"upAxis":"y"`, `"upAxis":"z"`), `"upAxis":"+z"`},
		{"upAxis -x", sceneDoc(t, `"upAxis":"y"`, `"upAxis":"-x"`), `"upAxis":"-x"`},
		{"upAxis +y", sceneDoc(t, `"upAxis":"y"`, `"upAxis":"+y"`), `"upAxis":"+y"`},
		{"contentHash 128", sceneDoc(t, `"contentHash":"sha256:abc"`, `"contentHash":"`+strings.Repeat("h", 128)+`"`), ""},
		{"sdkVersion 64", sceneDoc(t, `"sdkVersion":"1.4.0"`, `"sdkVersion":"`+strings.Repeat("v", 64)+`"`), ""},
		{"nulls are absent", sceneDoc(t, `"name":"m"`, `"name":"m","triangles":null,"path":null`), `"aabb":[0,0,0,1,1,1]}]`},
	} {
		t.Run(c.name, func(t *testing.T) {
			doc, _, err := AppendScene(nil, c.v, []byte("s"))
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(doc) || !strings.Contains(string(doc), c.want) {
				t.Fatalf("document %s\nwant a piece %s", doc, c.want)
			}
		})
	}
}

func TestAppendSceneRejects(t *testing.T) {
	const aabbWant = "want [minX,minY,minZ,maxX,maxY,maxZ] of finite numbers with min ≤ max"
	const axes = "one of x, y, z, +x, +y, +z, -x, -y, -z"
	long := func(n int) string { return strings.Repeat("n", n) }
	base := sceneDoc(t)
	meshField := func(k string, v *node) *node {
		mesh := &node{kind: KindObject, fields: []Field{{Key: []byte("name"), Val: strNode("m")}, {Key: []byte("aabb"), Val: vecNode(6, "0")}}}
		return base.with("meshes", &node{kind: KindArray, elems: []*node{mesh.with(k, v)}})
	}
	for _, c := range []struct {
		name string
		v    Value
		want string
	}{
		{"not an object", mustParse(t, `[`+sceneBase+`]`), `body must be a JSON object: {"version":1,"kind":"aabb","sceneId":…}`},
		{"nil", nil, `body must be a JSON object: {"version":1,"kind":"aabb","sceneId":…}`},
		{"10001 meshes", base.with("meshCount", numNode("10001")).with("meshes", meshesNode(10001)), "meshes: 10001 meshes, at most 10000 allowed"},
		{"meshes missing", base.without("meshes"), "meshes: required (an array, possibly empty)"},
		{"meshes null", base.with("meshes", &node{kind: KindNull}), "meshes: required (an array, possibly empty)"},
		{"meshes object", base.with("meshes", &node{kind: KindObject}), "meshes: want an array of {name, aabb, triangles?, path?}"},
		{"mesh not an object", base.with("meshCount", numNode("2")).with("meshes", &node{kind: KindArray, elems: []*node{meshesNode(1).elems[0], strNode("x")}}), "meshes[1]: want an object {name, aabb, triangles?, path?}"},
		{"name 257", meshField("name", strNode(long(257))), "meshes[0].name: want 1–256 characters"},
		{"name 129 astral", meshField("name", strNode(strings.Repeat("𝄞", 129))), "meshes[0].name: want 1–256 characters"},
		{"name empty", meshField("name", strNode("")), "meshes[0].name: want 1–256 characters"},
		{"name missing", sceneDoc(t, `"name":"m",`, ``), "meshes[0].name: required"},
		{"name number", meshField("name", numNode("5")), "meshes[0].name: want a string"},
		{"name invalid UTF-8", meshField("name", strNode("m\xff")), "meshes[0].name: invalid text: not valid UTF-8"},
		{"name lone surrogate", sceneDoc(t, `"name":"m"`, `"name":"m\ud800"`), `meshes[0].name: invalid text: unpaired UTF-16 surrogate \ud800`},
		{"name lone low surrogate", sceneDoc(t, `"name":"m"`, `"name":"m\udfff\u0041"`), `meshes[0].name: invalid text: unpaired UTF-16 surrogate \udfff`},
		{"mesh aabb 5", meshField("aabb", vecNode(5, "0")), "meshes[0].aabb: " + aabbWant},
		{"mesh aabb 7", meshField("aabb", vecNode(7, "0")), "meshes[0].aabb: " + aabbWant},
		{"mesh aabb missing", sceneDoc(t, `,"aabb":[0,0,0,1,1,1]`, ``), "meshes[0].aabb: required " + aabbWant},
		{"mesh aabb null", meshField("aabb", &node{kind: KindNull}), "meshes[0].aabb: required " + aabbWant},
		{"mesh aabb string", sceneDoc(t, `"aabb":[0,0,0,1,1,1]`, `"aabb":[0,0,"0",1,1,1]`), "meshes[0].aabb[2]: want a finite number"},
		{"mesh aabb min>max", sceneDoc(t, `"aabb":[0,0,0,1,1,1]`, `"aabb":[0,0,2,1,1,1]`), "meshes[0].aabb: minZ 2 > maxZ 1: want min ≤ max on each axis"},
		{"mesh aabb 1e999", sceneDoc(t, `"aabb":[0,0,0,1,1,1]`, `"aabb":[0,0,0,1e999,1,1]`), "meshes[0].aabb[3]: want a finite number"},
		{"triangles -1", meshField("triangles", numNode("-1")), "meshes[0].triangles: want an integer 0 to 2^53"},
		{"triangles 1.5", meshField("triangles", numNode("1.5")), "meshes[0].triangles: want an integer 0 to 2^53"},
		{"triangles string", meshField("triangles", strNode("1")), "meshes[0].triangles: want an integer 0 to 2^53"},
		{"path 1025", meshField("path", strNode(long(1025))), "meshes[0].path: at most 1024 characters"},
		{"path number", meshField("path", numNode("1")), "meshes[0].path: want a string"},
		{"duplicate mesh field", sceneDoc(t, `"name":"m"`, `"name":"a","name":"b"`), "meshes[0].name: duplicate field"},
		{"bounds 5", base.with("bounds", vecNode(5, "0")), "bounds: " + aabbWant},
		{"bounds min>max", sceneDoc(t, `"bounds":[-10,0,-10,10,5,10]`, `"bounds":[0,2,0,1,1,1]`), "bounds: minY 2 > maxY 1: want min ≤ max on each axis"},
		{"bounds min>max fractions", sceneDoc(t, `"bounds":[-10,0,-10,10,5,10]`, `"bounds":[0.5,0,0,1e-7,1,1]`), "bounds: minX 0.5 > maxX 1e-07: want min ≤ max on each axis"},
		{"bounds missing", base.without("bounds"), "bounds: required " + aabbWant},
		{"bounds object", base.with("bounds", &node{kind: KindObject}), "bounds: " + aabbWant},
		{"bounds NaN", base.with("bounds", vecNode(6, "NaN")), "bounds[0]: want a finite number"},
		{"unitScale 0", base.with("unitScale", numNode("0")), "unitScale: want a finite number > 0"},
		{"unitScale -1", base.with("unitScale", numNode("-1")), "unitScale: want a finite number > 0"},
		{"unitScale underflow", base.with("unitScale", numNode("1e-400")), "unitScale: want a finite number > 0"},
		{"unitScale missing", base.without("unitScale"), "unitScale: required"},
		{"unitScale string", base.with("unitScale", strNode("1")), "unitScale: want a finite number > 0"},
		{"version 2", base.with("version", numNode("2")), "version: unsupported version 2: want 1"},
		{"version string", base.with("version", strNode("1")), "version: want an integer 0 to 2^53"},
		{"version missing", base.without("version"), "version: required"},
		{"duplicate field", base.appendMember("version", numNode("1")), "version: duplicate field"},
		{"kind obb", base.with("kind", strNode("obb")), `kind: unsupported kind "obb": want "aabb"`},
		{"kind empty", base.with("kind", strNode("")), "kind: want 1–16 characters"},
		{"kind missing", base.without("kind"), "kind: required"},
		{"sceneId mismatch", base.with("sceneId", strNode("t")), `sceneId: "t" does not match the scene id in the path "s"`},
		{"sceneId missing", base.without("sceneId"), "sceneId: required"},
		{"sceneId bad chars", base.with("sceneId", strNode("a b")), "sceneId: use 1–64 characters of A-Z a-z 0-9 . _ : -"},
		{"sceneId 65", base.with("sceneId", strNode(long(65))), "sceneId: want 1–64 characters"},
		{"upAxis Y", base.with("upAxis", strNode("Y")), "upAxis: want " + axes},
		{"upAxis up", base.with("upAxis", strNode("up")), "upAxis: want " + axes},
		{"upAxis *y", base.with("upAxis", strNode("*y")), "upAxis: want " + axes},
		{"upAxis +yz", base.with("upAxis", strNode("+yz")), "upAxis: want " + axes},
		{"upAxis number", base.with("upAxis", numNode("1")), "upAxis: want " + axes},
		{"upAxis missing", base.without("upAxis"), "upAxis: required (" + axes + ")"},
		{"meshCount below listed", base.with("meshCount", numNode("0")), "meshCount: 0 is less than the 1 meshes listed"},
		{"meshCount negative", base.with("meshCount", numNode("-1")), "meshCount: want an integer 0 to 2^53"},
		{"meshCount null", base.with("meshCount", &node{kind: KindNull}), "meshCount: required"},
		{"meshCount above 2^53", base.with("meshCount", numNode("9007199254740994")), "meshCount: want an integer 0 to 2^53"},
		{"contentHash 129", base.with("contentHash", strNode(long(129))), "contentHash: want 1–128 characters"},
		{"contentHash empty", base.with("contentHash", strNode("")), "contentHash: want 1–128 characters"},
		{"capturedAt ISO", base.with("capturedAt", strNode("2024-01-01T00:00:00Z")), "capturedAt: want an integer 0 to 2^53 (epoch milliseconds)"},
		{"capturedAt negative", base.with("capturedAt", numNode("-1")), "capturedAt: want an integer 0 to 2^53 (epoch milliseconds)"},
		{"capturedAt missing", base.without("capturedAt"), "capturedAt: required (epoch milliseconds)"},
		{"sdkVersion 65", base.with("sdkVersion", strNode(long(65))), "sdkVersion: want 1–64 characters"},
		{"sdkVersion missing", base.without("sdkVersion"), "sdkVersion: required"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := []byte("kept")
			out, sc, err := AppendScene(dst, c.v, []byte("s"))
			var se *SceneError
			if !errors.As(err, &se) || !errors.Is(err, ErrRejected) {
				t.Fatalf("want a *SceneError wrapping ErrRejected, got %v (%s)", err, out)
			}
			if se.Msg != c.want || err.Error() != c.want {
				t.Fatalf("got  %q\nwant %q", se.Msg, c.want)
			}
			if string(out) != "kept" || sc.ID != nil || sc.MeshCount != 0 {
				t.Fatalf("a refused document returned %q, %+v", out, sc)
			}
		})
	}
}

// TestSceneNumberGrammar: scene numbers follow the JSON grammar and are
// finite, decided as for events (ParseNumber), whatever a lenient parser
// hands over.
func TestSceneNumberGrammar(t *testing.T) {
	for _, tok := range []string{"NaN", "-Inf", "Infinity", "inf", "01", "-01", ".5", "1.", "+1", "1e", "1e+", "-", "", "0x10", "1_000", "1e999", "-1e999", "1.8e308"} {
		_, _, err := AppendScene(nil, sceneDoc(t).with("unitScale", numNode(tok)), []byte("s"))
		if err == nil || err.Error() != "unitScale: want a finite number > 0" {
			t.Errorf("unitScale %q: %v", tok, err)
		}
		if _, _, err := AppendScene(nil, sceneDoc(t).with("capturedAt", numNode(tok)), []byte("s")); err == nil ||
			err.Error() != "capturedAt: want an integer 0 to 2^53 (epoch milliseconds)" {
			t.Errorf("capturedAt %q: %v", tok, err)
		}
	}
	// Integers are decided on the float64 value: 2^53+1 rounds to 2^53.
	for tok, want := range map[string]string{
		"1e3": "1000", "1.0": "1", "1.5e1": "15", "1E+3": "1000", "12300e-2": "123", "0.0e5": "0",
		"9.007199254740992e15": "9007199254740992", "9007199254740993": "9007199254740992",
	} {
		doc, sc, err := AppendScene(nil, sceneDoc(t).with("capturedAt", numNode(tok)), []byte("s"))
		if err != nil || !strings.Contains(string(doc), `"capturedAt":`+want+`,`) || fmt.Sprint(sc.CapturedAt) != want {
			t.Errorf("capturedAt %s: %v %s", tok, err, doc)
		}
	}
}

func TestAppendCanonicalFloat(t *testing.T) {
	for f, want := range map[float64]string{
		0: "0", 1: "1", -1: "-1", 0.1: "0.1", 2.5: "2.5", 1000: "1000", 1e20: "100000000000000000000",
		1e21: "1e+21", 1.5e300: "1.5e+300", 1e-6: "0.000001", 1e-7: "1e-7", 1.25e-7: "1.25e-7",
		5e-324: "5e-324", 1.7976931348623157e308: "1.7976931348623157e+308", -1e-7: "-1e-7",
		123456789.125: "123456789.125", 1e100: "1e+100", 0.000123: "0.000123",
	} {
		if got := string(appendCanonicalFloat(nil, f)); got != want {
			t.Errorf("%g: %s, want %s", f, got, want)
		}
	}
	if got := string(appendCanonicalFloat([]byte("x"), math.Copysign(0, -1))); got != "x0" {
		t.Errorf("-0: %s", got)
	}
}

func TestValidSceneID(t *testing.T) {
	for _, s := range []string{"a", strings.Repeat("z", 64), "A-z_0.9:x", "level-2", "a:b.c_d-E"} {
		if !ValidSceneID([]byte(s)) {
			t.Errorf("%q refused", s)
		}
	}
	for _, s := range []string{"", strings.Repeat("z", 65), "a b", "scène", "a/b", "a\"b", "a\x00", "a%20b"} {
		if ValidSceneID([]byte(s)) {
			t.Errorf("%q accepted", s)
		}
	}
}

// TestSceneStringsQuotedAsEvents: a scene's strings are escaped exactly as
// an event's (AppendQuoted), for every ASCII byte alone and between letters,
// for multi-byte text, and invalid text is refused with the same reason.
func TestSceneStringsQuotedAsEvents(t *testing.T) {
	info := testInfo(AllChannels())
	event := baseEvent(t, "scene_change")
	// withStrings sets every free-text string of the scene to s.
	withStrings := func(s string) *node {
		mesh := &node{kind: KindObject, fields: []Field{
			{Key: []byte("name"), Val: strNode(s)},
			{Key: []byte("aabb"), Val: vecNode(6, "0")},
			{Key: []byte("path"), Val: strNode(s)},
		}}
		return sceneDoc(t).with("contentHash", strNode(s)).with("sdkVersion", strNode(s)).
			with("meshes", &node{kind: KindArray, elems: []*node{mesh}})
	}
	var cases []string
	for c := range 0x80 {
		cases = append(cases, string(rune(c)), "a"+string(rune(c))+"b")
	}
	cases = append(cases, "é", "€", "𝄞", "\u0080", "\u009f", "\u00a0", "\u2028", "\u2029", "\ufeff", "\ufffd", "\U0010ffff",
		"a\"\\/\b\f\n\r\t\x00\x1f\x7fz", "\b\f", `\b\f`, "Lamp \"A\" ☀", "é𝄞\u2028\x08")
	invalid := []string{"\xff", "a\x80", "\xc0\x80", "\xe2\x82", "\xed\xa0\x80", "\xed\xbf\xbf", "\xf4\x90\x80\x80", "ok\xc3", "é\xf0\x9d\x84"}

	for _, s := range cases {
		q := string(AppendQuoted(nil, s))
		res := process(t, info, event.with("sdkVersion", strNode(s)))
		if res.out != Accepted {
			t.Fatalf("event with sdkVersion %q: %v", s, res.reason)
		}
		if !bytes.Contains(res.json, []byte(`,"sdkVersion":`+q+`,"sceneId":`)) {
			t.Fatalf("event string %q not quoted as %s: %s", s, q, res.json)
		}
		doc, sc, err := AppendScene(nil, withStrings(s), []byte("s"))
		if err != nil {
			t.Fatalf("scene strings %q: %v", s, err)
		}
		want := `{"version":1,"kind":"aabb","sceneId":"s","bounds":[-10,0,-10,10,5,10],"upAxis":"+y","unitScale":1,` +
			`"meshCount":1,"contentHash":` + q + `,"capturedAt":1700000000000,"sdkVersion":` + q +
			`,"meshes":[{"name":` + q + `,"aabb":[0,0,0,0,0,0],"path":` + q + `}]}`
		if string(doc) != want {
			t.Fatalf("scene strings %q:\n got %s\nwant %s", s, doc, want)
		}
		sum := string(sc.AppendSummary(nil, time.Unix(0, 0)))
		if !strings.Contains(sum, `,"contentHash":`+q+`,`) || !strings.Contains(sum, `,"sdkVersion":`+q+`,`) {
			t.Fatalf("summary of strings %q: %s", s, sum)
		}
		var back struct{ ContentHash string }
		if err := json.Unmarshal(doc, &back); err != nil || back.ContentHash != s {
			t.Fatalf("scene string %q reads back as %q (%v)", s, back.ContentHash, err)
		}
	}
	for _, s := range invalid {
		res := process(t, info, event.with("sdkVersion", strNode(s)))
		if res.out != Rejected || res.reason.Field != "sdkVersion" {
			t.Fatalf("event with sdkVersion %q: %v %v", s, res.out, res.reason)
		}
		_, _, err := AppendScene(nil, withStrings(s), []byte("s"))
		if err == nil || err.Error() != "contentHash: "+res.reason.Msg {
			t.Fatalf("scene strings %q: %v, want contentHash: %s", s, err, res.reason.Msg)
		}
	}
}

// BenchmarkAppendScene encodes a 10,000-mesh representation; bytes are its
// input JSON.
func BenchmarkAppendScene(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"version":1,"kind":"aabb","sceneId":"big","bounds":[-10,0,-10,1260,5,10],"upAxis":"y","unitScale":0.01,` +
		`"meshCount":10000,"contentHash":"sha256:abc","capturedAt":1700000000000,"sdkVersion":"1.4.0","meshes":[`)
	for i := range 10000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"name":"Building_Floor_Segment-%05d","aabb":[%g,-1.5,2.25,%g,4.5,6.875],"triangles":%d,"path":"World/Group/Mesh_%05d"}`,
			i, float64(i)*0.125, float64(i)*0.125+3.75, 1000+i, i)
	}
	sb.WriteString(`]}`)
	body := []byte(sb.String())
	v, err := parseAsEdge(body)
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, len(body))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := AppendScene(dst, v, []byte("big")); err != nil {
			b.Fatal(err)
		}
	}
}
