package edge_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/uptimizr/edge/core"
)

// proxy builds a valid scene representation with n meshes.
func proxy(id string, n int) map[string]any {
	meshes := make([]any, n)
	for i := range meshes {
		meshes[i] = map[string]any{"name": fmt.Sprintf("mesh-%05d", i), "aabb": []any{0, 0, 0, 1, 1, 1}}
	}
	return map[string]any{
		"version": 1, "kind": "aabb", "sceneId": id,
		"bounds": []any{-10, 0, -10, 10, 5, 10}, "upAxis": "y", "unitScale": 1,
		"meshes": meshes, "meshCount": n, "contentHash": "sha256:abc", "capturedAt": 1700000000000,
		"sdkVersion": "1.4.0",
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (h *harness) putScene(key, id string, body []byte, hdr map[string]string) resp {
	h.t.Helper()
	m := map[string]string{"x-api-key": key, "content-type": "application/json"}
	for k, v := range hdr {
		m[k] = v
	}
	return h.do("PUT", "/api/v1/scenes/"+id+"/representation", body, m)
}

func (h *harness) getScene(key, id string) resp {
	h.t.Helper()
	return h.do("GET", "/api/v1/scenes/"+id+"/representation", nil, map[string]string{"x-api-key": key})
}

func (h *harness) listScenes(key, query string) resp {
	h.t.Helper()
	return h.do("GET", "/api/v1/scene-representations"+query, nil, map[string]string{"x-api-key": key})
}

func errorOf(t *testing.T, r resp) string {
	t.Helper()
	s, _ := r.json(t)["error"].(string)
	return s
}

var isoMillis = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

func TestSceneRepresentationRoundTripAndReplace(t *testing.T) {
	h := newHarness(t, nil)
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

	r := h.putScene(h.a.Query, "hall-1", []byte(body), nil)
	if r.status != 201 {
		t.Fatalf("first PUT: %d %s", r.status, r.body)
	}
	if loc := r.header.Get("Location"); loc != "/api/v1/scenes/hall-1/representation" {
		t.Fatalf("Location %q", loc)
	}
	sum := r.json(t)
	if sum["scene_id"] != "hall-1" || sum["version"] != 1.0 || sum["kind"] != "aabb" || sum["meshCount"] != 3.0 ||
		sum["contentHash"] != "h1" || sum["capturedAt"] != 1.7e12 || sum["sdkVersion"] != "1.4.0" ||
		!isoMillis.MatchString(fmt.Sprint(sum["updated_at"])) || len(sum) != 8 {
		t.Fatalf("summary %s", r.body)
	}

	g := h.getScene(h.a.Query, "hall-1")
	if g.status != 200 || string(g.body) != want || !strings.HasPrefix(g.header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET: %d %s\n got %s\nwant %s", g.status, g.header.Get("Content-Type"), g.body, want)
	}
	// The stored form is canonical: sending it again stores the same bytes.
	if r := h.putScene(h.a.Admin, "hall-1", g.body, nil); r.status != 200 {
		t.Fatalf("re-PUT of the canonical form: %d %s", r.status, r.body)
	}
	if g2 := h.getScene(h.a.Admin, "hall-1"); string(g2.body) != want {
		t.Fatalf("canonical form not a fixed point:\n%s\n%s", g2.body, want)
	}

	// Replacing answers 200 and the new document wins.
	p := proxy("hall-1", 2)
	p["contentHash"] = "h2"
	r = h.putScene(h.a.Admin, "hall-1", mustJSON(t, p), nil)
	if r.status != 200 || r.json(t)["contentHash"] != "h2" || r.header.Get("Location") != "" {
		t.Fatalf("replace: %d %s", r.status, r.body)
	}
	g = h.getScene(h.a.Admin, "hall-1")
	if g.status != 200 || g.json(t)["contentHash"] != "h2" || len(g.json(t)["meshes"].([]any)) != 2 {
		t.Fatalf("GET after replace: %d %s", g.status, g.body)
	}
	if l := h.listScenes(h.a.Query, ""); l.status != 200 || strings.Count(string(l.body), `"scene_id"`) != 1 ||
		!strings.Contains(string(l.body), `"contentHash":"h2"`) {
		t.Fatalf("list after replace: %d %s", l.status, l.body)
	}

	// HEAD answers like GET, without a body.
	if r := h.do("HEAD", "/api/v1/scenes/hall-1/representation", nil, map[string]string{"x-api-key": h.a.Query}); r.status != 200 || len(r.body) != 0 {
		t.Fatalf("HEAD: %d %q", r.status, r.body)
	}
	// Unknown scene → 404.
	if r := h.getScene(h.a.Query, "nope"); r.status != 404 || !strings.Contains(errorOf(t, r), "nope") {
		t.Fatalf("unknown scene: %d %s", r.status, r.body)
	}
}

// TestSceneRepresentationStringEscapes: stored scene strings are escaped as
// stored events' are (core.AppendQuoted): \b and \f in their short forms,
// other control characters as \u00XX.
func TestSceneRepresentationStringEscapes(t *testing.T) {
	h := newHarness(t, nil)
	const sent = `a\b\f\u0001\u001f\"\\\n\t\r\u0008\u000C\u007f\/z`
	const text = "a\b\f\x01\x1f\"\\\n\t\r\b\f\x7f/z"
	q := string(core.AppendQuoted(nil, text))
	if q != `"a\b\f\u0001\u001f\"\\\n\t\r\b\f`+"\x7f"+`/z"` {
		t.Fatalf("core.AppendQuoted: %s", q)
	}
	body := strings.Replace(string(mustJSON(t, proxy("esc", 1))), `"mesh-00000"`, `"`+sent+`"`, 1)
	body = strings.Replace(body, `"sha256:abc"`, `"`+sent+`"`, 1)
	r := h.putScene(h.a.Admin, "esc", []byte(body), nil)
	if r.status != 201 || !strings.Contains(string(r.body), `"contentHash":`+q+`,`) {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	g := h.getScene(h.a.Admin, "esc")
	if g.status != 200 || !strings.Contains(string(g.body), `{"name":`+q+`,"aabb":`) || !strings.Contains(string(g.body), `"contentHash":`+q+`,`) {
		t.Fatalf("GET: %d %s\nwant the strings as %s", g.status, g.body, q)
	}
	if l := h.listScenes(h.a.Admin, ""); !strings.Contains(string(l.body), `"contentHash":`+q+`,`) {
		t.Fatalf("list: %s", l.body)
	}
	// The stored form is still a fixed point.
	if r := h.putScene(h.a.Admin, "esc", g.body, nil); r.status != 200 {
		t.Fatalf("re-PUT: %d %s", r.status, r.body)
	}
	if g2 := h.getScene(h.a.Admin, "esc"); string(g2.body) != string(g.body) {
		t.Fatalf("not a fixed point:\n%s\n%s", g2.body, g.body)
	}
}

func TestSceneRepresentationValidation(t *testing.T) {
	h := newHarness(t, nil)
	// A stored scene that no rejected PUT may change.
	base := proxy("s", 1)
	if r := h.putScene(h.a.Admin, "s", mustJSON(t, base), nil); r.status != 201 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	stored := string(h.getScene(h.a.Admin, "s").body)

	mesh := func(kv ...any) map[string]any {
		m := map[string]any{"name": "m", "aabb": []any{0, 0, 0, 1, 1, 1}}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	withMeshes := func(ms ...any) func(map[string]any) {
		return func(p map[string]any) { p["meshes"], p["meshCount"] = append([]any{}, ms...), len(ms) }
	}
	set := func(k string, v any) func(map[string]any) {
		return func(p map[string]any) {
			if v == nil {
				delete(p, k)
			} else {
				p[k] = v
			}
		}
	}
	many := func(n int) func(map[string]any) {
		return func(p map[string]any) {
			q := proxy("s", n)
			p["meshes"], p["meshCount"] = q["meshes"], n
		}
	}
	long := func(n int) string { return strings.Repeat("n", n) }

	cases := []struct {
		name   string
		mutate func(map[string]any)
		want   string // error prefix; "" = accepted
	}{
		{"10000 meshes", many(10000), ""},
		{"10001 meshes", many(10001), "meshes: 10001 meshes, at most 10000"},
		{"no meshes", withMeshes(), ""},
		{"meshes missing", set("meshes", nil), "meshes: required"},
		{"meshes not an array", set("meshes", map[string]any{}), "meshes: want an array"},
		{"mesh not an object", withMeshes(mesh(), "x"), "meshes[1]: want an object"},
		{"name 256", withMeshes(mesh("name", long(256))), ""},
		{"name 257", withMeshes(mesh("name", long(257))), "meshes[0].name: want 1–256 characters"},
		{"name 128 astral = 256 units", withMeshes(mesh("name", strings.Repeat("𝄞", 128))), ""},
		{"name 129 astral = 258 units", withMeshes(mesh("name", strings.Repeat("𝄞", 129))), "meshes[0].name"},
		{"name empty", withMeshes(mesh("name", "")), "meshes[0].name: want 1–256"},
		{"name missing", withMeshes(mesh(), mesh("name", nil)), "meshes[1].name: required"},
		{"name number", withMeshes(mesh("name", 5)), "meshes[0].name: want a string"},
		{"mesh aabb 5", withMeshes(mesh("aabb", []any{0, 0, 0, 1, 1})), "meshes[0].aabb: want [minX,minY,minZ,maxX,maxY,maxZ]"},
		{"mesh aabb 7", withMeshes(mesh("aabb", []any{0, 0, 0, 1, 1, 1, 1})), "meshes[0].aabb: want"},
		{"mesh aabb missing", withMeshes(mesh("aabb", nil)), "meshes[0].aabb: required"},
		{"mesh aabb string", withMeshes(mesh("aabb", []any{0, 0, "0", 1, 1, 1})), "meshes[0].aabb[2]: want a finite number"},
		{"mesh aabb min>max", withMeshes(mesh("aabb", []any{0, 0, 2, 1, 1, 1})), "meshes[0].aabb: minZ 2 > maxZ 1"},
		{"mesh aabb min=max", withMeshes(mesh("aabb", []any{1, 1, 1, 1, 1, 1})), ""},
		{"triangles 0", withMeshes(mesh("triangles", 0)), ""},
		{"triangles -1", withMeshes(mesh("triangles", -1)), "meshes[0].triangles: want an integer"},
		{"triangles 1.5", withMeshes(mesh("triangles", 1.5)), "meshes[0].triangles: want an integer"},
		{"path 1024", withMeshes(mesh("path", long(1024))), ""},
		{"path 1025", withMeshes(mesh("path", long(1025))), "meshes[0].path: at most 1024"},
		{"bounds 5", set("bounds", []any{0, 0, 0, 1, 1}), "bounds: want [minX"},
		{"bounds 7", set("bounds", []any{0, 0, 0, 1, 1, 1, 1}), "bounds: want [minX"},
		{"bounds min>max", set("bounds", []any{0, 2, 0, 1, 1, 1}), "bounds: minY 2 > maxY 1"},
		{"bounds min=max", set("bounds", []any{0, 0, 0, 0, 0, 0}), ""},
		{"bounds missing", set("bounds", nil), "bounds: required"},
		{"bounds object", set("bounds", map[string]any{"min": 0}), "bounds: want"},
		{"unitScale 0", set("unitScale", 0), "unitScale: want a finite number > 0"},
		{"unitScale -1", set("unitScale", -1), "unitScale: want a finite number > 0"},
		{"unitScale tiny", set("unitScale", 1e-300), ""},
		{"unitScale missing", set("unitScale", nil), "unitScale: required"},
		{"version 2", set("version", 2), "version: unsupported version 2"},
		{"version string", set("version", "1"), "version: want an integer"},
		{"version missing", set("version", nil), "version: required"},
		{"kind obb", set("kind", "obb"), `kind: unsupported kind "obb"`},
		{"kind missing", set("kind", nil), "kind: required"},
		{"sceneId mismatch", set("sceneId", "t"), `sceneId: "t" does not match the scene id in the path "s"`},
		{"sceneId missing", set("sceneId", nil), "sceneId: required"},
		{"sceneId bad chars", set("sceneId", "a b"), "sceneId: use 1–64 characters"},
		{"upAxis z", set("upAxis", "z"), ""},
		{"upAxis -z", set("upAxis", "-z"), ""},
		{"upAxis +x", set("upAxis", "+x"), ""},
		{"upAxis Y", set("upAxis", "Y"), "upAxis: want one of"},
		{"upAxis up", set("upAxis", "up"), "upAxis: want one of"},
		{"upAxis missing", set("upAxis", nil), "upAxis: required"},
		{"meshCount above listed", set("meshCount", 50000), ""},
		{"meshCount below listed", set("meshCount", 0), "meshCount: 0 is less than the 1 meshes listed"},
		{"meshCount negative", set("meshCount", -1), "meshCount: want an integer"},
		{"contentHash 128", set("contentHash", long(128)), ""},
		{"contentHash 129", set("contentHash", long(129)), "contentHash: want 1–128"},
		{"contentHash empty", set("contentHash", ""), "contentHash: want 1–128"},
		{"capturedAt ISO", set("capturedAt", "2024-01-01T00:00:00Z"), "capturedAt: want an integer"},
		{"capturedAt negative", set("capturedAt", -1), "capturedAt: want an integer"},
		{"capturedAt 0", set("capturedAt", 0), ""},
		{"capturedAt missing", set("capturedAt", nil), "capturedAt: required"},
		{"sdkVersion 64", set("sdkVersion", long(64)), ""},
		{"sdkVersion 65", set("sdkVersion", long(65)), "sdkVersion: want 1–64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := proxy("s", 1)
			c.mutate(p)
			r := h.putScene(h.a.Admin, "s", mustJSON(t, p), nil)
			if c.want == "" {
				if r.status != 200 {
					t.Fatalf("want 200, got %d %s", r.status, r.body)
				}
				// Put the base document back for the next case.
				if r := h.putScene(h.a.Admin, "s", mustJSON(t, base), nil); r.status != 200 {
					t.Fatalf("restore: %d %s", r.status, r.body)
				}
				return
			}
			if r.status != 400 || !strings.HasPrefix(errorOf(t, r), c.want) {
				t.Fatalf("want 400 %q…, got %d %s", c.want, r.status, r.body)
			}
			if g := h.getScene(h.a.Admin, "s"); string(g.body) != stored {
				t.Fatalf("a rejected PUT changed the stored scene: %s", g.body)
			}
		})
	}

	// Raw bodies: the number grammar, duplicates, shapes.
	valid := string(mustJSON(t, base))
	raw := []struct {
		name, body, want string
	}{
		{"NaN", strings.Replace(valid, `"unitScale":1`, `"unitScale":NaN`, 1), "unitScale: want a finite number"},
		{"Infinity", strings.Replace(valid, `"unitScale":1`, `"unitScale":Infinity`, 1), "malformed JSON"},
		{"-Inf", strings.Replace(valid, `"unitScale":1`, `"unitScale":-Inf`, 1), "unitScale: want a finite number"},
		{"1e999", strings.Replace(valid, `"unitScale":1`, `"unitScale":1e999`, 1), "unitScale: want a finite number"},
		{"leading zero", strings.Replace(valid, `"unitScale":1`, `"unitScale":01`, 1), "unitScale: want a finite number"},
		{"leading dot", strings.Replace(valid, `"unitScale":1`, `"unitScale":.5`, 1), "unitScale: want a finite number"},
		{"trailing dot", strings.Replace(valid, `"unitScale":1`, `"unitScale":1.`, 1), "unitScale: want a finite number"},
		{"plus sign", strings.Replace(valid, `"unitScale":1`, `"unitScale":+1`, 1), "unitScale: want a finite number"},
		{"bare exponent", strings.Replace(valid, `"unitScale":1`, `"unitScale":1e`, 1), "unitScale: want a finite number"},
		{"bounds NaN", strings.Replace(valid, `"bounds":[-10`, `"bounds":[NaN`, 1), "bounds[0]: want a finite number"},
		{"aabb 1e999", strings.Replace(valid, `"aabb":[0,0,0,1`, `"aabb":[0,0,0,1e999`, 1), "meshes[0].aabb[3]: want a finite number"},
		{"version 1e0", strings.Replace(valid, `"version":1`, `"version":1e0`, 1), ""},
		{"duplicate field", strings.Replace(valid, `"version":1`, `"version":1,"version":1`, 1), "version: duplicate field"},
		{"duplicate mesh field", strings.Replace(valid, `"name":"mesh-00000"`, `"name":"a","name":"b"`, 1), "meshes[0].name: duplicate field"},
		{"null meshCount", strings.Replace(valid, `"meshCount":1`, `"meshCount":null`, 1), "meshCount: required"},
		{"invalid UTF-8", strings.Replace(valid, `"mesh-00000"`, "\"m\xff\"", 1), "meshes[0].name: invalid text: not valid UTF-8"},
		{"lone surrogate", strings.Replace(valid, `"mesh-00000"`, `"m\ud800"`, 1), `meshes[0].name: invalid text: unpaired UTF-16 surrogate \ud800`},
		{"lone low surrogate", strings.Replace(valid, `"mesh-00000"`, `"m\udfff\u0041"`, 1), `meshes[0].name: invalid text: unpaired UTF-16 surrogate \udfff`},
		{"invalid escape", strings.Replace(valid, `"mesh-00000"`, `"m\q"`, 1), `malformed JSON body: invalid escape "\\q"`},
		{"malformed", `{"version":1,`, "malformed JSON"},
		{"trailing garbage", valid + "x", "malformed JSON"},
		{"array body", `[` + valid + `]`, "body must be a JSON object"},
		{"empty body", ``, "empty body"},
		// Last: it changes the stored scene.
		{"surrogate pair", strings.Replace(valid, `"mesh-00000"`, `"m\ud83d\ude00"`, 1), ""},
	}
	for _, c := range raw {
		t.Run(c.name, func(t *testing.T) {
			r := h.putScene(h.a.Admin, "s", []byte(c.body), nil)
			if c.want == "" {
				if r.status != 200 {
					t.Fatalf("want 200, got %d %s", r.status, r.body)
				}
				return
			}
			if r.status != 400 || !strings.HasPrefix(errorOf(t, r), c.want) {
				t.Fatalf("want 400 %q…, got %d %s", c.want, r.status, r.body)
			}
			if g := h.getScene(h.a.Admin, "s"); string(g.body) != stored {
				t.Fatalf("a rejected PUT changed the stored scene: %s", g.body)
			}
		})
	}

	if g := h.getScene(h.a.Admin, "s"); !strings.Contains(string(g.body), `"name":"m😀"`) {
		t.Fatalf("a surrogate pair is not stored as its character: %s", g.body)
	}

	// The id in the path must be a valid scene id.
	long65 := strings.Repeat("x", 65)
	p := proxy(long65, 0)
	if r := h.putScene(h.a.Admin, long65, mustJSON(t, p), nil); r.status != 400 || !strings.Contains(errorOf(t, r), "invalid scene id") {
		t.Fatalf("65-character path id: %d %s", r.status, r.body)
	}
	if r := h.getScene(h.a.Admin, long65); r.status != 400 {
		t.Fatalf("GET 65-character path id: %d %s", r.status, r.body)
	}
	id64 := strings.Repeat("x", 64)
	if r := h.putScene(h.a.Admin, id64, mustJSON(t, proxy(id64, 0)), nil); r.status != 201 {
		t.Fatalf("64-character id: %d %s", r.status, r.body)
	}
	if r := h.putScene(h.a.Admin, "a:b.c_d-E", mustJSON(t, proxy("a:b.c_d-E", 0)), nil); r.status != 201 {
		t.Fatalf("id with every punctuation allowed: %d %s", r.status, r.body)
	}
}

func TestSceneRepresentationEncodingsAndLimits(t *testing.T) {
	h := newHarness(t, nil)
	body := mustJSON(t, proxy("enc", 3))
	for i, enc := range []string{"gzip", "deflate", "deflate-raw", "zstd", "br"} {
		r := h.putScene(h.a.Query, "enc", compress(t, enc, body), map[string]string{"content-encoding": strings.TrimSuffix(enc, "-raw")})
		want := 200
		if i == 0 {
			want = 201
		}
		if r.status != want {
			t.Fatalf("%s: %d %s", enc, r.status, r.body)
		}
	}
	if g := h.getScene(h.a.Query, "enc"); g.status != 200 || len(g.json(t)["meshes"].([]any)) != 3 {
		t.Fatalf("GET after compressed PUTs: %d %s", g.status, g.body)
	}

	// A 10,000-mesh proxy with long names and paths is over COLLECTOR_BODY_LIMIT
	// (1 MiB) decompressed; compressed it fits the wire cap and is taken.
	big := proxy("big", 10000)
	for i, m := range big["meshes"].([]any) {
		mm := m.(map[string]any)
		mm["name"] = fmt.Sprintf("%s-%05d", strings.Repeat("Building_Floor_Segment_", 4), i)
		mm["path"] = fmt.Sprintf("World/%s/Mesh_%05d", strings.Repeat("Group/", 12), i)
		mm["triangles"] = 1000 + i
		mm["aabb"] = []any{float64(i) * 0.125, -1.5, 2.25, float64(i)*0.125 + 3.75, 4.5, 6.875}
	}
	bigBody := mustJSON(t, big)
	if len(bigBody) <= h.cfg.BodyLimit {
		t.Fatalf("test proxy is only %d bytes", len(bigBody))
	}
	gz := compress(t, "gzip", bigBody)
	if r := h.putScene(h.a.Admin, "big", gz, map[string]string{"content-encoding": "gzip"}); r.status != 201 {
		t.Fatalf("large gzip proxy (%d bytes, %d on the wire): %d %s", len(bigBody), len(gz), r.status, r.body)
	}
	if g := h.getScene(h.a.Admin, "big"); g.status != 200 || len(g.json(t)["meshes"].([]any)) != 10000 {
		t.Fatalf("GET large proxy: %d %d bytes", g.status, len(g.body))
	}
	if len(gz) >= h.cfg.MaxWireBody() || len(bigBody) <= h.cfg.MaxWireBody() {
		t.Fatalf("want a body over the wire cap only when uncompressed: %d raw, %d gzip", len(bigBody), len(gz))
	}

	// Over the scene limit decompressed → 413, whatever the wire size.
	pad := proxy("enc", 0)
	pad["padding"] = strings.Repeat("a", 8<<20)
	r := h.putScene(h.a.Admin, "enc", compress(t, "zstd", mustJSON(t, pad)), map[string]string{"content-encoding": "zstd"})
	if r.status != 413 || !strings.Contains(errorOf(t, r), "8388608") {
		t.Fatalf("bomb: %d %s", r.status, r.body)
	}
	// Just under the limit (unknown members are dropped) is fine.
	pad["padding"] = strings.Repeat("a", 8<<20-len(mustJSON(t, pad))+len(pad["padding"].(string)))
	if n := len(mustJSON(t, pad)); n != 8<<20 {
		t.Fatalf("padded to %d", n)
	}
	if r := h.putScene(h.a.Admin, "enc", compress(t, "zstd", mustJSON(t, pad)), map[string]string{"content-encoding": "zstd"}); r.status != 200 {
		t.Fatalf("body of exactly the limit: %d %s", r.status, r.body)
	}

	for _, c := range []struct {
		hdr    map[string]string
		body   []byte
		status int
	}{
		{map[string]string{"content-encoding": "gzip"}, []byte("not gzip"), 400},
		{map[string]string{"content-encoding": "gzip"}, compress(t, "gzip", body)[:20], 400},
		{map[string]string{"content-encoding": "compress"}, body, 415},
		{map[string]string{"content-encoding": "gzip, br"}, body, 415},
		{map[string]string{"content-type": "application/x-ndjson"}, body, 415},
		{map[string]string{"content-type": "application/xml"}, body, 415},
		{map[string]string{"content-type": "text/plain;charset=UTF-8"}, body, 200},
		{map[string]string{"content-type": ""}, body, 200},
	} {
		r := h.putScene(h.a.Admin, "enc", c.body, c.hdr)
		if r.status != c.status || r.json(t) == nil {
			t.Fatalf("%v: want %d, got %d %s", c.hdr, c.status, r.status, r.body)
		}
	}
}

func TestSceneRepresentationAuth(t *testing.T) {
	h := newHarness(t, nil)
	body := mustJSON(t, proxy("s", 1))
	// Both query and admin keys may write and read.
	if r := h.putScene(h.a.Query, "s", body, nil); r.status != 201 {
		t.Fatalf("query PUT: %d %s", r.status, r.body)
	}
	if r := h.putScene(h.a.Admin, "s", body, nil); r.status != 200 {
		t.Fatalf("admin PUT: %d %s", r.status, r.body)
	}
	for _, key := range []string{h.a.Query, h.a.Admin} {
		if r := h.getScene(key, "s"); r.status != 200 {
			t.Fatalf("GET: %d %s", r.status, r.body)
		}
		if r := h.listScenes(key, ""); r.status != 200 {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
	}
	// An ingest key (the one embedded in web pages) may do neither.
	for _, r := range []resp{
		h.putScene(h.a.Ingest, "s", body, nil),
		h.getScene(h.a.Ingest, "s"),
		h.listScenes(h.a.Ingest, ""),
	} {
		if r.status != 403 || !strings.Contains(errorOf(t, r), "capability") {
			t.Fatalf("ingest key: %d %s", r.status, r.body)
		}
	}
	// No key, an unknown key, or a key in the query string → 401.
	for _, r := range []resp{
		h.putScene("", "s", body, nil),
		h.putScene("uza_nope", "s", body, nil),
		h.do("GET", "/api/v1/scenes/s/representation?key="+h.a.Query, nil, nil),
		h.do("GET", "/api/v1/scene-representations?key="+h.a.Query, nil, nil),
	} {
		if r.status != 401 {
			t.Fatalf("want 401: %d %s", r.status, r.body)
		}
	}
	// A revoked key stops at once.
	if _, err := h.store.Registry().RevokeKey("a", h.a.Query); err != nil {
		t.Fatal(err)
	}
	if r := h.getScene(h.a.Query, "s"); r.status != 401 {
		t.Fatalf("revoked key: %d %s", r.status, r.body)
	}
	if g := h.getScene(h.a.Admin, "s"); g.status != 200 {
		t.Fatalf("admin key after the query key's revocation: %d %s", g.status, g.body)
	}
}

func TestSceneRepresentationTenantIsolation(t *testing.T) {
	h := newHarness(t, nil)
	pa, pb := proxy("shared", 1), proxy("shared", 2)
	pa["contentHash"], pb["contentHash"] = "from-a", "from-b"
	if r := h.putScene(h.a.Admin, "shared", mustJSON(t, pa), nil); r.status != 201 {
		t.Fatal(r.status, string(r.body))
	}
	// The same id in another project is a different scene: created, not replaced.
	if r := h.putScene(h.b.Admin, "shared", mustJSON(t, pb), nil); r.status != 201 {
		t.Fatal(r.status, string(r.body))
	}
	if r := h.putScene(h.a.Admin, "only-a", mustJSON(t, proxy("only-a", 0)), nil); r.status != 201 {
		t.Fatal(r.status, string(r.body))
	}
	if g := h.getScene(h.a.Query, "shared"); g.json(t)["contentHash"] != "from-a" {
		t.Fatalf("A reads %s", g.body)
	}
	if g := h.getScene(h.b.Query, "shared"); g.json(t)["contentHash"] != "from-b" {
		t.Fatalf("B reads %s", g.body)
	}
	if g := h.getScene(h.b.Query, "only-a"); g.status != 404 {
		t.Fatalf("B reads A's scene: %d %s", g.status, g.body)
	}
	var rows []map[string]any
	if err := json.Unmarshal(h.listScenes(h.b.Query, "").body, &rows); err != nil || len(rows) != 1 ||
		rows[0]["scene_id"] != "shared" || rows[0]["contentHash"] != "from-b" {
		t.Fatalf("B lists %v %v", rows, err)
	}
	if err := json.Unmarshal(h.listScenes(h.a.Query, "").body, &rows); err != nil || len(rows) != 2 ||
		rows[0]["scene_id"] != "only-a" || rows[1]["scene_id"] != "shared" || rows[1]["contentHash"] != "from-a" {
		t.Fatalf("A lists %v %v", rows, err)
	}
	// Replacing in B leaves A's alone.
	pb["contentHash"] = "from-b-2"
	if r := h.putScene(h.b.Admin, "shared", mustJSON(t, pb), nil); r.status != 200 {
		t.Fatal(r.status, string(r.body))
	}
	if g := h.getScene(h.a.Query, "shared"); g.json(t)["contentHash"] != "from-a" {
		t.Fatalf("A reads %s after B's replace", g.body)
	}
}

func TestSceneRepresentationList(t *testing.T) {
	h := newHarness(t, nil)
	if r := h.listScenes(h.a.Query, ""); r.status != 200 || string(r.body) != "[]" {
		t.Fatalf("empty list: %d %s", r.status, r.body)
	}
	const n = 105
	var ids []string
	for i := n - 1; i >= 0; i-- { // written out of order
		id := fmt.Sprintf("scene-%03d", i)
		ids = append([]string{id}, ids...)
		p := proxy(id, i%3)
		p["meshCount"] = 1000 + i
		if r := h.putScene(h.a.Admin, id, mustJSON(t, p), nil); r.status != 201 {
			t.Fatalf("%s: %d %s", id, r.status, r.body)
		}
	}
	list := func(q string) []map[string]any {
		t.Helper()
		r := h.listScenes(h.a.Query, q)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", q, r.status, r.body)
		}
		var rows []map[string]any
		if err := json.Unmarshal(r.body, &rows); err != nil {
			t.Fatal(err)
		}
		return rows
	}
	rows := list("")
	if len(rows) != 100 {
		t.Fatalf("default limit: %d rows", len(rows))
	}
	for i, row := range rows {
		if row["scene_id"] != ids[i] || row["meshCount"] != float64(1000+i) || row["version"] != 1.0 ||
			row["kind"] != "aabb" || row["contentHash"] != "sha256:abc" || row["capturedAt"] != 1.7e12 ||
			row["sdkVersion"] != "1.4.0" || !isoMillis.MatchString(fmt.Sprint(row["updated_at"])) || len(row) != 8 {
			t.Fatalf("row %d: %v", i, row)
		}
	}
	if rows := list("?limit=1000"); len(rows) != n {
		t.Fatalf("limit=1000: %d rows", len(rows))
	}
	if rows := list("?limit=1"); len(rows) != 1 || rows[0]["scene_id"] != "scene-000" {
		t.Fatalf("limit=1: %v", rows)
	}
	if rows := list("?limit=3&after=scene-050"); len(rows) != 3 || rows[0]["scene_id"] != "scene-051" || rows[2]["scene_id"] != "scene-053" {
		t.Fatalf("after: %v", rows)
	}
	if rows := list("?after=scene-104"); len(rows) != 0 {
		t.Fatalf("after the last: %v", rows)
	}
	for _, q := range []string{"?limit=0", "?limit=1001", "?limit=-1", "?limit=abc", "?limit=", "?limit=1.5", "?after=a%20b", "?after="} {
		if r := h.listScenes(h.a.Query, q); r.status != 400 || errorOf(t, r) == "" {
			t.Fatalf("%s: %d %s", q, r.status, r.body)
		}
	}
}

func TestSceneRepresentationMethodsAndUnavailable(t *testing.T) {
	h := newHarness(t, nil)
	for _, c := range []struct{ method, path, allow string }{
		{"POST", "/api/v1/scenes/s/representation", "GET, HEAD, PUT, OPTIONS"},
		{"DELETE", "/api/v1/scenes/s/representation", "GET, HEAD, PUT, OPTIONS"},
		{"PATCH", "/api/v1/scenes/s/representation", "GET, HEAD, PUT, OPTIONS"},
		{"POST", "/api/v1/scene-representations", "GET, HEAD, OPTIONS"},
		{"PUT", "/api/v1/scene-representations", "GET, HEAD, OPTIONS"},
	} {
		r := h.do(c.method, c.path, []byte("{}"), map[string]string{"x-api-key": h.a.Admin})
		if r.status != 405 || r.header.Get("Allow") != c.allow || errorOf(t, r) == "" {
			t.Fatalf("%s %s: %d allow=%q %s", c.method, c.path, r.status, r.header.Get("Allow"), r.body)
		}
	}
	for _, p := range []string{"/api/v1/scenes//representation", "/api/v1/scenes/s/representations", "/api/v1/scenes/s"} {
		if r := h.do("GET", p, nil, map[string]string{"x-api-key": h.a.Admin}); r.status != 404 {
			t.Fatalf("%s: %d %s", p, r.status, r.body)
		}
	}
	if r := h.putScene(h.a.Admin, "s", mustJSON(t, proxy("s", 1)), nil); r.status != 201 {
		t.Fatal(r.status, string(r.body))
	}
	if met := h.metrics(); !strings.Contains(met, `uptimizr_http_requests_total{route="scenes",status="201"}`) {
		t.Errorf("scene requests not counted:\n%s", met)
	}
	// A closed store answers 503 with Retry-After, for writes and reads.
	h.store.Close()
	for _, r := range []resp{
		h.putScene(h.a.Admin, "s", mustJSON(t, proxy("s", 1)), nil),
		h.getScene(h.a.Admin, "s"),
		h.listScenes(h.a.Admin, ""),
	} {
		if r.status != 503 || r.header.Get("Retry-After") == "" || errorOf(t, r) == "" {
			t.Fatalf("closed store: %d %v %s", r.status, r.header, r.body)
		}
	}
}

func TestSceneRepresentationErrorShapeAndRaisedBodyLimit(t *testing.T) {
	h := newHarness(t, func(c *core.Config) { c.BodyLimit = 16 << 20 })
	r := h.putScene(h.a.Admin, "s", []byte(`{"version":1}`), nil)
	m := r.json(t)
	if r.status != 400 || len(m) != 1 || m["error"] != "kind: required" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	// With COLLECTOR_BODY_LIMIT above 8 MiB, scene bodies get that limit.
	pad := proxy("s", 0)
	pad["padding"] = strings.Repeat("a", 12<<20)
	if r := h.putScene(h.a.Admin, "s", compress(t, "gzip", mustJSON(t, pad)), map[string]string{"content-encoding": "gzip"}); r.status != 201 {
		t.Fatalf("12 MiB body under a 16 MiB limit: %d %s", r.status, r.body)
	}
}
