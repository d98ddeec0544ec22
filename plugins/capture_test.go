package plugins

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/internal/jsonvalue"
	"github.com/uptimizr/edge/storage"
)

// TestChainKeepsCapturedFields runs a rewriting plugin over a batch whose
// events carry the aggregator's captured fields: every event that comes out,
// rewritten (and re-validated) or passed through, still has them located,
// and each located value is exactly the member of its canonical JSON.
func TestChainKeepsCapturedFields(t *testing.T) {
	p := piiRedactAS(t)
	capture := storage.Capture()
	f := NewFilter(testStore(t).Quarantine(), nil)
	f.SetCapture(capture)
	f.SetChain(7, &Chain{Plugins: []*Plugin{p}})

	info := &core.RequestInfo{ProjectID: "proj", Channels: core.AllChannels(), Browser: "chrome", OS: "macos"}
	copy(info.VisitorID[:], "0123456789abcdef0123456789abcdef")
	b := &core.Batch{ProjectID: "proj", ProjectNum: 7, Info: info}
	var proc core.Processor
	proc.SetCapture(capture)
	proc.Begin(b, info)
	head := `"projectId":"proj","sessionId":"s1","sdkVersion":"0.5.0","sceneId":"lobby"`
	var pa fastjson.Parser
	for _, e := range []string{
		`{"type":"custom",` + head + `,"ts":1,"name":"contact","props":{"email":"jane.doe@example.com"}}`,
		`{"type":"mesh_interaction",` + head + `,"ts":2,"mesh":"door","kind":"click"}`,
		`{"type":"runtime_error",` + head + `,"ts":3,"kind":"error","message":"GET failed from 203.0.113.7","stack":"at x"}`,
		`{"type":"camera_sample",` + head + `,"ts":4,"position":[1,2,3],"direction":[0,0,1]}`,
		`{"type":"frame_perf",` + head + `,"ts":5,"fps":59.5}`,
	} {
		v, err := pa.Parse(e)
		if err != nil {
			t.Fatal(err)
		}
		if out, _, r := proc.Add(jsonvalue.Wrap(v)); out != core.Accepted {
			t.Fatalf("%s: %v", e, r)
		}
	}
	before := string(b.JSON(0))
	if err := f.Apply(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 5 || string(b.JSON(0)) == before {
		t.Fatalf("%d events; first %s (the plugin should have redacted it)", len(b.Events), b.JSON(0))
	}
	names := capture.Names()
	for i := range b.Events {
		spans, ok := b.Captured(i)
		if !ok {
			t.Fatalf("event %d lost its captured fields", i)
		}
		var members map[string]json.RawMessage
		if err := json.Unmarshal(b.JSON(i), &members); err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, s := range spans {
			name := names[s.Field-1]
			if string(members[name]) != string(b.Value(s)) {
				t.Fatalf("event %d: %s located as %s, the JSON has %s", i, name, b.Value(s), members[name])
			}
			found++
		}
		// sceneId and visitorId always; the typed fields where they exist.
		if found < 2 {
			t.Fatalf("event %d: %d fields located in %s", i, found, b.JSON(i))
		}
	}
}
