package edge_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/storage"
)

// TestProjectRawRetention: on a node whose retention is off, a project a
// fleet revision retains has its raw routes (replay, funnel, a session's
// live tail, the full live stream, by key and by live token); the other
// project keeps the node's setting: 403 and the stream's envelopes.
func TestProjectRawRetention(t *testing.T) {
	h := newHarness(t, nil)
	on := true
	if _, err := h.store.Registry().Apply([]storage.DesiredProject{{ID: "a", Channels: core.DefaultChannels(), RawRetention: &on}}, storage.FleetRevision{Number: 1}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		name        string
		query, ing  string
		status      int
		visitorSeen bool
	}{{"a", h.a.Query, h.a.Ingest, 200, true}, {"b", h.b.Query, h.b.Ingest, 403, false}} {
		// The stream is opened first, by live token, and sees the batch.
		tok := h.do("POST", "/api/v1/live/token", nil, map[string]string{"x-api-key": p.query}).json(t)["token"].(string)
		stream := openSSE(t, h, "/api/v1/live/stream?token="+url.QueryEscape(tok), nil)
		if stream.res.StatusCode != 200 {
			t.Fatalf("%s: stream %d", p.name, stream.res.StatusCode)
		}
		mustIngest(t, h, p.ing, liveBatch("kept-"+p.name, "lobby", 2))
		if ev := stream.nextEvent("event", 5*time.Second); ev["sessionId"] != "kept-"+p.name || (ev["visitorId"] != nil) != p.visitorSeen {
			t.Errorf("%s: stream event %v, want the full event: %v", p.name, ev, p.visitorSeen)
		}
		key := map[string]string{"x-api-key": p.query}
		if r := h.do("GET", "/api/v1/sessions/kept-"+p.name+"/events", nil, key); r.status != p.status {
			t.Errorf("%s: replay %d %s", p.name, r.status, r.body)
		}
		steps := url.QueryEscape(`[{"type":"custom"},{"type":"custom"}]`)
		if r := h.do("GET", "/api/v1/funnel?steps="+steps, nil, key); r.status != p.status {
			t.Errorf("%s: funnel %d %s", p.name, r.status, r.body)
		}
		tail := openSSE(t, h, "/api/v1/live/sessions/kept-"+p.name+"?token="+url.QueryEscape(tok), nil)
		if tail.res.StatusCode != p.status {
			t.Errorf("%s: session tail %d", p.name, tail.res.StatusCode)
		}
		tail.close()
		stream.close()
	}
}
