package edge_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/uptimizr/edge/core"
)

// encodeAll percent-encodes every byte of s: the strictest form a client
// may send.
func encodeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// TestPathIDsArePercentEncoded ingests sessions whose ids hold "/", "%",
// "?", "#", spaces, "+", non-ASCII text and dot segments through the real
// collect path, then reads each one back through every route that takes a
// session id — in the path (meta, raw events, HEAD) and in the session
// query parameter — with the id percent-encoded as url.PathEscape does it
// and with every byte encoded. Each answer is about that session and no
// other, although "a", "b" and "a/b" all exist.
func TestPathIDsArePercentEncoded(t *testing.T) {
	h := newReadHarness(t, func(c *core.Config) { c.RawRetention = true })
	ids := []string{"sess/1", "a/b", "a", "b", "a/b/c/", "/lead", "50%off", "%41", "what?x=1&y", "frag#1", "with space",
		"plus+sign", "ünï€😀", "..", "../..", "../../keys", "a/../b", "./x", "//", `back\slash`}
	var events []string
	for i, id := range ids {
		js, _ := json.Marshal(id)
		events = append(events,
			`{"type":"session_start","projectId":"a","sessionId":`+string(js)+`,"ts":`+fmt.Sprint(1795892750000+i*10)+`,"sdkVersion":"0.5.0","device":{"engine":"webgl2"}}`,
			`{"type":"scene_change","projectId":"a","sessionId":`+string(js)+`,"ts":`+fmt.Sprint(1795892750001+i*10)+`,"sdkVersion":"0.5.0"}`)
	}
	r := h.collect(h.a.Ingest, batchOf(events...), nil)
	if r.status != 200 || num(r.json(t), "accepted") != len(events) {
		t.Fatalf("ingest: %d %s", r.status, r.body)
	}
	h.sync()
	q := map[string]string{"x-api-key": h.a.Query}
	for _, id := range ids {
		for _, enc := range []string{url.PathEscape(id), encodeAll(id)} {
			base := "/api/v1/sessions/" + enc
			var meta struct {
				SessionID string `json:"session_id"`
				Events    int
			}
			if r := h.do("GET", base+"/meta", nil, q); r.status != 200 || json.Unmarshal(r.body, &meta) != nil || meta.SessionID != id || meta.Events != 2 {
				t.Errorf("%q as %s: meta %d %s", id, enc, r.status, r.body)
			}
			r := h.do("GET", base+"/events?format=ndjson", nil, q)
			var got []string
			sc := bufio.NewScanner(bytes.NewReader(r.body))
			for sc.Scan() {
				var ev struct{ SessionID string }
				json.Unmarshal(sc.Bytes(), &ev)
				got = append(got, ev.SessionID)
			}
			if r.status != 200 || len(got) != 2 || got[0] != id || got[1] != id {
				t.Errorf("%q as %s: events %d %q", id, enc, r.status, got)
			}
			if r := h.do("HEAD", base+"/events", nil, q); r.status != 200 {
				t.Errorf("%q as %s: HEAD events %d", id, enc, r.status)
			}
		}
		// The session query parameter (query encoding: "+" is a space,
		// so a plus is sent as %2B).
		var rows []struct {
			SessionID string `json:"session_id"`
		}
		if st := h.getJSON("/api/v1/sessions?session="+url.QueryEscape(id), h.a.Query, &rows); st != 200 || len(rows) != 1 || rows[0].SessionID != id {
			t.Errorf("%q: ?session= gives %d %+v", id, st, rows)
		}
		var counts []struct {
			EventType string `json:"event_type"`
			Count     int
		}
		if st := h.getJSON("/api/v1/event-counts?session="+url.QueryEscape(id), h.a.Query, &counts); st != 200 || len(counts) != 2 {
			t.Errorf("%q: event-counts?session= gives %d %+v", id, st, counts)
		}
	}
	// Unknown ids, encoded or not, are 404 on both routes; so is another
	// project's session.
	for _, path := range []string{"/api/v1/sessions/a%2Fz/meta", "/api/v1/sessions/a%2Fz/events", "/api/v1/sessions/sess/meta"} {
		if r := h.do("GET", path, nil, q); r.status != 404 {
			t.Errorf("%s: %d %s", path, r.status, r.body)
		}
	}
	if r := h.do("GET", "/api/v1/sessions/sess%2F1/meta", nil, map[string]string{"x-api-key": h.b.Query}); r.status != 404 {
		t.Errorf("b reads a's session: %d %s", r.status, r.body)
	}
}

// TestOtherPathIDsAreDecoded: the other routes with an id in the path —
// scene ids, plugin names, quarantine ids, key ids — decode it the same
// way: an encoded "/" stays inside the id instead of splitting the path.
func TestOtherPathIDsAreDecoded(t *testing.T) {
	h := newHarness(t, nil)
	admin := map[string]string{"x-api-key": h.a.Admin}
	// A scene id written with encoded characters is the decoded id.
	rep := `{"version":1,"kind":"aabb","sceneId":"a:b.c","bounds":[0,0,0,1,1,1],"upAxis":"y","unitScale":1,"meshCount":0,"contentHash":"h","capturedAt":1,"sdkVersion":"1","meshes":[]}`
	if r := h.do("PUT", "/api/v1/scenes/a%3Ab%2Ec/representation", []byte(rep), map[string]string{"x-api-key": h.a.Admin, "content-type": "application/json"}); r.status != 201 {
		t.Fatalf("PUT with an encoded scene id: %d %s", r.status, r.body)
	}
	if r := h.do("GET", "/api/v1/scenes/a:b.c/representation", nil, admin); r.status != 200 || !strings.Contains(string(r.body), `"sceneId":"a:b.c"`) {
		t.Fatalf("GET: %d %s", r.status, r.body)
	}
	// A scene id with an encoded "/" is one (invalid) id, not two segments.
	if r := h.do("GET", "/api/v1/scenes/a%2Fb/representation", nil, admin); r.status != 400 || !strings.Contains(string(r.body), "invalid scene id") {
		t.Errorf("scene id a/b: %d %s", r.status, r.body)
	}
	// Plugin names and quarantine ids: the handler sees the whole id (the
	// name check refuses "a/b"; "a.b", encoded, is a plugin it looks for).
	if r := h.do("POST", "/api/v1/plugins/a%2Fb/rollback", nil, admin); r.status != 400 || !strings.Contains(string(r.body), "invalid plugin name") {
		t.Errorf("plugin a/b: %d %s", r.status, r.body)
	}
	if r := h.do("POST", "/api/v1/plugins/a%2Eb/rollback", nil, admin); r.status != 404 || !strings.Contains(string(r.body), "a.b") {
		t.Errorf("plugin a.b: %d %s", r.status, r.body)
	}
	if r := h.do("DELETE", "/api/v1/quarantine/x%2Fy", nil, admin); r.status != 404 {
		t.Errorf("quarantine id x/y: %d %s", r.status, r.body)
	}
	// A key id, every byte encoded, revokes that key.
	var created struct{ ID, Key string }
	r := h.do("POST", "/api/v1/keys", []byte(`{"caps":"ingest"}`), admin)
	if json.Unmarshal(r.body, &created); r.status != 201 || created.ID == "" {
		t.Fatalf("create key: %d %s", r.status, r.body)
	}
	if r := h.do("DELETE", "/api/v1/keys/"+encodeAll(created.ID), nil, admin); r.status != 200 || !strings.Contains(string(r.body), created.ID) {
		t.Fatalf("revoke by an encoded id: %d %s", r.status, r.body)
	}
	if r := h.collect(created.Key, batchOf(validEvent("scene_change", "")), nil); r.status != 401 {
		t.Fatalf("the revoked key still ingests: %d", r.status)
	}
	if r := h.do("DELETE", "/api/v1/keys/"+created.ID+"%2Fx", nil, admin); r.status != 404 {
		t.Errorf("key id with an encoded slash: %d %s", r.status, r.body)
	}
}
