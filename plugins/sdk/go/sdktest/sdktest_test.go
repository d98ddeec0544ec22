package sdktest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEncodeDecode(t *testing.T) {
	b := EncodeBatch([][]byte{[]byte(`{"a":1}`), nil})
	if string(b[:8]) != "\x01\x00\x00\x00\x02\x00\x00\x00" || len(b) != 8+4+7+4 {
		t.Fatalf("batch % x", b)
	}
	out := []byte("\x03\x00\x00\x00\x00\x01\x02\x02\x00\x00\x00{}")
	res, err := DecodeOutput(out, 3)
	if err != nil || len(res) != 3 || res[0].Op != OpKeep || res[1].Op != OpDrop || string(res[2].JSON) != "{}" {
		t.Fatalf("%v %v", res, err)
	}
	out[len(out)-1] = 'x' // the replacement is a copy
	if string(res[2].JSON) != "{}" {
		t.Error("replacement aliases the output")
	}
	for name, bad := range map[string]string{
		"short":          "\x01\x00",
		"count":          "\x02\x00\x00\x00\x00",
		"truncated":      "\x02\x00\x00\x00\x00",
		"unknown op":     "\x01\x00\x00\x00\x07",
		"short length":   "\x01\x00\x00\x00\x02\x01\x00",
		"short json":     "\x01\x00\x00\x00\x02\x05\x00\x00\x00{}",
		"trailing bytes": "\x01\x00\x00\x00\x00\x00",
	} {
		want := 1
		if name == "count" {
			want = 3
		}
		if _, err := DecodeOutput([]byte(bad), want); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCanonical(t *testing.T) {
	got, err := Canonical([]byte(` {"ts": 5, "zeta": [1, 2], "type": "custom", "alpha": {"b": 1},
		"sessionId": "s", "projectId": "p", "sdkVersion": "1", "url": "u", "name": "n"} `))
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ VisitorID string }
	if err := json.Unmarshal(got, &m); err != nil || len(m.VisitorID) != 32 {
		t.Fatalf("visitorId %q (%v)", m.VisitorID, err) // derived from the session id
	}
	want := `{"type":"custom","projectId":"p","sessionId":"s","visitorId":"` + m.VisitorID +
		`","ts":5,"sdkVersion":"1","sceneId":"default","url":"u","alpha":{"b":1},"name":"n","zeta":[1,2]}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if _, err := Canonical([]byte(`[1]`)); err == nil {
		t.Error("array accepted")
	}
	if _, err := Canonical([]byte(`null`)); err == nil {
		t.Error("null accepted")
	}
}

func TestLoadFixture(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"batch_a.json": `{"schemaVersion":"1.0","events":[{"type":"scene_change","sessionId":"s","ts":1}]}`,
		"batch_b.json": `[{"type":"scene_change","sessionId":"s","ts":2}]`,
	} {
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	paths := Fixtures(dir)
	if len(paths) != 2 {
		t.Fatalf("fixtures %v", paths)
	}
	for _, p := range paths {
		events, err := LoadFixture(p)
		if err != nil || len(events) != 1 || !strings.HasPrefix(string(events[0]), `{"type":"scene_change","sessionId":"s","visitorId":"`) {
			t.Errorf("%s: %q %v", p, events, err)
		}
	}
	if Fixtures(filepath.Join(dir, "missing")) != nil {
		t.Error("missing directory has fixtures")
	}
}
