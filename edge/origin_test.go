package edge_test

import (
	"strings"
	"testing"

	"github.com/uptimizr/edge/core"
)

// TestOriginEnforcement: COLLECTOR_CORS_ORIGINS restricts who may post and
// query, not only which responses carry CORS headers. A request from an
// origin not on the list gets 403 naming the variable, and nothing of it is
// stored, whichever way its key comes (header, ?key= as sendBeacon sends it,
// the /k/<key>/ base URL).
func TestOriginEnforcement(t *testing.T) {
	h := newHarness(t, func(c *core.Config) { c.CORSOrigins = []string{"https://shop.example.com"} })
	body := batchOf(validEvent("scene_change", ""))
	beacon := map[string]string{"origin": "https://evil.example.com", "content-type": "text/plain"}

	refused := func(what string, r resp) {
		t.Helper()
		if r.status != 403 || !strings.Contains(string(r.body), "COLLECTOR_CORS_ORIGINS") || !strings.Contains(string(r.body), "evil.example.com") {
			t.Errorf("%s: %d %s, want 403 naming the origin and COLLECTOR_CORS_ORIGINS", what, r.status, r.body)
		}
		if r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: the refused origin got CORS headers", what)
		}
	}
	refused("POST with the key header", h.collect(h.a.Ingest, body, beacon))
	refused("sendBeacon with ?key=", h.do("POST", "/api/v1/collect?key="+h.a.Ingest, body, beacon))
	refused("POST to the /k/ base", h.do("POST", "/k/"+h.a.Ingest+"/api/v1/collect", body, beacon))
	refused("a query", h.do("GET", "/api/v1/event-counts", nil, map[string]string{"x-api-key": h.a.Query, "origin": "https://evil.example.com"}))
	refused("an admin write", h.do("PUT", "/api/v1/channels", []byte(`{"gaze":true}`), map[string]string{"x-api-key": h.a.Admin, "origin": "https://evil.example.com"}))
	// A look-alike of the allowed origin is another origin.
	for _, o := range []string{"https://shop.example.com.evil.example.com", "http://shop.example.com", "https://shop.example.com:8443", "null"} {
		if r := h.collect(h.a.Ingest, body, map[string]string{"origin": o}); r.status != 403 {
			t.Errorf("origin %q: %d, want 403", o, r.status)
		}
	}
	if n := h.logRecords("a"); n != 0 {
		t.Fatalf("%d ingest-log records after refused requests, want 0", n)
	}
	if p := h.store.Registry().Project("a"); p.Channels().Gaze {
		t.Fatal("a refused admin write changed the channels")
	}

	// The allowed origin, and no Origin at all (server to server), go on.
	if r := h.collect(h.a.Ingest, body, map[string]string{"origin": "https://shop.example.com", "content-type": "text/plain"}); r.status != 200 {
		t.Fatalf("allowed origin: %d %s", r.status, r.body)
	}
	if r := h.collect(h.a.Ingest, body, nil); r.status != 200 {
		t.Fatalf("no Origin: %d %s", r.status, r.body)
	}
	if n := h.logRecords("a"); n != 2 {
		t.Fatalf("%d ingest-log records, want the 2 allowed requests", n)
	}
	m := h.metrics()
	for _, want := range []string{`uptimizr_origin_checks_total{outcome="refused"} 9`, `uptimizr_origin_checks_total{outcome="allowed"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !strings.Contains(m, `uptimizr_origin_checks_total{outcome="absent"}`) {
		t.Error("metrics lack the absent outcome")
	}
}

// TestOriginRequired: with COLLECTOR_REQUIRE_ORIGIN a request without Origin
// is refused too, but the probes stay open.
func TestOriginRequired(t *testing.T) {
	h := newHarness(t, func(c *core.Config) {
		c.CORSOrigins = []string{"https://shop.example.com"}
		c.RequireOrigin = true
	})
	body := batchOf(validEvent("scene_change", ""))
	r := h.collect(h.a.Ingest, body, nil)
	if r.status != 403 || !strings.Contains(string(r.body), "COLLECTOR_REQUIRE_ORIGIN") {
		t.Fatalf("no Origin: %d %s", r.status, r.body)
	}
	if r := h.collect(h.a.Ingest, body, map[string]string{"origin": "https://shop.example.com"}); r.status != 200 {
		t.Fatalf("allowed origin: %d %s", r.status, r.body)
	}
	for _, p := range []string{"/health", "/ready", "/metrics"} {
		if r := h.do("GET", p, nil, nil); r.status != 200 {
			t.Errorf("%s without Origin: %d", p, r.status)
		}
	}
	if n := h.logRecords("a"); n != 1 {
		t.Fatalf("%d records, want 1", n)
	}
	if !strings.Contains(h.metrics(), `uptimizr_origin_checks_total{outcome="absent_refused"} 1`) {
		t.Error("absent_refused not counted")
	}
}

// TestOriginDefaultAndAny: the default (no list) takes no browser origin at
// all; "*" takes every one.
func TestOriginDefaultAndAny(t *testing.T) {
	body := batchOf(validEvent("scene_change", ""))
	none := newHarness(t, nil)
	if r := none.collect(none.a.Ingest, body, map[string]string{"origin": "https://shop.example.com"}); r.status != 403 {
		t.Fatalf("empty list, a browser origin: %d", r.status)
	}
	if n := none.logRecords("a"); n != 0 {
		t.Fatalf("stored %d records from a refused origin", n)
	}
	anyOrigin := newHarness(t, func(c *core.Config) { c.CORSOrigins = []string{"*"} })
	r := anyOrigin.collect(anyOrigin.a.Ingest, body, map[string]string{"origin": "https://anything.example.org"})
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "https://anything.example.org" {
		t.Fatalf("* list: %d %v", r.status, r.header)
	}
}
