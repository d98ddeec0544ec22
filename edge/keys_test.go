package edge_test

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestKeyAdministrationOverHTTP(t *testing.T) {
	h := newHarness(t, nil)
	admin := map[string]string{"x-api-key": h.a.Admin}
	var list []struct{ ID, Caps string }
	if st := h.getJSON("/api/v1/keys", h.a.Admin, &list); st != 200 || len(list) != 3 {
		t.Fatalf("list: %d %v", st, list)
	}
	for _, k := range list {
		if strings.HasPrefix(k.ID, "uz") || len(k.ID) != 12 {
			t.Fatalf("listing shows more than an id: %+v", k)
		}
	}
	r := h.do("POST", "/api/v1/keys", []byte(`{"caps":"ingest"}`), admin)
	var created struct{ ID, Caps, Key string }
	if json.Unmarshal(r.body, &created); r.status != 201 || created.Caps != "ingest" || !strings.HasPrefix(created.Key, "uzi_") {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	ok := batchOf(validEvent("scene_change", ""))
	if r := h.collect(created.Key, ok, nil); r.status != 200 {
		t.Fatalf("new key ingests: %d", r.status)
	}
	// Other projects, and non-admin keys, cannot touch a's keys.
	if r := h.do("DELETE", "/api/v1/keys/"+created.ID, nil, map[string]string{"x-api-key": h.b.Admin}); r.status != 404 {
		t.Fatalf("b revoked a's key: %d", r.status)
	}
	if r := h.do("DELETE", "/api/v1/keys/"+created.ID, nil, map[string]string{"x-api-key": h.a.Query}); r.status != 403 {
		t.Fatalf("query key revoked: %d", r.status)
	}
	if r := h.do("POST", "/api/v1/keys", []byte(`{"caps":"root"}`), admin); r.status != 400 {
		t.Fatalf("bad caps: %d", r.status)
	}
	if r := h.do("DELETE", "/api/v1/keys/"+created.ID, nil, admin); r.status != 200 || !strings.Contains(string(r.body), created.ID) {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if r := h.collect(created.Key, ok, nil); r.status != 401 {
		t.Fatalf("revoked key still ingests: %d", r.status)
	}
	if r := h.do("DELETE", "/api/v1/keys/"+created.ID, nil, admin); r.status != 404 {
		t.Fatalf("second revoke: %d", r.status)
	}
	if r := h.do("PUT", "/api/v1/keys", nil, admin); r.status != 405 {
		t.Fatalf("PUT: %d", r.status)
	}
	if strings.Contains(h.logs.String(), created.Key) {
		t.Fatal("a key reached the logs")
	}
}
