package edge

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/internal/jsonvalue"
)

// decodeWhole is the body decoder as a single parse of the whole body: the
// reference that decodeJSON, which parses event by event, must agree with.
func decodeWhole(s *ingestAPI, ic *ingestCtx, data []byte) string {
	var p jsonvalue.Parser
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
		s.addEvent(ic, i, jsonvalue.Wrap(ev))
	}
	return ""
}

// decodeBoth runs data through decodeJSON and decodeWhole, each with a
// fresh context, and fails unless they agree: on whether the body is
// malformed, on any other message, and on every event kept or refused. It
// also holds decodeJSON, which parses with the tape, to decodeJSONSplit,
// the splitter and fastjson alone (sameDecode).
func decodeBoth(t *testing.T, s *ingestAPI, data []byte) (msg string, kept int) {
	t.Helper()
	info := &core.RequestInfo{ProjectID: "p", Channels: core.AllChannels()}
	var a, b ingestCtx
	a.proc.SetCapture(s.capture)
	b.proc.SetCapture(s.capture)
	a.proc.Begin(&a.batch, info)
	b.proc.Begin(&b.batch, info)
	got := s.decodeJSON(&a, data)
	want := decodeWhole(s, &b, data)
	sameDecode(t, s, data, &a, got)
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

// sameDecode fails unless decodeJSONSplit decodes data exactly as
// decodeJSON did into a, with message msg: the same message, to the byte,
// the same canonical events, spans and errors, the same counts.
func sameDecode(t *testing.T, s *ingestAPI, data []byte, a *ingestCtx, msg string) {
	t.Helper()
	info := &core.RequestInfo{ProjectID: "p", Channels: core.AllChannels()}
	var c ingestCtx
	c.proc.SetCapture(s.capture)
	c.proc.Begin(&c.batch, info)
	want := s.decodeJSONSplit(&c, data)
	if msg != want {
		t.Fatalf("body %.200q:\n tape  %q\nsplit %q", data, msg, want)
	}
	if a.rejected != c.rejected || a.filtered != c.filtered || a.dropped != c.dropped || a.proc.Stripped() != c.proc.Stripped() ||
		!slices.Equal(a.errs, c.errs) || !bytes.Equal(a.batch.Buf, c.batch.Buf) ||
		!slices.Equal(a.batch.Events, c.batch.Events) || !slices.Equal(a.batch.Spans, c.batch.Spans) {
		t.Fatalf("body %.200q: the tape's decode differs from the split one's: %d/%d/%d against %d/%d/%d", data,
			len(a.batch.Events), a.rejected, a.filtered, len(c.batch.Events), c.rejected, c.filtered)
	}
}

func TestDecodeJSONAgreesWithASingleParse(t *testing.T) {
	s := newPathRig(t, true, false).in
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
	cases = append(cases, surrogateBodies...)
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

// TestDecodeJSONUsesTheTape: the fixtures, and bodies of every kind of
// event, are parsed by the tape alone; a body it refuses is decoded again.
func TestDecodeJSONUsesTheTape(t *testing.T) {
	s := newPathRig(t, true, false).in
	info := &core.RequestInfo{ProjectID: "p", Channels: core.AllChannels()}
	paths, _ := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	if len(paths) == 0 {
		t.Fatal("no fixtures")
	}
	decode := func(body []byte) (*ingestCtx, string) {
		ic := new(ingestCtx)
		ic.proc.SetCapture(s.capture)
		ic.proc.Begin(&ic.batch, info)
		msg := s.decodeJSON(ic, body)
		sameDecode(t, s, body, ic, msg)
		return ic, msg
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		ic, msg := decode(b)
		if msg != "" || ic.refusals != 0 || len(ic.batch.Events) == 0 {
			t.Fatalf("%s: %q, %d refusals, %d events kept", p, msg, ic.refusals, len(ic.batch.Events))
		}
	}
	ok := `{"type":"scene_change","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"1"}`
	for _, body := range []string{
		`{"events":[` + ok + `,{"type":"custom","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"1","name":"n","props":{"a":NaN}}]}`,
		`{"events":[` + ok + `],"meta":{"x":}}`,
		`{"events":[` + ok + `,{"type":"custom","projectId":"p","sessionId":"s\x","ts":1,"sdkVersion":"1","name":"n"}]}`,
		`{"\u0065vents":[` + ok + `]}`,
	} {
		ic, msg := decode([]byte(body))
		if ic.refusals != 1 {
			t.Fatalf("%s: %d refusals (%q)", body, ic.refusals, msg)
		}
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
	for _, b := range surrogateBodies {
		f.Add([]byte(b))
	}
	// Lone signs, which fastjson takes as numbers only at the end of its input.
	for _, b := range []string{`{"":+} `, `{"a":-,"events":[]}`, `[+]`, `[-, {}]`, `{"schemaVersion":+}`} {
		f.Add([]byte(b))
	}
	s := newPathRig(f, true, false).in
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeBoth(t, s, data)
	})
}

// surrogateBodies hold surrogate escapes, paired and not, raw encoded
// surrogates and escapes that are not JSON's, in each place where a string
// reaches the stored form, in keys too, and in members the decoder skips.
var surrogateBodies = func() []string {
	var out []string
	for _, s := range []string{`\ud800`, `\udc00`, `\udbff\u0041`, `a\ud83d`, `\ude00b`, `\ud83d\ude00`, `\uD83D\uDE00`,
		`\ud800\ud800`, `\ud800\\`, `\\ud800`, "\xed\xa0\x80", "\xed\xa0\xbd\xed\xb8\x80", `\x`, `\u12`, `\u12G4`, `\U0041`} {
		ev := `{"type":"custom","projectId":"p","sessionId":"s` + s + `","ts":1,"sdkVersion":"1","name":"n"}`
		props := `{"type":"custom","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"1","name":"n","props":{"` + s + `":1,"k":"` + s + `"}}`
		meta := `{"type":"session_start","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"1","pageMeta":{"title":"t","x` + s + `":"v","y":"` + s + `","a":["` + s + `"]},"user":{"id":"u","traits":{"t":"` + s + `"}}}`
		ok := `{"type":"scene_change","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"1"}`
		out = append(out,
			`{"events":[`+ev+`,`+props+`,`+meta+`,`+ok+`]}`,
			`{"meta":{"k":"`+s+`"},"events":[`+ok+`]}`,
			`{"events":[`+ok+`],"`+s+`":1}`,
			`{"schemaVersion":"1`+s+`","events":[`+ok+`]}`,
		)
	}
	return out
}()

// TestDecodeNDJSONChecksEveryLine: the NDJSON decoder finds the lines with
// escapes from one scan of the body; each line must still be decoded as if
// it were checked on its own, wherever its escapes are (first line, last
// line, a line after many without, several in a row, lines ending in \r).
func TestDecodeNDJSONChecksEveryLine(t *testing.T) {
	s := newPathRig(t, true, false).in
	plain := `{"type":"scene_change","projectId":"p","sessionId":"s","ts":1,"sdkVersion":"1"}`
	lone := `{"type":"scene_change","projectId":"p","sessionId":"s\ud800","ts":1,"sdkVersion":"1"}`
	pair := `{"type":"scene_change","projectId":"p","sessionId":"s\ud83d\ude00","ts":1,"sdkVersion":"1"}`
	lit := `{"type":"scene_change","projectId":"p","sessionId":"s\\ud800","ts":1,"sdkVersion":"1"}`
	kinds := []string{plain, lone, pair, lit}
	info := &core.RequestInfo{ProjectID: "p", Channels: core.AllChannels()}
	rng := uint32(1)
	for round := 0; round < 300; round++ {
		var lines []string
		wantRejected, wantKept := 0, []string{}
		for i := 0; i < 1+round%9; i++ {
			rng = rng*1664525 + 1013904223
			k := kinds[rng>>30]
			sep := "\n"
			if rng&(1<<20) != 0 {
				sep = "\r\n"
			}
			lines = append(lines, k+sep)
			var ic ingestCtx
			ic.proc.Begin(&ic.batch, info)
			v, err := ic.parser.ParseBytes([]byte(k))
			if err != nil {
				t.Fatal(err)
			}
			s.addEvent(&ic, 0, jsonvalue.Wrap(v))
			wantRejected += ic.rejected
			if len(ic.batch.Events) == 1 {
				wantKept = append(wantKept, string(ic.batch.Session(0)))
			}
		}
		var ic ingestCtx
		ic.proc.Begin(&ic.batch, info)
		body := strings.Join(lines, "")
		if msg := s.decodeNDJSON(&ic, []byte(body)); msg != "" {
			t.Fatalf("%q: %s", body, msg)
		}
		var kept []string
		for i := range ic.batch.Events {
			kept = append(kept, string(ic.batch.Session(i)))
		}
		if ic.rejected != wantRejected || strings.Join(kept, "|") != strings.Join(wantKept, "|") {
			t.Fatalf("%q: rejected %d kept %q; line by line: rejected %d kept %q", body, ic.rejected, kept, wantRejected, wantKept)
		}
	}
}
