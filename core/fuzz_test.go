package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzProcessor feeds arbitrary JSON documents (as the standard library parses
// them) to the Processor. It must never panic; a rejected event leaves nothing
// in the batch; an accepted event is valid JSON that validates again to the
// same bytes; gating never turns a rejected event into anything else; the
// captured fields are located exactly.
func FuzzProcessor(f *testing.F) {
	for _, fx := range loadFixtures(f) {
		for _, raw := range fx.raw {
			f.Add([]byte(raw))
		}
	}
	info := testInfo(AllChannels())
	for _, c := range catalog {
		for _, ev := range []*node{minimalEvent(f, c.typ, c.fields), fullEvent(f, c.typ, c.fields)} {
			var p Processor
			var b Batch
			p.Begin(&b, info)
			if out, _, r := p.Add(ev); out != Accepted {
				f.Fatalf("seed %s: %v", c.typ, r)
			}
			f.Add(append([]byte(nil), b.JSON(0)...))
		}
	}
	f.Add([]byte(`{"type":"custom","projectId":"p","sessionId":"s","ts":1e3,"sdkVersion":"v","name":"n","props":{"a":1,"a":2}}`))
	f.Add([]byte(`{"type":"session_start","projectId":"p","sessionId":"s","ts":0,"sdkVersion":"v","device":{"x":{"y":{"z":[1,"\u2028"]}}}}`))
	// Surrogate escapes, paired and not, and their raw encoded forms, in
	// every kind of place a string reaches the canonical form.
	for _, s := range []string{`\ud800`, `\udc00`, `\udbff\u0041`, `a\ud83d`, `\ude00b`, `\ud83d\ude00`, `\uD83D\uDE00`, `\ud800\ud800`, "\xed\xa0\x80", "\xed\xa0\xbd\xed\xb8\x80", `\\ud800`} {
		f.Add([]byte(`{"type":"custom","projectId":"p","sessionId":"` + s + `","ts":1,"sdkVersion":"v","name":"n"}`))
		f.Add([]byte(`{"type":"custom","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"v","name":"n","props":{"` + s + `":1,"k":"` + s + `"}}`))
		f.Add([]byte(`{"type":"session_start","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"v","pageMeta":{"title":"t","x` + s + `":"` + s + `","a":["` + s + `"],"o":{"p":"` + s + `"}},"user":{"id":"u","traits":{"t":"` + s + `"}}}`))
	}

	def := testInfo(DefaultChannels())
	capture := testCapture(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := parseAsEdge(data)
		if err != nil {
			return
		}
		var p, pd Processor
		b := &Batch{Buf: []byte("x")}
		bd := &Batch{}
		p.SetCapture(capture)
		p.Begin(b, info)
		pd.Begin(bd, def)
		out, ty, r := p.Add(v)
		outD, tyD, rD := pd.Add(v)
		if ty != tyD || (out == Rejected) != (outD == Rejected) || r != rD {
			t.Fatalf("gating changed validation: %v %v %v / %v %v %v", out, ty, r, outD, tyD, rD)
		}
		switch out {
		case Filtered:
			t.Fatalf("filtered with every channel on")
		case Rejected:
			if r.Msg == "" || string(b.Buf) != "x" || b.Len() != 0 {
				t.Fatalf("rejection left %q / reason %v", b.Buf, r)
			}
			return
		}
		got := b.JSON(0)
		if !json.Valid(got) || !utf8.Valid(got) {
			t.Fatalf("invalid JSON or text: %q", got)
		}
		if b.Events[0].Type != ty || ty == TypeInvalid {
			t.Fatalf("event type %v, Add said %v", b.Events[0].Type, ty)
		}
		var m map[string]any
		if err := json.Unmarshal(got, &m); err != nil || m["type"] != ty.String() || m["sessionId"] != string(b.Session(0)) {
			t.Fatalf("output %s: %v", got, err)
		}
		checkSpans(t, b, 0, capture)
		again, err := parseValue(got)
		if err != nil {
			t.Fatalf("output does not parse: %v: %s", err, got)
		}
		var p2 Processor
		var b2 Batch
		p2.Begin(&b2, info)
		if out2, _, r2 := p2.Add(again); out2 != Accepted {
			t.Fatalf("output rejected (%v): %s", r2, got)
		}
		if !bytes.Equal(b2.JSON(0), got) {
			t.Fatalf("not idempotent:\n%s\n%s", got, b2.JSON(0))
		}
		if outD == Accepted && !json.Valid(bd.JSON(0)) {
			t.Fatalf("invalid JSON under defaults: %s", bd.JSON(0))
		}
	})
}

// FuzzAppendScene feeds arbitrary JSON documents (as the standard library
// parses them) to AppendScene. It must never panic; a refused document
// leaves dst as given and says why; an accepted one is valid JSON and text
// that encodes again to the same bytes, with a valid listing row.
func FuzzAppendScene(f *testing.F) {
	f.Add([]byte(sceneBase), "s")
	f.Add([]byte(`{"sdkVersion":"1.4.0","extra":{"a":[1,2]},"capturedAt":1.7e12,"contentHash":"h\b\f\u0001",`+
		`"meshCount":3,"meshes":[{"path":"root/Floor","triangles":12,"aabb":[-0,0.10,1E-7,1e3,2.50,3],"name":"Floor","color":"red"},`+
		`{"name":"Lamp \"A\" ☀","aabb":[0,0,0,0,0,0],"triangles":null,"path":null},{"name":"é𝄞\ud83d\ude00","aabb":[1,1,1,2,2,2],"triangles":0,"path":""}],`+
		`"unitScale":0.01,"upAxis":"-z","bounds":[-1.0,0,-1,1,2e0,1],"sceneId":"hall-1","kind":"aabb","version":1.0}`), "hall-1")
	f.Add([]byte(strings.Replace(sceneBase, `"name":"m"`, `"name":"m\ud800"`, 1)), "s")
	f.Add([]byte(strings.Replace(sceneBase, `"unitScale":1`, `"unitScale":1e-400`, 1)), "s")
	f.Add([]byte(strings.Replace(sceneBase, `"capturedAt":1700000000000`, `"capturedAt":9007199254740993`, 1)), "s")
	f.Add([]byte(strings.Replace(sceneBase, `"bounds":[-10,0,-10,10,5,10]`, `"bounds":[1e308,0,0,1.7976931348623157e308,1,1]`, 1)), "s")
	f.Fuzz(func(t *testing.T, data []byte, pathID string) {
		v, err := parseAsEdge(data)
		if err != nil {
			return
		}
		doc, sc, err := AppendScene([]byte("x"), v, []byte(pathID))
		if err != nil {
			var se *SceneError
			if !errors.As(err, &se) || se.Msg == "" || !errors.Is(err, ErrRejected) || string(doc) != "x" {
				t.Fatalf("refusal %v left %q", err, doc)
			}
			return
		}
		doc = doc[1:]
		if !json.Valid(doc) || !utf8.Valid(doc) || string(sc.ID) != pathID || !ValidSceneID(sc.ID) {
			t.Fatalf("invalid JSON or text, or scene %q: %q", sc.ID, doc)
		}
		if sum := sc.AppendSummary(nil, time.Unix(0, 0)); !json.Valid(sum) {
			t.Fatalf("invalid listing row: %q", sum)
		}
		again, err := parseValue(doc)
		if err != nil {
			t.Fatalf("output does not parse: %v: %s", err, doc)
		}
		doc2, sc2, err := AppendScene(nil, again, []byte(pathID))
		if err != nil || !bytes.Equal(doc2, doc) || sc2.MeshCount != sc.MeshCount || sc2.CapturedAt != sc.CapturedAt {
			t.Fatalf("not a fixed point (%v):\n%s\n%s", err, doc, doc2)
		}
	})
}
