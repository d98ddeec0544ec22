package edge_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/uptimizr/edge/core"
)

// TestFunnel walks sessions through ordered steps from their raw events:
// a step is reached at or after the previous one (the same event can reach
// two), steps before it do not count, and name and mesh narrow a step.
func TestFunnel(t *testing.T) {
	h := newReadHarness(t, func(c *core.Config) { c.RawRetention = true })
	ev := func(sess, typ string, dt int, extra string) string {
		return fmt.Sprintf(`{"type":%q,"projectId":"a","sessionId":%q,"ts":%d,"sdkVersion":"0.5.0"%s}`, typ, sess, 1795892750000+dt, extra)
	}
	batch := batchOf(
		// s1: start, click the door, grab it: every step.
		ev("s1", "session_start", 0, ""), ev("s1", "pointer_click", 10, `,"hitMesh":"door"`), ev("s1", "mesh_interaction", 20, `,"mesh":"door","kind":"grab"`),
		// s2: grabs before clicking: reaches step 1 only.
		ev("s2", "session_start", 0, ""), ev("s2", "mesh_interaction", 5, `,"mesh":"door","kind":"grab"`), ev("s2", "pointer_click", 10, `,"hitMesh":"door"`),
		// s3: clicks another mesh.
		ev("s3", "session_start", 0, ""), ev("s3", "pointer_click", 10, `,"hitMesh":"lamp"`),
		// s4: no session_start at all.
		ev("s4", "pointer_click", 10, `,"hitMesh":"door"`),
	)
	if r := h.collect(h.a.Ingest, batch, nil); r.status != 200 {
		t.Fatal(r.status, string(r.body))
	}
	h.sync()
	steps := `[{"type":"session_start"},{"type":"pointer_click","mesh":"door","label":"clicked"},{"type":"mesh_interaction","name":"grab"}]`
	var rows []struct{ Step, Sessions int }
	if st := h.getJSON("/api/v1/funnel?steps="+url.QueryEscape(steps), h.a.Query, &rows); st != 200 {
		t.Fatalf("funnel: %d", st)
	}
	if fmt.Sprint(rows) != "[{0 3} {1 2} {2 1}]" {
		t.Errorf("funnel %v", rows)
	}
	// The same event reaches two steps in a row.
	same := `[{"type":"pointer_click"},{"type":"pointer_click","mesh":"door"}]`
	h.getJSON("/api/v1/funnel?steps="+url.QueryEscape(same), h.a.Query, &rows)
	if fmt.Sprint(rows) != "[{0 4} {1 3}]" {
		t.Errorf("same-event funnel %v", rows)
	}
	// b sees none of a's sessions.
	h.getJSON("/api/v1/funnel?steps="+url.QueryEscape(steps), h.b.Query, &rows)
	if fmt.Sprint(rows) != "[{0 0} {1 0} {2 0}]" {
		t.Errorf("b's funnel %v", rows)
	}
	for _, bad := range []string{"", "steps=x", "steps=" + url.QueryEscape(`[{"type":"session_start"}]`),
		"steps=" + url.QueryEscape(`[{"type":"nope"},{"type":"custom"}]`), "steps=" + url.QueryEscape(`[{"type":"custom","name":""},{"type":"custom"}]`)} {
		r := h.do("GET", "/api/v1/funnel?"+bad, nil, map[string]string{"x-api-key": h.a.Query})
		if r.status != 400 || !strings.Contains(string(r.body), "steps") {
			t.Errorf("%.40s: %d %s", bad, r.status, r.body)
		}
	}
}

// TestFunnelNeedsRetention: without raw retention the funnel says why.
func TestFunnelNeedsRetention(t *testing.T) {
	h := newReadHarness(t, nil)
	steps := url.QueryEscape(`[{"type":"session_start"},{"type":"session_end"}]`)
	r := h.do("GET", "/api/v1/funnel?steps="+steps, nil, map[string]string{"x-api-key": h.a.Query})
	if r.status != 403 || !strings.Contains(string(r.body), "raw session retention is disabled") {
		t.Errorf("%d %s", r.status, r.body)
	}
}
