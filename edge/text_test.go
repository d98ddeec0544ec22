package edge_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestUnpairedSurrogatesAreRejected sends events whose strings hold
// unpaired UTF-16 surrogate escapes, high and low, in every kind of place a
// string reaches the stored form, to the real server as JSON and as NDJSON.
// Each such event is rejected as invalid text, naming the field and the
// escape, while the valid events of the same body are stored, a surrogate
// pair as the character it encodes and an escaped backslash as a backslash.
func TestUnpairedSurrogatesAreRejected(t *testing.T) {
	h := newHarness(t, nil)
	ev := func(typ, extra string) string {
		return `{"type":"` + typ + `","projectId":"a","sessionId":"s1","ts":1795892750979,"sdkVersion":"0.5.0"` + extra + `}`
	}
	const sp = `invalid text: unpaired UTF-16 surrogate `
	bad := []struct{ event, reason string }{
		{`{"type":"custom","projectId":"a","sessionId":"s\ud800","ts":1795892750979,"sdkVersion":"0.5.0","name":"n"}`, `sessionId: ` + sp + `\ud800`},
		{ev("custom", `,"name":"\udc00"`), `name: ` + sp + `\udc00`},
		{ev("custom", `,"name":"\ud800\u0041"`), `name: ` + sp + `\ud800`}, // not U+FFFD, "A" not swallowed
		{ev("custom", `,"name":"\ud83d\ud83d\ude00"`), `name: ` + sp + `\ud83d`},
		{ev("custom", `,"name":"n","props":{"\udbff":1}`), `props: ` + sp + `\udbff`},
		{ev("custom", `,"name":"n","props":{"k":"x\udfff"}`), `props: ` + sp + `\udfff`},
		{ev("session_start", `,"user":{"id":"u","traits":{"plan":"\ud801"}}`), `user.traits: ` + sp + `\ud801`},
		{ev("session_start", `,"pageMeta":{"title":"\uDC01"}`), `pageMeta.title: ` + sp + `\udc01`},
		{ev("session_start", `,"pageMeta":{"x\ud800":"v"}`), `pageMeta: ` + sp + `\ud800`},
		{ev("session_start", `,"pageMeta":{"x":"\ud800"}`), `pageMeta: ` + sp + `\ud800`},
		{ev("session_start", `,"pageMeta":{"x":["ok","\ude00"]}`), `pageMeta: ` + sp + `\ude00`},
		{ev("session_start", `,"device":{"gpu":{"name":"\ud800"}}`), `device: ` + sp + `\ud800`},
		{ev("session_start", `,"pageMeta":{"x":"`+"\xed\xa0\x80"+`"}`), `pageMeta: ` + sp + `\ud800`}, // the same, raw
		{ev("session_start", `,"pageMeta":{"x":"`+"\xff"+`"}`), `pageMeta: invalid text: not valid UTF-8`},
	}
	good := []struct{ event, stored string }{
		{ev("custom", `,"name":"\ud83d\ude00 \uD83D\uDE00"`), `"name":"😀 😀"`},
		{ev("custom", `,"name":"\\ud800"`), `"name":"\\ud800"`},
		{ev("session_start", `,"pageMeta":{"title":"t","x":"\ud83d\ude00"}`), `"x":"😀"`},
	}
	var events []string
	for _, b := range bad {
		events = append(events, b.event)
	}
	for _, g := range good {
		events = append(events, g.event)
	}
	for _, format := range []string{"json", "ndjson"} {
		t.Run(format, func(t *testing.T) {
			before := len(h.storedEvents("a"))
			var r resp
			if format == "json" {
				r = h.collect(h.a.Ingest, batchOf(events...), nil)
			} else {
				r = h.collect(h.a.Ingest, []byte(strings.Join(events, "\n")), map[string]string{"content-type": "application/x-ndjson"})
			}
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			var res struct {
				Accepted, Rejected int
				Errors             []struct {
					Index  int
					Reason string
				}
			}
			if err := json.Unmarshal(r.body, &res); err != nil {
				t.Fatal(err)
			}
			if res.Accepted != len(good) || res.Rejected != len(bad) || len(res.Errors) != len(bad) {
				t.Fatalf("accepted %d, rejected %d: %s", res.Accepted, res.Rejected, r.body)
			}
			for i, e := range res.Errors {
				if e.Index != i || e.Reason != bad[i].reason {
					t.Errorf("event %d: error %d %q, want %q", i, e.Index, e.Reason, bad[i].reason)
				}
			}
			stored := h.storedEvents("a")[before:]
			if len(stored) != len(good) {
				t.Fatalf("%d events stored", len(stored))
			}
			for i, g := range good {
				if !strings.Contains(stored[i].Raw, g.stored) {
					t.Errorf("stored %s, want it to hold %s", stored[i].Raw, g.stored)
				}
			}
		})
	}
}

// TestInvalidEscapesAreMalformed: a backslash that starts none of JSON's
// escapes makes the body malformed (400, nothing stored), as a strict JSON
// parser decides, wherever it is, even in a member the collector ignores.
func TestInvalidEscapesAreMalformed(t *testing.T) {
	h := newHarness(t, nil)
	ok := validEvent("scene_change", "")
	for _, c := range []struct{ body, ctype, want string }{
		{`{"events":[` + validEvent("custom", `,"name":"a\x"`) + `]}`, "", `malformed JSON body: invalid escape "\\x" in a string at offset 110`},
		{`{"events":[` + validEvent("custom", `,"name":"\u12"`) + `]}`, "", `invalid escape "\\u12\"}"`},
		{`{"meta":{"k":"\U0041"},"events":[` + ok + `]}`, "", `invalid escape "\\U" in a string at offset 14`},
		{`{"events":[` + ok + `],"\q":1}`, "", `invalid escape "\\q" in a string at offset 110`},
		{ok + "\n" + validEvent("custom", `,"name":"\ug000"`), "application/x-ndjson", `malformed JSON on line 2: invalid escape "\\ug000"`},
	} {
		hdr := map[string]string{}
		if c.ctype != "" {
			hdr["content-type"] = c.ctype
		}
		r := h.collect(h.a.Ingest, []byte(c.body), hdr)
		msg, _ := r.json(t)["error"].(string)
		if r.status != 400 || !strings.Contains(msg, c.want) {
			t.Errorf("%.60s…: %d %q, want 400 %q", c.body, r.status, msg, c.want)
		}
	}
	if n := len(h.storedEvents("a")); n != 0 {
		t.Fatalf("%d events stored from malformed bodies", n)
	}
}
