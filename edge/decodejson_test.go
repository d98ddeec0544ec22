package edge

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/uptimizr/edge/core"
)

// decodeWhole is the body decoder as a single parse of the whole body: the
// reference that decodeJSON, which parses event by event, must agree with.
func decodeWhole(s *Server, ic *ingestCtx, data []byte) string {
	var p fastjson.Parser
	v, err := p.ParseBytes(data)
	if err != nil {
		return "malformed JSON body: " + err.Error()
	}
	var events []*fastjson.Value
	switch v.Type() {
	case fastjson.TypeArray:
		events, _ = v.Array()
	case fastjson.TypeObject:
		if sv := v.Get("schemaVersion"); sv != nil {
			b, err := sv.StringBytes()
			if err != nil || !(string(b) == "1" || bytes.HasPrefix(b, []byte("1."))) {
				return `unsupported schemaVersion: this collector reads "1.x"`
			}
		}
		ev := v.Get("events")
		if ev == nil {
			return `missing "events" array`
		}
		if events, err = ev.Array(); err != nil {
			return `"events" must be an array`
		}
	default:
		return `body must be a JSON object {"events":[…]}`
	}
	if len(events) == 0 {
		return "empty batch: send at least one event"
	}
	if len(events) > MaxBatchEvents {
		return "too many events in one batch: at most " + strconv.Itoa(MaxBatchEvents)
	}
	for i, ev := range events {
		s.addEvent(ic, i, ev)
	}
	return ""
}

// decodeBoth runs data through decodeJSON and decodeWhole, each with a
// fresh context, and fails unless they agree: on whether the body is
// malformed, on any other message, and on every event kept or refused.
func decodeBoth(t *testing.T, s *Server, data []byte) (msg string, kept int) {
	t.Helper()
	info := &core.RequestInfo{ProjectID: "p", Channels: core.AllChannels()}
	var a, b ingestCtx
	a.proc.Begin(&a.batch, info)
	b.proc.Begin(&b.batch, info)
	got := s.decodeJSON(&a, data)
	want := decodeWhole(s, &b, data)
	gm, wm := strings.HasPrefix(got, "malformed JSON body"), strings.HasPrefix(want, "malformed JSON body")
	if gm != wm || (!gm && got != want) {
		t.Fatalf("body %.200q:\n got %q\nwant %q", data, got, want)
	}
	if got != "" {
		return got, 0
	}
	if a.rejected != b.rejected || a.filtered != b.filtered || len(a.errs) != len(b.errs) || !bytes.Equal(a.batch.Buf, b.batch.Buf) || len(a.batch.Events) != len(b.batch.Events) {
		t.Fatalf("body %.200q: events differ: %d/%d/%d against %d/%d/%d", data,
			len(a.batch.Events), a.rejected, a.filtered, len(b.batch.Events), b.rejected, b.filtered)
	}
	for i := range a.errs {
		if a.errs[i] != b.errs[i] {
			t.Fatalf("body %.200q: error %d: %v against %v", data, i, a.errs[i], b.errs[i])
		}
	}
	return "", len(a.batch.Events)
}

func TestDecodeJSONAgreesWithASingleParse(t *testing.T) {
	s := newPathRig(t, true, false).srv
	ev := `{"type":"scene_change","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"1"}`
	bad := `{"type":"scene_change","projectId":"p","sessionId":"s","ts":-1,"sdkVersion":"1"}`
	many := "[" + strings.Repeat(ev+",", MaxBatchEvents) + ev + "]"
	cases := []string{
		`{"events":[` + ev + `]}`,
		` { "schemaVersion" : "1.2" , "events" : [ ` + ev + ` , ` + bad + ` ] , "meta" : {"a":[1,{"b":"]}"}]} } `,
		`[` + ev + `,` + ev + `]`,
		`{"events":[` + ev + `],"events":5}`,
		`{"\u0065vents":[` + ev + `]}`,
		`{"events":[` + ev + `],"schemaVersion":"2"}`,
		`{"events":{},"schemaVersion":"2"}`,
		`{"schemaVersion":2,"events":[` + ev + `]}`,
		`{"events":[` + ev + `],"meta":{"x":}}`,
		`{"events":[` + ev + `]} x`,
		`{"events":[` + ev + `]`,
		`{"events":[` + ev + ` ` + ev + `]}`,
		`{"events":[` + ev + `,]}`,
		`{"events":[1,"x",null,[],{}]}`,
		`{"events":[]}`,
		`{"events":{}}`,
		`{}`,
		`{"meta":1}`,
		`[]`,
		`"events"`,
		`12`,
		``,
		`   `,
		`{"events":[` + ev + `],}`,
		`{"events" [` + ev + `]}`,
		`{events:[` + ev + `]}`,
		`{"events":[` + ev + `]}}`,
		`{"a":"\"]}","events":[{"type":"custom","projectId":"p","sessionId":"s\"]}","ts":1,"sdkVersion":"1","name":"n\\"}]}`,
		many,
		`{"events":` + many + `}`,
		`{"events":[{"type":"custom","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"1","name":"n","props":{"a":NaN}}]}`,
		`{"events":[{"type":"custom","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"1","name":"n"}]}` + "\x00",
	}
	paths, _ := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, string(b))
		// Cuts of a fixture's first few hundred bytes and of its end.
		for n := 0; n < 400 && n < len(b); n += 7 {
			cases = append(cases, string(b[:n]), string(b[:len(b)-n]))
		}
	}
	kept := 0
	for _, c := range cases {
		_, k := decodeBoth(t, s, []byte(c))
		kept += k
	}
	if kept < 600 {
		t.Fatalf("only %d events kept over all cases", kept)
	}
}

// FuzzDecodeJSON holds the event-by-event decoder to a single parse of the
// whole body on arbitrary input.
func FuzzDecodeJSON(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(fixtureDir, "batch50*.json"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"schemaVersion":"1","events":[{"type":"scene_change","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"1"}],"meta":{"a":[1,"]"]}}`))
	f.Add([]byte(`[{"type":"scene_change","projectId":"p","sessionId":"s","ts":1e3,"sdkVersion":"1"},{}]`))
	s := newPathRig(f, true, false).srv
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeBoth(t, s, data)
	})
}
