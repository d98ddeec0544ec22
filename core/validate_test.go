package core

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// The catalog below restates the event catalog (docs/API.md, "Validation") independently of the schema tables in
// schema.go, so that the tests check the implementation against the contract
// rather than against itself.

type rule struct {
	kind     string // str, num, enum, bool, vec, obj, bag
	min, max int    // str
	num      string // num and vec elements: any, ge0, gt0, unit, intge0, intgt0
	n        int    // vec length
	enum     []string
}

type fieldDef struct {
	path     string // dotted for members of nested objects
	r        rule
	required bool
}

func rStr(min, max int) rule           { return rule{kind: "str", min: min, max: max} }
func rNum(c string) rule               { return rule{kind: "num", num: c} }
func rEnum(v ...string) rule           { return rule{kind: "enum", enum: v} }
func rVec(n int, c string) rule        { return rule{kind: "vec", n: n, num: c} }
func opt(path string, r rule) fieldDef { return fieldDef{path: path, r: r} }
func must(path string, r rule) fieldDef {
	return fieldDef{path: path, r: r, required: true}
}

var (
	rBool = rule{kind: "bool"}
	rObj  = rule{kind: "obj"}
	rBag  = rule{kind: "bag"}
)

func srcDefs() []fieldDef {
	return []fieldDef{
		opt("source", rEnum("mouse", "touch", "stylus", "pen", "keyboard", "gamepad", "xr-controller", "hand", "gaze", "transient", "other")),
		opt("handedness", rEnum("left", "right", "none")),
		opt("sourceId", rStr(1, 64)),
		opt("ray", rObj),
		must("ray.origin", rVec(3, "any")),
		must("ray.direction", rVec(3, "any")),
	}
}

func pointerDefs(button bool) []fieldDef {
	d := []fieldDef{opt("screen", rVec(2, "unit")), opt("hitPoint", rVec(3, "any")), opt("hitMesh", rStr(0, 256))}
	if button {
		d = append(d, opt("button", rNum("intge0")))
	}
	return append(d, srcDefs()...)
}

func cat(parts ...[]fieldDef) []fieldDef {
	var out []fieldDef
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

var catalog = []struct {
	typ    string
	fields []fieldDef
}{
	{"session_start", []fieldDef{
		opt("device", rObj),
		opt("device.engine", rEnum("webgl2", "webgpu", "webgl", "unknown")),
		opt("device.vendor", rStr(0, 256)),
		opt("device.renderer", rStr(0, 512)),
		opt("device.maxTextureSize", rNum("any")),
		opt("device.hardwareConcurrency", rNum("any")),
		opt("device.deviceMemoryGb", rNum("any")),
		opt("device.isMobile", rBool),
		opt("graphics", rObj),
		opt("graphics.api", rStr(0, 256)),
		opt("graphics.backend", rStr(0, 256)),
		opt("graphics.apiVersion", rStr(0, 256)),
		opt("graphics.shadingLanguage", rStr(0, 256)),
		opt("scene", rObj),
		opt("scene.description", rStr(0, 256)),
		opt("scene.cameraType", rEnum("arc-rotate", "free", "follow", "static", "other")),
		opt("scene.cameraName", rStr(0, 128)),
		opt("scene.meshCount", rNum("intge0")),
		opt("user", rObj),
		opt("user.id", rStr(0, 128)),
		opt("user.traits", rBag),
		opt("connector", rObj),
		must("connector.name", rStr(1, 64)),
		opt("connector.version", rStr(0, 256)),
		opt("connector.coordinateSystem", rObj),
		opt("connector.coordinateSystem.handedness", rStr(0, 64)),
		opt("connector.coordinateSystem.upAxis", rStr(0, 64)),
		opt("connector.coordinateSystem.unitScale", rNum("gt0")),
	}},
	{"session_end", []fieldDef{opt("durationMs", rNum("ge0")), opt("reason", rEnum("unload", "hidden", "manual", "timeout"))}},
	{"frame_perf", []fieldDef{
		must("fps", rNum("ge0")), opt("frameTimeMs", rNum("ge0")), opt("frameTimeP95Ms", rNum("ge0")),
		opt("frameTimeP99Ms", rNum("ge0")), opt("longFrames", rNum("intge0")), opt("drawCalls", rNum("ge0")),
		opt("dpr", rNum("gt0")), opt("renderScale", rNum("gt0")),
	}},
	{"camera_sample", []fieldDef{
		must("position", rVec(3, "any")), must("direction", rVec(3, "any")), opt("target", rVec(3, "any")),
		opt("fov", rNum("gt0")), opt("aspect", rNum("gt0")), opt("near", rNum("gt0")),
		opt("hitPoint", rVec(3, "any")), opt("hitMesh", rStr(0, 256)),
	}},
	{"node_transform", []fieldDef{
		must("nodeId", rStr(1, 128)), opt("boneId", rStr(1, 128)), opt("childPath", rStr(1, 512)),
		must("position", rVec(3, "any")), must("rotation", rVec(4, "any")), opt("scale", rVec(3, "any")),
	}},
	{"pointer_move", pointerDefs(false)},
	{"pointer_click", pointerDefs(true)},
	{"pointer_down", pointerDefs(true)},
	{"pointer_up", pointerDefs(true)},
	{"camera_gesture", cat([]fieldDef{
		must("kind", rEnum("orbit", "pan", "dolly", "zoom", "roll", "fly", "navigate")),
		must("durationMs", rNum("ge0")), opt("orbitDeg", rNum("ge0")), opt("rollDeg", rNum("ge0")),
		opt("zoomRatio", rNum("gt0")), opt("panDist", rNum("ge0")),
	}, srcDefs())},
	{"mesh_interaction", cat([]fieldDef{
		must("mesh", rStr(1, 256)),
		must("kind", rEnum("hover", "pick", "click", "drag", "select", "squeeze", "grab", "release", "teleport")),
		opt("point", rVec(3, "any")),
	}, srcDefs())},
	{"mesh_visibility", []fieldDef{
		must("mesh", rStr(1, 256)), must("visibleMs", rNum("ge0")), opt("centeredMs", rNum("ge0")),
		opt("maxScreenFraction", rNum("unit")), opt("bounds", rVec(6, "any")),
	}},
	{"hover_dwell", cat([]fieldDef{must("mesh", rStr(1, 256)), must("dwellMs", rNum("ge0"))}, srcDefs())},
	{"compile_stall", []fieldDef{must("durationMs", rNum("ge0")), opt("phase", rEnum("shader", "pipeline", "material", "other"))}},
	{"resource_sample", []fieldDef{
		opt("textureBytes", rNum("ge0")), opt("geometryBytes", rNum("ge0")), opt("triangles", rNum("intge0")),
		opt("vertices", rNum("intge0")), opt("jsHeapBytes", rNum("ge0")),
	}},
	{"capability_change", []fieldDef{
		must("kind", rEnum("graphics-backend", "quality", "device-recovery", "feature", "other")),
		opt("from", rStr(0, 64)), opt("to", rStr(0, 64)), opt("reason", rStr(0, 120)),
	}},
	{"asset_load", []fieldDef{
		must("name", rStr(0, 1024)), must("loadMs", rNum("ge0")), opt("bytes", rNum("ge0")),
		opt("ttffMs", rNum("ge0")), opt("ttiMs", rNum("ge0")),
	}},
	{"scene_change", nil},
	{"viewport_resize", []fieldDef{must("width", rNum("gt0")), must("height", rNum("gt0")), opt("dpr", rNum("gt0"))}},
	{"visibility_change", []fieldDef{must("state", rEnum("visible", "hidden"))}},
	{"focus_change", []fieldDef{must("focused", rBool)}},
	{"context_lost", []fieldDef{opt("reason", rStr(0, 512))}},
	{"context_restored", nil},
	{"graphics_diagnostic", []fieldDef{
		must("severity", rEnum("info", "warning", "error", "fatal")),
		must("category", rEnum("context-loss", "validation", "out-of-memory", "shader-compile", "device-lost", "fallback")),
		opt("backend", rStr(0, 256)), opt("message", rStr(0, 1024)), opt("code", rStr(0, 64)), opt("count", rNum("intgt0")),
	}},
	{"runtime_error", []fieldDef{
		must("kind", rEnum("error", "unhandledrejection")), must("message", rStr(0, 1024)), opt("source", rStr(0, 1024)),
		opt("lineno", rNum("intge0")), opt("colno", rNum("intge0")), opt("stack", rStr(0, 4096)),
	}},
	{"input_action", cat([]fieldDef{
		must("action", rStr(1, 64)), opt("code", rStr(1, 64)), opt("button", rNum("intge0")), opt("pressed", rBool),
	}, srcDefs())},
	{"custom", []fieldDef{must("name", rStr(1, 128)), opt("props", rBag)}},
}

// envelopeDefs are the envelope fields with bounds (type and ts have their
// own tests).
var envelopeDefs = []fieldDef{
	must("projectId", rStr(1, 128)),
	must("sessionId", rStr(1, 128)),
	must("sdkVersion", rStr(1, 64)),
	opt("url", rStr(0, 2048)),
	opt("pageMeta", rObj),
	opt("pageMeta.title", rStr(0, 512)),
	opt("pageMeta.referrer", rStr(0, 2048)),
	opt("pageMeta.viewport", rVec(2, "ge0")),
	opt("pageMeta.devicePixelRatio", rNum("gt0")),
	opt("pageMeta.language", rStr(0, 35)),
}

const testVisitor = "00112233445566778899aabbccddeeff"

func testInfo(ch Channels) *RequestInfo {
	info := &RequestInfo{ProjectID: "proj-Ω\"1", Browser: "Firefox", OS: "Linux", Channels: ch}
	copy(info.VisitorID[:], testVisitor)
	return info
}

// baseEvent is a valid envelope of type typ.
func baseEvent(t testing.TB, typ string) *node {
	return mustParse(t, `{"type":"`+typ+`","projectId":"client-project","sessionId":"sess-1","ts":1795892750979,"sdkVersion":"0.5.0"}`)
}

func numSample(c string) string {
	switch c {
	case "any":
		return "-2.5"
	case "ge0", "intge0":
		return "0"
	case "gt0":
		return "1.5"
	case "unit":
		return "0.25"
	case "intgt0":
		return "2"
	}
	panic("unknown constraint " + c)
}

func vecNode(n int, tok string) *node {
	v := &node{kind: KindArray}
	for i := 0; i < n; i++ {
		v.elems = append(v.elems, numNode(tok))
	}
	return v
}

// sample returns a valid value for a rule (objects start empty: their members
// are added by the caller).
func sample(r rule) *node {
	switch r.kind {
	case "str":
		return strNode(strings.Repeat("v", max(r.min, 1)))
	case "num":
		return numNode(numSample(r.num))
	case "enum":
		return strNode(r.enum[len(r.enum)-1])
	case "bool":
		return &node{kind: KindTrue}
	case "vec":
		return vecNode(r.n, numSample(r.num))
	case "obj":
		return &node{kind: KindObject}
	case "bag":
		v, err := parseValue([]byte(`{"k":"v","n":1.5,"b":false,"z":null}`))
		if err != nil {
			panic(err)
		}
		return v
	}
	panic("unknown rule " + r.kind)
}

func parentPath(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// minimalEvent has the envelope and the type's top-level required fields.
func minimalEvent(t testing.TB, typ string, defs []fieldDef) *node {
	ev := baseEvent(t, typ)
	for _, d := range defs {
		if d.required && parentPath(d.path) == "" {
			ev = ev.with(d.path, sample(d.r))
		}
	}
	return ev
}

// fullEvent has every field of the type, and a pageMeta and url.
func fullEvent(t testing.TB, typ string, defs []fieldDef) *node {
	ev := baseEvent(t, typ)
	for _, d := range append(append([]fieldDef(nil), envelopeDefs...), defs...) {
		if d.path == "projectId" || d.path == "sessionId" || d.path == "sdkVersion" {
			continue
		}
		ev = ev.with(d.path, sample(d.r))
	}
	return ev.with("sceneId", strNode("scene.1"))
}

type result struct {
	out     Outcome
	typ     EventType
	reason  Reason
	json    []byte
	session []byte
	tree    *node
}

// process runs one event through a fresh Processor and batch, and checks that
// a rejected or filtered event leaves nothing behind.
func process(t testing.TB, info *RequestInfo, v Value) result {
	t.Helper()
	var p Processor
	b := &Batch{Buf: []byte("previous")}
	p.Begin(b, info)
	out, typ, reason := p.Add(v)
	res := result{out: out, typ: typ, reason: reason}
	if out != Accepted {
		if string(b.Buf) != "previous" || len(b.Events) != 0 {
			t.Fatalf("%v event left %q, %d events in the batch", out, b.Buf, len(b.Events))
		}
		if out == Rejected && reason.Msg == "" {
			t.Fatalf("rejected without a reason")
		}
		return res
	}
	if len(b.Events) != 1 {
		t.Fatalf("accepted, but %d events in batch", len(b.Events))
	}
	if reason != (Reason{}) {
		t.Fatalf("accepted with reason %v", reason)
	}
	res.json = b.JSON(0)
	res.session = b.Session(0)
	if !json.Valid(res.json) {
		t.Fatalf("invalid JSON output: %s", res.json)
	}
	var err error
	if res.tree, err = parseValue(res.json); err != nil {
		t.Fatalf("output does not parse: %v: %s", err, res.json)
	}
	if b.Events[0].Type != typ {
		t.Fatalf("Event.Type = %v, Add returned %v", b.Events[0].Type, typ)
	}
	checkEnvelope(t, info, res.tree, b.Events[0].TS, res.session)
	return res
}

// checkEnvelope verifies the server-authoritative part of an output event.
func checkEnvelope(t testing.TB, info *RequestInfo, out *node, ts int64, session []byte) {
	t.Helper()
	fs := out.Fields(nil)
	want := []string{"type", "projectId", "sessionId", "visitorId", "ts", "sdkVersion", "sceneId"}
	if len(fs) < len(want) {
		t.Fatalf("output has %d members", len(fs))
	}
	for i, k := range want {
		if string(fs[i].Key) != k {
			t.Fatalf("member %d is %q, want %q", i, fs[i].Key, k)
		}
	}
	if got := string(fs[1].Val.Str()); got != info.ProjectID {
		t.Errorf("projectId = %q, want %q", got, info.ProjectID)
	}
	if got := string(fs[3].Val.Str()); got != string(info.VisitorID[:]) {
		t.Errorf("visitorId = %q", got)
	}
	if !bytes.Equal(fs[2].Val.Str(), session) {
		t.Errorf("session %q, sessionId member %q", session, fs[2].Val.Str())
	}
	if got := string(fs[4].Val.AppendNumber(nil)); got != strconv.FormatInt(ts, 10) {
		t.Errorf("ts member %q, Event.TS %d", got, ts)
	}
	counts := map[string]int{}
	for _, f := range fs {
		counts[string(f.Key)]++
		if counts[string(f.Key)] > 1 {
			t.Errorf("member %q written twice", f.Key)
		}
	}
}

// lookup returns the member at a dotted path of an object tree, or nil.
func lookup(n *node, path string) *node {
	for _, part := range strings.Split(path, ".") {
		if n == nil || n.kind != KindObject {
			return nil
		}
		var next *node
		for _, f := range n.fields {
			if string(f.Key) == part {
				next = f.Val.(*node)
			}
		}
		n = next
	}
	return n
}

func keys(n *node) []string {
	var out []string
	for _, f := range n.fields {
		out = append(out, string(f.Key))
	}
	return out
}

func defsOf(typ string) []fieldDef {
	for _, c := range catalog {
		if c.typ == typ {
			return c.fields
		}
	}
	panic("no catalog entry for " + typ)
}

func typeByNameT(t testing.TB, name string) EventType {
	t.Helper()
	ty, ok := ParseEventType([]byte(name))
	if !ok {
		t.Fatalf("unknown type %q", name)
	}
	return ty
}

func TestCatalogCoversEveryType(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range catalog {
		seen[c.typ] = true
	}
	for ty := TypeSessionStart; ty < NumEventTypes; ty++ {
		if !seen[ty.String()] {
			t.Errorf("type %s has no test case", ty)
		}
	}
	if len(catalog) != 27 || int(NumEventTypes)-1 != 27 {
		t.Errorf("catalog has %d types, core %d", len(catalog), NumEventTypes-1)
	}
}

func TestMinimalAndFullEventsAccepted(t *testing.T) {
	info := testInfo(AllChannels())
	for _, c := range catalog {
		t.Run(c.typ, func(t *testing.T) {
			ty := typeByNameT(t, c.typ)
			min := process(t, info, minimalEvent(t, c.typ, c.fields))
			if min.out != Accepted || min.typ != ty {
				t.Fatalf("minimal: %v %v %v", min.out, min.typ, min.reason)
			}
			if got := string(lookup(min.tree, "sceneId").Str()); got != "default" {
				t.Errorf("sceneId = %q, want default", got)
			}
			full := process(t, info, fullEvent(t, c.typ, c.fields))
			if full.out != Accepted || full.typ != ty {
				t.Fatalf("full: %v %v %v", full.out, full.typ, full.reason)
			}
			// Every field is kept, with its value, in catalog order.
			want := []string{"type", "projectId", "sessionId", "visitorId", "ts", "sdkVersion", "sceneId", "url", "pageMeta"}
			nested := map[string][]string{"pageMeta": {"title", "referrer", "viewport", "devicePixelRatio", "language"}}
			for _, d := range c.fields {
				if p := parentPath(d.path); p == "" {
					want = append(want, d.path)
				} else {
					nested[p] = append(nested[p], d.path[len(p)+1:])
				}
				if got := lookup(full.tree, d.path); got == nil {
					t.Errorf("%s missing from output %s", d.path, full.json)
				} else if d.r.kind != "obj" && !sameValue(got, sample(d.r)) {
					t.Errorf("%s changed: %s", d.path, full.json)
				}
			}
			if c.typ == "session_start" {
				nested["device"] = append(nested["device"], "browser", "os")
			}
			if got := strings.Join(keys(full.tree), ","); got != strings.Join(want, ",") {
				t.Errorf("member order\n got %s\nwant %s", got, strings.Join(want, ","))
			}
			for p, ks := range nested {
				if got := strings.Join(keys(lookup(full.tree, p)), ","); got != strings.Join(ks, ",") {
					t.Errorf("%s member order\n got %s\nwant %s", p, got, strings.Join(ks, ","))
				}
			}
		})
	}
}

// sameValue compares two trees exactly (tokens, strings, member order).
func sameValue(a, b *node) bool {
	if a.kind != b.kind || !bytes.Equal(a.raw, b.raw) || len(a.elems) != len(b.elems) || len(a.fields) != len(b.fields) {
		return false
	}
	for i := range a.elems {
		if !sameValue(a.elems[i], b.elems[i]) {
			return false
		}
	}
	for i := range a.fields {
		if !bytes.Equal(a.fields[i].Key, b.fields[i].Key) || !sameValue(a.fields[i].Val.(*node), b.fields[i].Val.(*node)) {
			return false
		}
	}
	return true
}

func TestRequiredFieldsMissing(t *testing.T) {
	info := testInfo(AllChannels())
	for _, c := range catalog {
		full := fullEvent(t, c.typ, c.fields)
		for _, d := range append(append([]fieldDef(nil), envelopeDefs...), c.fields...) {
			if !d.required {
				continue
			}
			t.Run(c.typ+"/"+d.path, func(t *testing.T) {
				for name, ev := range map[string]*node{
					"absent": full.without(d.path),
					"null":   full.with(d.path, &node{kind: KindNull}),
				} {
					res := process(t, info, ev)
					if res.out != Rejected || res.reason != (Reason{d.path, "required"}) {
						t.Errorf("%s: %v %v, want rejected %s: required", name, res.out, res.reason, d.path)
					}
					if res.typ != typeByNameT(t, c.typ) {
						t.Errorf("type %v", res.typ)
					}
				}
			})
		}
	}
}

type boundCase struct {
	name string
	val  *node
	ok   bool
	msg  string // expected message when rejected; "" checks only the field
}

func repeatUnits(n int) string {
	return strings.Repeat("a", n)
}

// boundCases returns values just inside and just outside the rule.
func boundCases(r rule) []boundCase {
	var cs []boundCase
	add := func(name string, v *node, ok bool, msg string) {
		cs = append(cs, boundCase{name, v, ok, msg})
	}
	numCases := func(wrap func(tok string) *node, c string) {
		oks := map[string][]string{
			"any":    {"0", "-1e308", "1.7976931348623157e308", "4.9e-324", "1E+2", "-0.0"},
			"ge0":    {"0", "-0", "1e-9", "1e308"},
			"gt0":    {"1e-9", "5e-324", "1e308"},
			"unit":   {"0", "1", "1.0", "0.999999", "1e-300"},
			"intge0": {"0", "7", "1e3", "2.0", "-0"},
			"intgt0": {"1", "1e2", "3.00"},
		}[c]
		bads := map[string][]string{
			"any":    {},
			"ge0":    {"-1e-9", "-1"},
			"gt0":    {"0", "-0", "0.0", "1e-400", "-1"},
			"unit":   {"1.0000001", "-1e-9", "2"},
			"intge0": {"1.5", "-1", "0.1"},
			"intgt0": {"0", "1.5", "-1"},
		}[c]
		for _, tok := range oks {
			add("num "+tok, wrap(tok), true, "")
		}
		for _, tok := range bads {
			add("num "+tok, wrap(tok), false, "")
		}
		for _, tok := range []string{"NaN", "Infinity", "-Infinity", "inf", "01", "-01", ".5", "1.", "+1", "1e", "1e+", "0x10", "1_0", "-", ""} {
			add("token "+tok, wrap(tok), false, "invalid number")
		}
		for _, tok := range []string{"1e999", "-1e999", "1.8e308"} {
			add("token "+tok, wrap(tok), false, "must be finite")
		}
	}
	switch r.kind {
	case "str":
		add("max", strNode(repeatUnits(r.max)), true, "")
		add("max+1", strNode(repeatUnits(r.max+1)), false, "")
		add("max with non-BMP", strNode(repeatUnits(r.max-2)+"😀"), true, "")
		add("max+1 with non-BMP", strNode(repeatUnits(r.max-1)+"😀"), false, "")
		add("max two-byte", strNode(strings.Repeat("é", r.max)), true, "")
		add("max three-byte", strNode(strings.Repeat("€", r.max)), true, "")
		add("empty", strNode(""), r.min == 0, "")
		add("number", numNode("5"), false, "")
		add("invalid UTF-8", strNode("ab\xffcd"), false, "invalid text: not valid UTF-8")
		add("surrogate in UTF-8", strNode("a\xed\xa0\x80"), false, `invalid text: unpaired UTF-16 surrogate \ud800`)
		add("low surrogate in UTF-8", strNode("\xed\xbf\xbfz"), false, `invalid text: unpaired UTF-16 surrogate \udfff`)
	case "num":
		numCases(numNode, r.num)
		add("string", strNode("1"), false, "")
		add("bool", &node{kind: KindTrue}, false, "")
		add("array", vecNode(1, "1"), false, "")
	case "enum":
		for _, e := range r.enum {
			add("enum "+e, strNode(e), true, "")
		}
		add("wrong", strNode("nope"), false, "must be one of: "+strings.Join(r.enum, ", "))
		add("upper", strNode(strings.ToUpper(r.enum[0])), false, "")
		add("padded", strNode(r.enum[0]+" "), false, "")
		add("empty", strNode(""), false, "")
		add("number", numNode("1"), false, "")
	case "bool":
		add("true", &node{kind: KindTrue}, true, "")
		add("false", &node{kind: KindFalse}, true, "")
		add("string", strNode("true"), false, "must be a boolean")
		add("number", numNode("1"), false, "must be a boolean")
	case "vec":
		add("exact", vecNode(r.n, numSample(r.num)), true, "")
		add("short", vecNode(r.n-1, numSample(r.num)), false, "")
		add("long", vecNode(r.n+1, numSample(r.num)), false, "")
		add("empty", vecNode(0, "0"), false, "")
		add("object", &node{kind: KindObject}, false, "")
		str := vecNode(r.n, numSample(r.num))
		str.elems[r.n-1] = strNode("1")
		add("string element", str, false, "")
		nested := vecNode(r.n, numSample(r.num))
		nested.elems[0] = vecNode(1, "1")
		add("nested element", nested, false, "")
		numCases(func(tok string) *node {
			v := vecNode(r.n, numSample(r.num))
			v.elems[r.n-1] = numNode(tok)
			return v
		}, r.num)
	}
	return cs
}

func TestBounds(t *testing.T) {
	info := testInfo(AllChannels())
	for _, c := range catalog {
		full := fullEvent(t, c.typ, c.fields)
		for _, d := range append(append([]fieldDef(nil), envelopeDefs...), c.fields...) {
			for _, bc := range boundCases(d.r) {
				ev := full.with(d.path, bc.val)
				res := process(t, info, ev)
				name := c.typ + " " + d.path + " " + bc.name
				if bc.ok {
					if res.out != Accepted {
						t.Errorf("%s: %v %v, want accepted", name, res.out, res.reason)
						continue
					}
					if d.path == "projectId" {
						continue // replaced by the server
					}
					if got := lookup(res.tree, d.path); got == nil || !sameValue(got, bc.val) {
						t.Errorf("%s: value not kept as given: %s", name, res.json)
					}
					continue
				}
				if res.out != Rejected || res.reason.Field != d.path || (bc.msg != "" && res.reason.Msg != bc.msg) {
					t.Errorf("%s: %v %q, want rejected on %s %q", name, res.out, res.reason, d.path, bc.msg)
				}
			}
		}
	}
}

func TestRejectionMessages(t *testing.T) {
	info := testInfo(AllChannels())
	cases := []struct {
		ev     string
		reason Reason
	}{
		{`{"type":"session_start","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"v","device":{"engine":"metal"}}`,
			Reason{"device.engine", "must be one of: webgl2, webgpu, webgl, unknown"}},
		{`{"type":"camera_gesture","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"v","kind":"spin","durationMs":1}`,
			Reason{"kind", "must be one of: orbit, pan, dolly, zoom, roll, fly, navigate"}},
		{`{"type":"frame_perf","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"v","fps":-1}`,
			Reason{"fps", "must be a number ≥ 0"}},
		{`{"type":"frame_perf","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"v","fps":1,"dpr":0}`,
			Reason{"dpr", "must be a number > 0"}},
		{`{"type":"frame_perf","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"v","fps":1,"longFrames":1.5}`,
			Reason{"longFrames", "must be an integer ≥ 0"}},
		{`{"type":"graphics_diagnostic","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"v","severity":"info","category":"fallback","count":0}`,
			Reason{"count", "must be an integer > 0"}},
		{`{"type":"mesh_visibility","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"v","mesh":"m","visibleMs":1,"maxScreenFraction":1.5}`,
			Reason{"maxScreenFraction", "must be a number in [0, 1]"}},
		{`{"type":"scene_change","projectId":"","sessionId":"s","ts":1,"sdkVersion":"v"}`,
			Reason{"projectId", "must be a string of 1–128 characters"}},
		{`{"type":"scene_change","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"v","url":5}`,
			Reason{"url", "must be a string of at most 2048 characters"}},
		{`{"type":"scene_change","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"v","pageMeta":{"viewport":[1]}}`,
			Reason{"pageMeta.viewport", "must be an array of 2 numbers ≥ 0"}},
		{`{"type":"pointer_move","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"v","screen":[0.5,2]}`,
			Reason{"screen", "must be an array of 2 numbers in [0, 1]"}},
		{`{"type":"pointer_move","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"v","ray":{"origin":[0,0,0]}}`,
			Reason{"ray.direction", "required"}},
		{`{"type":"pointer_move","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"v","ray":[0,0,0]}`,
			Reason{"ray", "must be an object"}},
		{`{"type":"focus_change","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"v","focused":"yes"}`,
			Reason{"focused", "must be a boolean"}},
		{`{"type":"scene_change","projectId":"p","sessionId":"s","ts":-1,"sdkVersion":"v"}`,
			Reason{"ts", "must be an integer ≥ 0 and ≤ 2^53"}},
		{`{"type":"scene_change","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"v","sceneId":"a b"}`,
			Reason{"sceneId", "must match ^[A-Za-z0-9._:-]{1,64}$"}},
		{`{"type":"warp","projectId":"p"}`, Reason{"type", "unknown event type"}},
		{`{"projectId":"p"}`, Reason{"type", "required"}},
		{`{"type":7}`, Reason{"type", "must be a string"}},
		{`[1]`, Reason{"", "event must be an object"}},
		{`"session_start"`, Reason{"", "event must be an object"}},
	}
	for _, c := range cases {
		res := process(t, info, mustParse(t, c.ev))
		if res.out != Rejected || res.reason != c.reason {
			t.Errorf("%s:\n got %v %q\nwant %q", c.ev, res.out, res.reason, c.reason)
		}
		if got := res.reason.String(); c.reason.Field != "" && got != c.reason.Field+": "+c.reason.Msg {
			t.Errorf("Reason.String() = %q", got)
		}
	}
	if res := process(t, info, mustParse(t, `{"type":"warp"}`)); res.typ != TypeInvalid {
		t.Errorf("unknown type reported as %v", res.typ)
	}
}

func TestTimestamp(t *testing.T) {
	info := testInfo(AllChannels())
	base := baseEvent(t, "scene_change")
	for tok, want := range map[string]int64{
		"0": 0, "-0": 0, "1795892750979": 1795892750979, "1e3": 1000, "1.0": 1, "1.5e1": 15,
		"1E+3": 1000, "12300e-2": 123, "9007199254740992": 1 << 53, "9.007199254740992e15": 1 << 53,
		"0.0e5": 0,
	} {
		res := process(t, info, base.with("ts", numNode(tok)))
		if res.out != Accepted {
			t.Errorf("ts %s: %v %v", tok, res.out, res.reason)
			continue
		}
		if got := string(lookup(res.tree, "ts").raw); got != strconv.FormatInt(want, 10) {
			t.Errorf("ts %s written as %s, want %d", tok, got, want)
		}
	}
	for tok, msg := range map[string]string{
		"1.5": "must be an integer ≥ 0 and ≤ 2^53", "-1": "must be an integer ≥ 0 and ≤ 2^53",
		"9007199254740993": "must be an integer ≥ 0 and ≤ 2^53", "1e16": "must be an integer ≥ 0 and ≤ 2^53",
		"1e-3": "must be an integer ≥ 0 and ≤ 2^53", "1795892750979.5": "must be an integer ≥ 0 and ≤ 2^53",
		"NaN": "invalid number", "01": "invalid number", "1e999": "must be finite",
	} {
		res := process(t, info, base.with("ts", numNode(tok)))
		if res.out != Rejected || res.reason != (Reason{"ts", msg}) {
			t.Errorf("ts %s: %v %v, want %s", tok, res.out, res.reason, msg)
		}
	}
	if res := process(t, info, base.with("ts", strNode("1"))); res.reason != (Reason{"ts", "must be an integer ≥ 0 and ≤ 2^53"}) {
		t.Errorf("string ts: %v", res.reason)
	}
}

func TestSceneID(t *testing.T) {
	info := testInfo(AllChannels())
	base := baseEvent(t, "scene_change")
	ok := []string{"a", strings.Repeat("z", 64), "A-z_0.9:x", "level-2"}
	bad := []string{"", strings.Repeat("z", 65), "a b", "scène", "a/b", "a\"b", "a\x00"}
	for _, s := range ok {
		res := process(t, info, base.with("sceneId", strNode(s)))
		if res.out != Accepted || string(lookup(res.tree, "sceneId").raw) != s {
			t.Errorf("sceneId %q: %v %v", s, res.out, res.reason)
		}
	}
	for _, s := range bad {
		res := process(t, info, base.with("sceneId", strNode(s)))
		if res.out != Rejected || res.reason.Field != "sceneId" {
			t.Errorf("sceneId %q: %v %v", s, res.out, res.reason)
		}
	}
	if res := process(t, info, base.with("sceneId", numNode("1"))); res.out != Rejected {
		t.Errorf("numeric sceneId accepted")
	}
	for _, ev := range []*node{base, base.with("sceneId", &node{kind: KindNull})} {
		res := process(t, info, ev)
		if got := string(lookup(res.tree, "sceneId").raw); got != "default" {
			t.Errorf("sceneId = %q, want default", got)
		}
	}
}

func TestServerAuthoritativeFields(t *testing.T) {
	info := testInfo(AllChannels())
	ev := mustParse(t, `{"visitorId":"client-visitor","type":"session_start","projectId":"someone-else","sessionId":"s",
		"ts":5,"sdkVersion":"1","extra":1,"__proto__":{"x":1},"fps":30,"device":{"engine":"webgl","browser":"Evil","os":"Evil","browserVersion":"1"}}`)
	res := process(t, info, ev)
	if res.out != Accepted {
		t.Fatalf("%v %v", res.out, res.reason)
	}
	for _, k := range []string{"extra", "__proto__", "fps"} {
		if lookup(res.tree, k) != nil {
			t.Errorf("unknown member %s kept: %s", k, res.json)
		}
	}
	if got := string(lookup(res.tree, "device.browser").raw); got != "Firefox" {
		t.Errorf("device.browser = %q", got)
	}
	if got := string(lookup(res.tree, "device.os").raw); got != "Linux" {
		t.Errorf("device.os = %q", got)
	}
	if got := string(lookup(res.tree, "device.browserVersion").raw); got != "1" {
		t.Errorf("device extra dropped: %s", res.json)
	}
	// Without a device, one is written with the server's values; without
	// server values, "unknown".
	noUA := testInfo(AllChannels())
	noUA.Browser, noUA.OS = "", ""
	res = process(t, noUA, ev.without("device"))
	if got := string(res.json); !strings.HasSuffix(got, `,"device":{"browser":"unknown","os":"unknown"}}`) {
		t.Errorf("stamped device: %s", got)
	}
	// Other types get no device.
	if res := process(t, info, baseEvent(t, "scene_change")); lookup(res.tree, "device") != nil {
		t.Errorf("device on scene_change: %s", res.json)
	}
}

func TestDuplicateFields(t *testing.T) {
	info := testInfo(AllChannels())
	base := minimalEvent(t, "camera_sample", defsOf("camera_sample"))
	cases := []struct {
		name  string
		ev    *node
		field string
	}{
		{"ts", base.appendMember("ts", numNode("7")), "ts"},
		{"sessionId", base.appendMember("sessionId", strNode("other")), "sessionId"},
		{"projectId", base.appendMember("projectId", strNode("p")), "projectId"},
		{"payload", base.appendMember("position", vecNode(3, "1")), "position"},
		{"null duplicate", base.appendMember("fov", numNode("1")).appendMember("fov", &node{kind: KindNull}), "fov"},
		{"sceneId", base.appendMember("sceneId", strNode("a")).appendMember("sceneId", strNode("a")), "sceneId"},
		{"pageMeta member", base.with("pageMeta", mustParse(t, `{"title":"a","title":"b"}`)), "pageMeta.title"},
		{"ray member", base.with("ray", mustParse(t, `{"origin":[0,0,0],"direction":[0,0,1],"origin":[1,1,1]}`)), ""},
	}
	for _, c := range cases {
		res := process(t, info, c.ev)
		if c.field == "" {
			// camera_sample has no ray: an unknown member, dropped with its duplicates.
			if res.out != Accepted || lookup(res.tree, "ray") != nil {
				t.Errorf("%s: %v %v", c.name, res.out, res.reason)
			}
			continue
		}
		if res.out != Rejected || res.reason != (Reason{c.field, "duplicate field"}) {
			t.Errorf("%s: %v %v", c.name, res.out, res.reason)
		}
	}
	pm := minimalEvent(t, "pointer_move", nil).with("ray", mustParse(t, `{"origin":[0,0,0],"direction":[0,0,1],"origin":[1,1,1]}`))
	if res := process(t, info, pm); res.reason != (Reason{"ray.origin", "duplicate field"}) {
		t.Errorf("ray duplicate: %v", res.reason)
	}
	ss := baseEvent(t, "session_start").with("device", mustParse(t, `{"engine":"webgl","engine":"webgl"}`))
	if res := process(t, info, ss); res.reason != (Reason{"device.engine", "duplicate field"}) {
		t.Errorf("device duplicate: %v", res.reason)
	}
	twoTypes := base.appendMember("type", strNode("camera_sample"))
	if res := process(t, info, twoTypes); res.out != Rejected || res.typ != TypeInvalid || res.reason != (Reason{"type", "duplicate field"}) {
		t.Errorf("type duplicate: %v %v %v", res.out, res.typ, res.reason)
	}
	// Unknown and ignored members may repeat: they are dropped anyway.
	dup := base.appendMember("zzz", numNode("1")).appendMember("zzz", numNode("2")).
		appendMember("visitorId", strNode("a")).appendMember("visitorId", strNode("b"))
	if res := process(t, info, dup); res.out != Accepted || lookup(res.tree, "zzz") != nil {
		t.Errorf("repeated unknown member: %v %v", res.out, res.reason)
	}
}

func TestOpenObjectExtras(t *testing.T) {
	info := testInfo(AllChannels())
	base := baseEvent(t, "session_start")
	long := func(n int) string { return `"` + strings.Repeat("x", n) + `"` }
	arr := func(n int) string { return "[" + strings.TrimSuffix(strings.Repeat("1,", n), ",") + "]" }
	cases := []struct {
		name string
		val  string // extra member value inside device
		kept string // how it is written, "" when dropped
	}{
		{"string", `"a\"b"`, `"a\"b"`},
		{"string 1024", long(1024), long(1024)},
		{"string 1025", long(1025), ""},
		{"number token kept", `1.50e1`, `1.50e1`},
		{"infinite number", `1e999`, ""},
		{"bool", `false`, `false`},
		{"null", `null`, `null`},
		{"array of 64", arr(64), arr(64)},
		{"array of 65", arr(65), ""},
		{"array of mixed scalars", `[1,"a",true,null]`, `[1,"a",true,null]`},
		{"array with an object", `[1,{}]`, ""},
		{"array with an array", `[[1]]`, ""},
		{"empty array", `[]`, `[]`},
		{"object", `{"a":1,"b":[true]}`, `{"a":1,"b":[true]}`},
		{"depth 3", `{"a":{"b":1}}`, `{"a":{"b":1}}`},
		{"depth 4 dropped inside", `{"a":{"b":{"c":1},"d":2}}`, `{"a":{"d":2}}`},
		{"nested bad values dropped", `{"a":1e999,"b":"ok","c":[{}]}`, `{"b":"ok"}`},
		{"nested repeated key", `{"a":1,"a":2,"b":3}`, `{"b":3}`},
	}
	for _, c := range cases {
		dev := mustParse(t, `{"engine":"webgl","gpuExtra":`+c.val+`}`)
		res := process(t, info, base.with("device", dev))
		if res.out != Accepted {
			t.Errorf("%s: %v %v", c.name, res.out, res.reason)
			continue
		}
		want := `"device":{"engine":"webgl","browser":"Firefox","os":"Linux"`
		if c.kept != "" {
			want += `,"gpuExtra":` + c.kept
		}
		want += "}"
		if !bytes.Contains(res.json, []byte(want)) {
			t.Errorf("%s:\n got %s\nwant %s", c.name, res.json, want)
		}
	}

	// Non-finite and ungrammatical tokens from a lenient parser are dropped.
	for _, tok := range []string{"NaN", "01", ".5", "Infinity"} {
		dev := mustParse(t, `{"engine":"webgl"}`).appendMember("x", numNode(tok)).appendMember("y", numNode("2"))
		res := process(t, info, base.with("device", dev))
		if res.out != Accepted || lookup(res.tree, "device.x") != nil || string(lookup(res.tree, "device.y").raw) != "2" {
			t.Errorf("token %s: %v %s", tok, res.out, res.json)
		}
	}
	// Invalid text in an extra key or value, at any depth, rejects the
	// event: it is not dropped quietly, nor stored changed.
	for name, dev := range map[string]*node{
		"key":          mustParse(t, `{"w":"ok"}`).appendMember("k\xff", numNode("1")),
		"value":        mustParse(t, `{"w":"ok"}`).appendMember("v", strNode("\xfe")),
		"surrogate":    mustParse(t, `{"w":"ok"}`).appendMember("v", strNode("a\xed\xa0\x80")),
		"array":        mustParse(t, `{"w":"ok"}`).appendMember("v", &node{kind: KindArray, elems: []*node{numNode("1"), strNode("\xed\xb0\x80")}}),
		"nested key":   mustParse(t, `{"w":"ok"}`).appendMember("o", mustParse(t, `{"a":1}`).appendMember("\xed\xa0\xbd", numNode("1"))),
		"nested value": mustParse(t, `{"w":"ok"}`).appendMember("o", mustParse(t, `{}`).appendMember("p", mustParse(t, `{}`).appendMember("q", strNode("\xff")))),
	} {
		res := process(t, info, base.with("device", dev))
		if res.out != Rejected || res.reason.Field != "device" || !strings.HasPrefix(res.reason.Msg, "invalid text: ") {
			t.Errorf("invalid text in an extra %s: %v %v %s", name, res.out, res.reason, res.json)
		}
	}
	if res := process(t, info, base.with("device", mustParse(t, `{}`).appendMember("v", strNode("\xed\xa0\x80")))); res.reason.Msg != `invalid text: unpaired UTF-16 surrogate \ud800` {
		t.Errorf("surrogate in an extra value: %v", res.reason)
	}
	// An extra the validator drops for its shape is not looked into.
	deep := mustParse(t, `{}`).appendMember("a", mustParse(t, `{}`).appendMember("b", mustParse(t, `{}`).appendMember("c", mustParse(t, `{}`).appendMember("d", strNode("\xff")))))
	if res := process(t, info, base.with("device", mustParse(t, `{"w":"ok"}`).appendMember("x", deep))); res.out != Accepted {
		t.Errorf("too deep an extra: %v %v", res.out, res.reason)
	}

	// Only the first 32 unknown keys are considered; keys must have 1–128
	// characters and appear once.
	var b strings.Builder
	b.WriteString(`{"":1,"` + strings.Repeat("k", 129) + `":1,"` + strings.Repeat("k", 128) + `":1,"dup":1,"dup":2`)
	for i := 0; i < 40; i++ {
		b.WriteString(`,"e` + strconv.Itoa(i) + `":` + strconv.Itoa(i))
	}
	b.WriteString(`,"engine":"webgpu"}`)
	res := process(t, info, base.with("graphics", mustParse(t, b.String())))
	if res.out != Accepted {
		t.Fatalf("%v %v", res.out, res.reason)
	}
	g := lookup(res.tree, "graphics")
	// 32 considered: the 5 special keys, then e0…e26; "engine" (not a
	// graphics key) comes after the window.
	want := []string{strings.Repeat("k", 128)}
	for i := 0; i < 27; i++ {
		want = append(want, "e"+strconv.Itoa(i))
	}
	if got := strings.Join(keys(g), ","); got != strings.Join(want, ",") {
		t.Errorf("graphics extras\n got %s\nwant %s", got, strings.Join(want, ","))
	}

	// The same rules hold in every open object, and extras come after the
	// known members whatever their input position.
	for _, obj := range []string{"pageMeta", "device", "graphics", "scene", "connector", "connector.coordinateSystem"} {
		v := mustParse(t, `{"zz":{"y":[1,2]},"aa":"s"}`)
		if obj == "connector" {
			v = v.with("name", strNode("three"))
		}
		ev := base.with(obj, v)
		if obj == "connector.coordinateSystem" {
			ev = ev.with("connector.name", strNode("three"))
		}
		res := process(t, info, ev)
		got := lookup(res.tree, obj)
		if res.out != Accepted || got == nil {
			t.Errorf("%s: %v %v", obj, res.out, res.reason)
			continue
		}
		ks := keys(got)
		if len(ks) < 2 || ks[len(ks)-2] != "zz" || ks[len(ks)-1] != "aa" {
			t.Errorf("%s extras: %s", obj, res.json)
		}
	}
	// In connector.coordinateSystem (depth 2), an extra object holds scalars only.
	cs := mustParse(t, `{"name":"x","coordinateSystem":{"handedness":"right","upAxis":"z","unitScale":0.01,"m":{"n":{"o":1},"p":2}}}`)
	res = process(t, info, base.with("connector", cs))
	if want := `"connector":{"name":"x","coordinateSystem":{"handedness":"right","upAxis":"z","unitScale":0.01,"m":{"p":2}}}`; !bytes.Contains(res.json, []byte(want)) {
		t.Errorf("coordinateSystem:\n got %s\nwant %s", res.json, want)
	}
}

func TestClosedObjectsDropUnknownMembers(t *testing.T) {
	info := testInfo(AllChannels())
	ev := baseEvent(t, "session_start").with("user", mustParse(t, `{"email":"a@b.c","id":"u1","traits":{"plan":"pro"}}`))
	res := process(t, info, ev)
	if !bytes.Contains(res.json, []byte(`"user":{"id":"u1","traits":{"plan":"pro"}}`)) {
		t.Errorf("user: %s", res.json)
	}
	pm := minimalEvent(t, "pointer_move", nil).with("ray", mustParse(t, `{"direction":[0,0,1],"len":3,"origin":[1,2,3]}`))
	res = process(t, info, pm)
	if !bytes.Contains(res.json, []byte(`"ray":{"origin":[1,2,3],"direction":[0,0,1]}`)) {
		t.Errorf("ray: %s", res.json)
	}
}

func TestBags(t *testing.T) {
	info := testInfo(AllChannels())
	entries := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = `"k` + strconv.Itoa(i) + `":` + strconv.Itoa(i)
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	custom := minimalEvent(t, "custom", defsOf("custom"))
	traits := func(v *node) *node { return baseEvent(t, "session_start").with("user.traits", v) }
	props := func(v *node) *node { return custom.with("props", v) }
	for name, wrap := range map[string]func(*node) *node{"props": props, "user.traits": traits} {
		ok := []string{
			entries(64), `{}`, `{"s":"` + strings.Repeat("x", 1024) + `"}`, `{"n":-1.5e3,"b":true,"z":null}`,
			`{"` + strings.Repeat("k", 128) + `":1}`, `{"😀":"é"}`,
		}
		for _, v := range ok {
			res := process(t, info, wrap(mustParse(t, v)))
			if res.out != Accepted || !sameValue(lookup(res.tree, name), mustParse(t, v)) {
				t.Errorf("%s %.40s: %v %v", name, v, res.out, res.reason)
			}
		}
		bad := map[string]string{
			entries(65): "must have at most 64 entries",
			`{"s":"` + strings.Repeat("x", 1025) + `"}`: "values must be strings of at most 1024 characters, numbers, booleans or null",
			`{"o":{"a":1}}`:                          "values must be strings of at most 1024 characters, numbers, booleans or null",
			`{"a":[1]}`:                              "values must be strings of at most 1024 characters, numbers, booleans or null",
			`{"":1}`:                                 "keys must be strings of 1–128 characters",
			`{"` + strings.Repeat("k", 129) + `":1}`: "keys must be strings of 1–128 characters",
			`{"a":1,"a":2}`:                          "duplicate key",
			`{"a":1e999}`:                            "must be finite",
			`[]`:                                     "must be an object",
		}
		for v, msg := range bad {
			res := process(t, info, wrap(mustParse(t, v)))
			if res.out != Rejected || res.reason != (Reason{name, msg}) {
				t.Errorf("%s %.40s: %v %v, want %s", name, v, res.out, res.reason, msg)
			}
		}
		for tok, msg := range map[string]string{"NaN": "invalid number", "01": "invalid number"} {
			res := process(t, info, wrap(mustParse(t, `{}`).appendMember("x", numNode(tok))))
			if res.reason != (Reason{name, msg}) {
				t.Errorf("%s token %s: %v", name, tok, res.reason)
			}
		}
		if res := process(t, info, wrap(mustParse(t, `{}`).appendMember("x", strNode("\xff")))); res.reason != (Reason{name, "invalid text: not valid UTF-8"}) {
			t.Errorf("%s invalid UTF-8 value: %v", name, res.reason)
		}
		if res := process(t, info, wrap(mustParse(t, `{}`).appendMember("\xff", numNode("1")))); res.reason != (Reason{name, "invalid text: not valid UTF-8"}) {
			t.Errorf("%s invalid UTF-8 key: %v", name, res.reason)
		}
		if res := process(t, info, wrap(mustParse(t, `{}`).appendMember("x", strNode("\xed\xb3\x80")))); res.reason != (Reason{name, `invalid text: unpaired UTF-16 surrogate \udcc0`}) {
			t.Errorf("%s surrogate value: %v", name, res.reason)
		}
		if res := process(t, info, wrap(mustParse(t, `{}`).appendMember("k\xed\xa0\x80", numNode("1")))); res.reason != (Reason{name, `invalid text: unpaired UTF-16 surrogate \ud800`}) {
			t.Errorf("%s surrogate key: %v", name, res.reason)
		}
	}
}

func TestGating(t *testing.T) {
	def := testInfo(DefaultChannels())
	for _, c := range catalog {
		ty := typeByNameT(t, c.typ)
		res := process(t, def, fullEvent(t, c.typ, c.fields))
		wantFiltered := map[string]bool{"mesh_visibility": true, "hover_dwell": true, "resource_sample": true, "runtime_error": true}[c.typ]
		if wantFiltered && (res.out != Filtered || res.typ != ty) {
			t.Errorf("%s: %v, want filtered", c.typ, res.out)
		}
		if !wantFiltered && res.out != Accepted {
			t.Errorf("%s: %v %v, want accepted", c.typ, res.out, res.reason)
		}
		// An invalid event is rejected even when its channel is off.
		bad := baseEvent(t, c.typ).with("ts", numNode("-5"))
		if res := process(t, def, bad); res.out != Rejected {
			t.Errorf("%s invalid: %v", c.typ, res.out)
		}
	}
	off := testInfo(DefaultChannels())
	off.Channels.MeshPicks = false
	if res := process(t, off, fullEvent(t, "mesh_interaction", defsOf("mesh_interaction"))); res.out != Filtered {
		t.Errorf("mesh_interaction with meshPicks off: %v", res.out)
	}

	// Strips: counted once per event and per channel, only when something
	// was removed, and only for accepted events.
	var p Processor
	var b Batch
	vis := testInfo(DefaultChannels())
	vis.Channels.MeshVisibility = true
	p.Begin(&b, vis)
	cam := fullEvent(t, "camera_sample", defsOf("camera_sample"))
	mv := fullEvent(t, "mesh_visibility", defsOf("mesh_visibility"))
	for _, ev := range []*node{cam, cam.without("hitMesh"), cam.without("hitPoint").without("hitMesh"), mv, mv.without("bounds"), cam.with("ts", numNode("-1"))} {
		p.Add(ev)
	}
	if got := p.Stripped(); got[StripGaze] != 2 || got[StripBounds] != 1 {
		t.Errorf("Stripped() = %v, want gaze 2, bounds 1", got)
	}
	if b.Len() != 5 {
		t.Fatalf("%d events", b.Len())
	}
	for i := 0; i < b.Len(); i++ {
		out := mustParse(t, string(b.JSON(i)))
		for _, k := range []string{"hitPoint", "hitMesh", "bounds"} {
			if lookup(out, k) != nil {
				t.Errorf("event %d kept %s: %s", i, k, b.JSON(i))
			}
		}
	}
	if got := string(b.JSON(0)); !strings.HasSuffix(got, `"near":1.5}`) {
		t.Errorf("stripped output: %s", got)
	}
	p.Begin(&b, vis)
	if got := p.Stripped(); got != [NumStrips]int{} {
		t.Errorf("Begin did not reset strips: %v", got)
	}
	// With the channels on, nothing is stripped.
	all := testInfo(AllChannels())
	p.Begin(&b, all)
	p.Add(cam)
	p.Add(mv)
	if got := p.Stripped(); got != [NumStrips]int{} {
		t.Errorf("Stripped() = %v with all channels", got)
	}
}

func TestBatchLayout(t *testing.T) {
	info := testInfo(AllChannels())
	var p Processor
	b := &Batch{}
	p.Begin(b, info)
	sessions := []string{"plain", "with \"quote\" and \\ and \n and \u2028", "😀"}
	for i, s := range sessions {
		ev := baseEvent(t, "scene_change").with("sessionId", strNode(s)).with("ts", numNode(strconv.Itoa(100+i)))
		if out, _, r := p.Add(ev); out != Accepted {
			t.Fatalf("%q: %v", s, r)
		}
		// A rejected event in between leaves no trace.
		before := append([]byte(nil), b.Buf...)
		if out, _, _ := p.Add(ev.with("ts", numNode("1.5"))); out != Rejected || !bytes.Equal(before, b.Buf) || b.Len() != i+1 {
			t.Fatalf("rejected event changed the batch")
		}
	}
	for i, s := range sessions {
		if got := string(b.Session(i)); got != s {
			t.Errorf("Session(%d) = %q", i, got)
		}
		if b.Events[i].TS != int64(100+i) || b.Events[i].Type != TypeSceneChange {
			t.Errorf("event %d: %+v", i, b.Events[i])
		}
		var m map[string]any
		if err := json.Unmarshal(b.JSON(i), &m); err != nil || m["sessionId"] != s {
			t.Errorf("event %d: %v %q", i, err, m["sessionId"])
		}
	}
	// U+2028 is kept raw, control characters are escaped.
	if !bytes.Contains(b.JSON(1), []byte("\\n and \u2028")) {
		t.Errorf("escaping: %s", b.JSON(1))
	}
	// Events appended by the Processor sit alongside AppendEvent's.
	b.AppendEvent(TypeCustom, 9, []byte("s"), []byte(`{"x":1}`))
	if string(b.JSON(3)) != `{"x":1}` || string(b.JSON(2)) == "" {
		t.Errorf("AppendEvent after Add broke the layout")
	}
}

func TestStringEscaping(t *testing.T) {
	info := testInfo(AllChannels())
	s := "tab\t nl\n cr\r bs\b ff\f nul\x00 esc\x1b del\x7f quote\" back\\ slash/ <&> \u2028\u2029 é 😀"
	res := process(t, info, minimalEvent(t, "custom", defsOf("custom")).with("name", strNode(s[:60])).with("props", mustParse(t, `{}`).appendMember("k\n", strNode(s))))
	if res.out != Accepted {
		t.Fatalf("%v", res.reason)
	}
	var m struct {
		Name  string
		Props map[string]string
	}
	if err := json.Unmarshal(res.json, &m); err != nil {
		t.Fatal(err)
	}
	if m.Name != s[:60] || m.Props["k\n"] != s {
		t.Errorf("strings changed: %q %q", m.Name, m.Props)
	}
	if !bytes.Contains(res.json, []byte(`nul\u0000 esc\u001b del`+"\x7f")) || !bytes.Contains(res.json, []byte(`tab\t nl\n cr\r bs\b ff\f`)) {
		t.Errorf("escapes: %s", res.json)
	}
}

// TestFixtures runs every fixture event through the Processor and checks the
// output against the input: equal except for the server-authoritative fields.
func TestFixtures(t *testing.T) {
	fxs := loadFixtures(t)
	all := testInfo(AllChannels())
	def := testInfo(DefaultChannels())
	total := 0
	for _, fx := range fxs {
		var p, pd Processor
		var b, bd Batch
		p.Begin(&b, all)
		pd.Begin(&bd, def)
		gazeStrips := 0
		for i, ev := range fx.events {
			out, ty, r := p.Add(ev)
			if out != Accepted {
				t.Fatalf("%s event %d: %v %v %v", fx.name, i, out, ty, r)
			}
			got := b.JSON(b.Len() - 1)
			want := expectedOutput(t, fx.raw[i], all)
			if !jsonEqual(t, got, want) {
				t.Errorf("%s event %d:\n got %s\nwant %s", fx.name, i, got, want)
			}
			// Under the defaults, the opt-in types (mesh_visibility,
			// hover_dwell, resource_sample, runtime_error) are filtered and
			// gaze is stripped.
			outD, tyD, rD := pd.Add(ev)
			switch ty {
			case TypeMeshVisibility, TypeHoverDwell, TypeResourceSample, TypeRuntimeError:
				if outD != Filtered || tyD != ty {
					t.Errorf("%s event %d (%v): %v under defaults", fx.name, i, ty, outD)
				}
				continue
			}
			if outD != Accepted {
				t.Fatalf("%s event %d (%v): %v %v under defaults", fx.name, i, ty, outD, rD)
			}
			dout := mustParse(t, string(bd.JSON(bd.Len()-1)))
			if ty == TypeCameraSample {
				in := mustParse(t, string(fx.raw[i]))
				if lookup(in, "hitPoint") != nil || lookup(in, "hitMesh") != nil {
					gazeStrips++
				}
				if lookup(dout, "hitPoint") != nil || lookup(dout, "hitMesh") != nil {
					t.Errorf("%s event %d: gaze kept under defaults", fx.name, i)
				}
			}
		}
		if pd.Stripped()[StripGaze] != gazeStrips || gazeStrips == 0 {
			t.Errorf("%s: gaze strips %d, want %d", fx.name, pd.Stripped()[StripGaze], gazeStrips)
		}
		total += b.Len()
	}
	if total != 50*3+200*3 {
		t.Errorf("%d fixture events accepted", total)
	}
}

// expectedOutput derives, with encoding/json, what the stored form of a valid
// client event must hold.
func expectedOutput(t testing.TB, raw []byte, info *RequestInfo) map[string]any {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	m["projectId"] = info.ProjectID
	m["visitorId"] = string(info.VisitorID[:])
	if _, ok := m["sceneId"]; !ok {
		m["sceneId"] = "default"
	}
	if m["type"] == "session_start" {
		dev, _ := m["device"].(map[string]any)
		if dev == nil {
			dev = map[string]any{}
			m["device"] = dev
		}
		dev["browser"] = info.Browser
		dev["os"] = info.OS
	}
	return m
}

func jsonEqual(t testing.TB, got []byte, want map[string]any) bool {
	var g map[string]any
	dec := json.NewDecoder(bytes.NewReader(got))
	dec.UseNumber()
	if err := dec.Decode(&g); err != nil {
		t.Fatalf("%v: %s", err, got)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(want)
	return bytes.Equal(gb, wb)
}

// TestIdempotent feeds canonical output back in: it must be accepted and come
// out byte for byte the same.
func TestIdempotent(t *testing.T) {
	info := testInfo(AllChannels())
	var inputs []Value
	for _, c := range catalog {
		inputs = append(inputs, minimalEvent(t, c.typ, c.fields), fullEvent(t, c.typ, c.fields))
	}
	inputs = append(inputs, baseEvent(t, "session_start").with("device", mustParse(t, `{"x":{"y":{"z":{"w":1}}},"a":[1,"\u0001"],"a":2}`)))
	for _, fx := range loadFixtures(t) {
		inputs = append(inputs, fx.events...)
	}
	for i, v := range inputs {
		first := process(t, info, v)
		if first.out != Accepted {
			t.Fatalf("input %d: %v", i, first.reason)
		}
		second := process(t, info, mustParse(t, string(first.json)))
		if second.out != Accepted || !bytes.Equal(first.json, second.json) {
			t.Fatalf("input %d not idempotent:\n%s\n%s", i, first.json, second.json)
		}
	}
}

func TestZeroAllocations(t *testing.T) {
	fxs := loadFixtures(t)
	var events []Value
	for _, fx := range fxs {
		events = append(events, fx.events...)
	}
	// Rejected events must not allocate either.
	base := baseEvent(t, "frame_perf").with("fps", numNode("30"))
	for _, ev := range []*node{
		base.with("fps", numNode("-1")), base.with("fps", numNode("NaN")), base.with("fps", numNode("1e999")),
		base.with("fps", numNode("-1."+strings.Repeat("0", 40)+"1")), base.with("ts", numNode("1.5")),
		base.with("sessionId", strNode("\xff")), base.appendMember("fps", numNode("1")),
		baseEvent(t, "nope"), mustParse(t, `[]`),
		base.with("sessionId", strNode("s\xed\xa0\x80")),
		base.with("pageMeta", mustParse(t, `{}`).appendMember("k", strNode("\xed\xbf\xbf"))),
	} {
		events = append(events, ev)
	}
	info := testInfo(AllChannels())
	var p Processor
	var b Batch
	run := func() {
		b.Reset()
		p.Begin(&b, info)
		for _, ev := range events {
			p.Add(ev)
		}
	}
	run() // warm up: grow the buffers
	if allocs := testing.AllocsPerRun(20, run); allocs != 0 {
		t.Errorf("%v allocations per batch of %d events", allocs, len(events))
	}
	if b.Len() != len(events)-11 {
		t.Errorf("%d accepted", b.Len())
	}
}
