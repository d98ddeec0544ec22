package edge_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/storage"
)

func num(m map[string]any, k string) int {
	f, _ := m[k].(float64)
	return int(f)
}

func TestCollectEncodingsAndAuthPaths(t *testing.T) {
	h := newHarness(t, nil)
	fx := loadFixtures(t)
	total := 0
	for _, f := range fx {
		wantAcc, wantFilt := expectDefault(f.events)
		for _, enc := range []string{"identity", "gzip", "deflate", "deflate-raw", "zstd", "br"} {
			for _, auth := range []string{"header", "query", "path"} {
				t.Run(f.name+"/"+enc+"/"+auth, func(t *testing.T) {
					body := compress(t, enc, f.body)
					hdr := map[string]string{"content-type": "text/plain;charset=UTF-8"}
					if enc != "identity" {
						hdr["content-encoding"] = strings.TrimSuffix(enc, "-raw")
					}
					var r resp
					switch auth {
					case "header":
						r = h.collect(h.a.Ingest, body, hdr)
					case "query":
						hdr["content-type"] = "application/json"
						r = h.do("POST", "/api/v1/collect?key="+url.QueryEscape(h.a.Ingest), body, hdr)
					case "path":
						r = h.do("POST", "/k/"+h.a.Ingest+"/api/v1/collect", body, hdr)
					}
					if r.status != 200 {
						t.Fatalf("status %d: %s", r.status, r.body)
					}
					m := r.json(t)
					if num(m, "accepted") != wantAcc || num(m, "filtered") != wantFilt || num(m, "rejected") != 0 || num(m, "quarantined") != 0 {
						t.Fatalf("got %s, want accepted=%d filtered=%d", r.body, wantAcc, wantFilt)
					}
					if _, ok := m["errors"]; ok {
						t.Fatalf("errors listed for a clean batch: %s", r.body)
					}
					total += wantAcc
				})
			}
		}
	}
	stored := h.storedEvents("a")
	if len(stored) != total {
		t.Fatalf("stored %d events, responses acknowledged %d", len(stored), total)
	}
	for _, e := range stored {
		if e.JSON["projectId"] != "a" {
			t.Fatalf("stored projectId %v", e.JSON["projectId"])
		}
		if e.Type == core.TypeMeshVisibility || e.Type == core.TypeHoverDwell {
			t.Fatalf("gated type %v stored", e.Type)
		}
		if _, ok := e.JSON["hitPoint"]; ok && e.Type == core.TypeCameraSample {
			t.Fatal("camera_sample.hitPoint stored with gaze off")
		}
		if _, ok := e.JSON["hitMesh"]; ok && e.Type == core.TypeCameraSample {
			t.Fatal("camera_sample.hitMesh stored with gaze off")
		}
	}
	met := h.metrics()
	for _, want := range []string{
		`uptimizr_ingest_bytes_total{encoding="zstd"}`,
		`uptimizr_events_total{type="camera_sample",outcome="accepted"}`,
		`uptimizr_events_stripped_total{channel="gaze"}`,
		`uptimizr_http_requests_total{route="collect",status="200"}`,
		`uptimizr_ingest_commit_seconds_bucket`,
	} {
		if !strings.Contains(met, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(met, `uptimizr_events_stripped_total{channel="gaze"} 0`) {
		t.Error("gaze strips not counted")
	}
}

func TestNDJSON(t *testing.T) {
	h := newHarness(t, nil)
	f := loadFixtures(t)[0]
	var b bytes.Buffer
	for _, e := range f.events {
		line, _ := json.Marshal(e)
		b.Write(line)
		b.WriteString("\r\n\n")
	}
	r := h.collect(h.a.Ingest, compress(t, "gzip", b.Bytes()), map[string]string{"content-type": "application/x-ndjson", "content-encoding": "gzip"})
	wantAcc, wantFilt := expectDefault(f.events)
	m := r.json(t)
	if r.status != 200 || num(m, "accepted") != wantAcc || num(m, "filtered") != wantFilt {
		t.Fatalf("%d %s", r.status, r.body)
	}
	// A line that is not JSON fails the whole body, and nothing is stored.
	before := len(h.storedEvents("a"))
	r = h.collect(h.a.Ingest, []byte(`{"type":"scene_change","projectId":"x","sessionId":"s","ts":1,"sdkVersion":"1"}`+"\n{oops\n"), map[string]string{"content-type": "application/x-ndjson"})
	if r.status != 400 || !strings.Contains(r.json(t)["error"].(string), "line 2") {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if len(h.storedEvents("a")) != before {
		t.Fatal("a rejected body stored events")
	}
	// Events of a refused body are not counted as rejected or filtered
	// either: the first line's bad ts made it a rejected scene_change.
	rejectedSceneChanges := func() string {
		for _, l := range strings.Split(h.metrics(), "\n") {
			if strings.HasPrefix(l, `uptimizr_events_total{type="scene_change",outcome="rejected"}`) {
				return l
			}
		}
		return ""
	}
	was := rejectedSceneChanges()
	r = h.collect(h.a.Ingest, []byte(`{"type":"scene_change","projectId":"x","sessionId":"s","ts":-1,"sdkVersion":"1"}`+"\n{oops\n"), map[string]string{"content-type": "application/x-ndjson"})
	if r.status != 400 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if now := rejectedSceneChanges(); now != was {
		t.Fatalf("a refused body's event was counted: %q, before %q", now, was)
	}
	// The same event in a well-formed body is counted.
	r = h.collect(h.a.Ingest, []byte(`{"type":"scene_change","projectId":"x","sessionId":"s","ts":-1,"sdkVersion":"1"}`+"\n"), map[string]string{"content-type": "application/x-ndjson"})
	if r.status != 200 || rejectedSceneChanges() == was {
		t.Fatalf("%d %s; counter %q", r.status, r.body, rejectedSceneChanges())
	}
}

func validEvent(typ string, extra string) string {
	return `{"type":"` + typ + `","projectId":"a","sessionId":"s1","ts":1795892750979,"sdkVersion":"0.5.0"` + extra + `}`
}

func batchOf(events ...string) []byte {
	return []byte(`{"schemaVersion":"1.0","events":[` + strings.Join(events, ",") + `]}`)
}

func TestStatusCodes(t *testing.T) {
	h := newHarness(t, func(c *core.Config) { c.BodyLimit = 64 << 10 })
	ok := batchOf(validEvent("scene_change", ""))
	bigZeros := bytes.Repeat([]byte(" "), 10<<20)
	bomb := compress(t, "gzip", append(append([]byte(`{"events":[`), bigZeros...), ']', '}'))
	many := make([]string, 1001)
	for i := range many {
		many[i] = validEvent("scene_change", "")
	}
	cases := []struct {
		name   string
		key    string
		path   string
		body   []byte
		hdr    map[string]string
		status int
		msg    string
	}{
		{"missing key", "", "", ok, nil, 401, "missing API key"},
		{"unknown key", "uzi_nope", "", ok, nil, 401, "unknown or revoked"},
		{"query key cannot ingest", h.a.Query, "", ok, nil, 403, "ingest capability"},
		{"admin key cannot ingest", h.a.Admin, "", ok, nil, 403, "ingest capability"},
		{"bad encoding", h.a.Ingest, "", ok, map[string]string{"content-encoding": "compress"}, 415, "Content-Encoding"},
		{"stacked encodings", h.a.Ingest, "", ok, map[string]string{"content-encoding": "gzip, br"}, 415, "Content-Encoding"},
		{"bad content type", h.a.Ingest, "", ok, map[string]string{"content-type": "application/xml"}, 415, "Content-Type"},
		{"malformed json", h.a.Ingest, "", []byte(`{"events":[`), nil, 400, "malformed JSON"},
		{"no events", h.a.Ingest, "", []byte(`{"schemaVersion":"1.0"}`), nil, 400, `missing "events"`},
		{"events not array", h.a.Ingest, "", []byte(`{"events":{}}`), nil, 400, "must be an array"},
		{"empty batch", h.a.Ingest, "", []byte(`{"events":[]}`), nil, 400, "empty batch"},
		{"empty body", h.a.Ingest, "", nil, nil, 400, "empty body"},
		{"1001 events", h.a.Ingest, "", batchOf(many...), map[string]string{}, 413, ""},
		{"schema version", h.a.Ingest, "", []byte(`{"schemaVersion":"2.0","events":[` + validEvent("scene_change", "") + `]}`), nil, 400, "schemaVersion"},
		{"corrupt gzip", h.a.Ingest, "", []byte("\x1f\x8b\x08\x00garbage"), map[string]string{"content-encoding": "gzip"}, 400, "gzip stream is truncated"},
		{"truncated zstd", h.a.Ingest, "", compress(t, "zstd", ok)[:10], map[string]string{"content-encoding": "zstd"}, 400, "truncated"},
		{"gzip bomb", h.a.Ingest, "", bomb, map[string]string{"content-encoding": "gzip"}, 413, "decompressed body exceeds"},
		{"wire too large", h.a.Ingest, "", bytes.Repeat([]byte("x"), 65<<10), nil, 413, "on the wire"},
		{"get on collect", h.a.Ingest, "", nil, map[string]string{"method": "GET"}, 405, "method not allowed"},
		{"unknown path", h.a.Ingest, "/api/v1/nope", nil, nil, 404, "not found"},
		{"bad path key", "", "/k/uzi_wrong/api/v1/collect", ok, nil, 401, "unknown or revoked"},
	}
	// 1001 events of ~100 bytes exceed a 64 KiB body limit; check the count
	// rule with a larger limit below.
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method := "POST"
			hdr := map[string]string{"content-type": "application/json"}
			if c.key != "" {
				hdr["x-api-key"] = c.key
			}
			for k, v := range c.hdr {
				if k == "method" {
					method = v
					continue
				}
				hdr[k] = v
			}
			path := c.path
			if path == "" {
				path = "/api/v1/collect"
			}
			r := h.do(method, path, c.body, hdr)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			msg, _ := r.json(t)["error"].(string)
			if msg == "" || !strings.Contains(msg, c.msg) {
				t.Fatalf("error %q does not say %q", msg, c.msg)
			}
		})
	}
	if n := len(h.storedEvents("a")); n != 0 {
		t.Fatalf("%d events stored from failed requests", n)
	}
	// The batch-size rule, under a body limit that lets 1001 events through.
	h2 := newHarness(t, nil)
	r := h2.collect(h2.a.Ingest, batchOf(many...), nil)
	if r.status != 400 || !strings.Contains(string(r.body), "at most 1000") {
		t.Fatalf("1001 events: %d %s", r.status, r.body)
	}
	r = h2.collect(h2.a.Ingest, batchOf(many[:1000]...), nil)
	if r.status != 200 || num(r.json(t), "accepted") != 1000 {
		t.Fatalf("1000 events: %d %s", r.status, r.body)
	}
}

func TestPerEventRejection(t *testing.T) {
	h := newHarness(t, nil)
	events := []string{
		validEvent("scene_change", ""),
		validEvent("frame_perf", `,"fps":-1`),
		`{"type":"nope","projectId":"a","sessionId":"s1","ts":1,"sdkVersion":"1"}`,
		validEvent("frame_perf", `,"fps":60`),
		`{"type":"scene_change","projectId":"a","sessionId":"s1","ts":1.5,"sdkVersion":"1"}`,
		`[1,2]`,
		validEvent("camera_sample", `,"position":[1,2],"direction":[0,0,1]`),
		validEvent("custom", `,"name":"x","props":{"a":1},"unknownTop":123`),
	}
	for i := 0; i < 30; i++ {
		events = append(events, validEvent("viewport_resize", `,"width":0,"height":10`))
	}
	r := h.collect(h.a.Ingest, batchOf(events...), nil)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var res struct {
		Accepted, Rejected, Filtered int
		Errors                       []struct {
			Index  int
			Reason string
		}
	}
	json.Unmarshal(r.body, &res)
	if res.Accepted != 3 || res.Rejected != 35 || len(res.Errors) != 20 {
		t.Fatalf("got %+v", res)
	}
	wantIdx := []int{1, 2, 4, 5, 6, 8}
	for i, w := range wantIdx {
		if res.Errors[i].Index != w || res.Errors[i].Reason == "" {
			t.Fatalf("error %d = %+v, want index %d", i, res.Errors[i], w)
		}
	}
	if !strings.Contains(res.Errors[0].Reason, "fps") || !strings.Contains(res.Errors[2].Reason, "ts") {
		t.Fatalf("reasons do not name the field: %+v", res.Errors[:3])
	}
	stored := h.storedEvents("a")
	if len(stored) != 3 {
		t.Fatalf("stored %d", len(stored))
	}
	for _, e := range stored {
		if _, ok := e.JSON["unknownTop"]; ok {
			t.Fatal("unknown top-level field stored")
		}
		if e.JSON["sceneId"] != "default" {
			t.Fatalf("sceneId default: %v", e.JSON["sceneId"])
		}
	}
}

func TestTenantIsolationOfWrites(t *testing.T) {
	h := newHarness(t, nil)
	ev := `{"type":"scene_change","projectId":"b","visitorId":"forged","sessionId":"s","ts":5,"sdkVersion":"1"}`
	for _, path := range []string{"/api/v1/collect?projectId=b", "/api/v1/collect"} {
		r := h.do("POST", path, batchOf(ev), map[string]string{"x-api-key": h.a.Ingest, "x-project-id": "b"})
		if r.status != 200 || num(r.json(t), "accepted") != 1 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	}
	if n := len(h.storedEvents("b")); n != 0 {
		t.Fatalf("key of a wrote %d events into b", n)
	}
	a := h.storedEvents("a")
	if len(a) != 2 {
		t.Fatalf("a has %d", len(a))
	}
	for _, e := range a {
		if e.JSON["projectId"] != "a" || e.JSON["visitorId"] == "forged" || len(e.JSON["visitorId"].(string)) != 32 {
			t.Fatalf("stored %s", e.Raw)
		}
	}
}

func TestGatingByAdminEndpoint(t *testing.T) {
	h := newHarness(t, nil)
	f := loadFixtures(t)[0]
	// Channels can be read with query or admin keys; only admin may change them.
	r := h.do("GET", "/api/v1/channels", nil, map[string]string{"x-api-key": h.a.Query})
	if r.status != 200 || r.json(t)["meshPicks"] != true || r.json(t)["gaze"] != false {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if r := h.do("PUT", "/api/v1/channels", []byte(`{"gaze":true}`), map[string]string{"x-api-key": h.a.Query}); r.status != 403 {
		t.Fatalf("query key changed channels: %d", r.status)
	}
	if r := h.do("PUT", "/api/v1/channels", []byte(`{"gazer":true}`), map[string]string{"x-api-key": h.a.Admin}); r.status != 400 {
		t.Fatalf("unknown channel: %d %s", r.status, r.body)
	}
	if r := h.do("PUT", "/api/v1/channels", []byte(`{"gaze":"yes"}`), map[string]string{"x-api-key": h.a.Admin}); r.status != 400 {
		t.Fatalf("non-bool: %d %s", r.status, r.body)
	}
	body := `{"meshVisibility":true,"boundingBox":true,"hoverDwell":true,"gaze":true,"captureErrors":true,"resourceSample":true}`
	r = h.do("PUT", "/api/v1/channels", []byte(body), map[string]string{"x-api-key": h.a.Admin})
	if r.status != 200 || r.json(t)["gaze"] != true {
		t.Fatalf("%d %s", r.status, r.body)
	}
	r = h.collect(h.a.Ingest, f.body, nil)
	if m := r.json(t); num(m, "accepted") != len(f.events) || num(m, "filtered") != 0 {
		t.Fatalf("all channels on: %s", r.body)
	}
	wantHit, wantBounds := 0, 0
	for _, e := range f.events {
		if _, ok := e["hitPoint"]; ok && e["type"] == "camera_sample" {
			wantHit++
		}
		if _, ok := e["bounds"]; ok {
			wantBounds++
		}
	}
	hit, bounds := 0, 0
	for _, e := range h.storedEvents("a") {
		if _, ok := e.JSON["hitPoint"]; ok && e.Type == core.TypeCameraSample {
			hit++
		}
		if _, ok := e.JSON["bounds"]; ok {
			bounds++
		}
	}
	if wantHit == 0 || wantBounds == 0 || hit != wantHit || bounds != wantBounds {
		t.Fatalf("with gaze and boundingBox on: hitPoint %d/%d, bounds %d/%d kept", hit, wantHit, bounds, wantBounds)
	}
	// Project b keeps its own defaults.
	r = h.collect(h.b.Ingest, f.body, nil)
	wantAcc, wantFilt := expectDefault(f.events)
	if m := r.json(t); num(m, "accepted") != wantAcc || num(m, "filtered") != wantFilt {
		t.Fatalf("b: %s", r.body)
	}
	// meshPicks off drops mesh_interaction.
	h.do("PUT", "/api/v1/channels", []byte(`{"meshPicks":false,"meshVisibility":false,"boundingBox":false}`), map[string]string{"x-api-key": h.a.Admin})
	r = h.collect(h.a.Ingest, f.body, nil)
	picks, vis := 0, 0
	for _, e := range f.events {
		switch e["type"] {
		case "mesh_interaction":
			picks++
		case "mesh_visibility":
			vis++
		}
	}
	if m := r.json(t); num(m, "filtered") != picks+vis {
		t.Fatalf("meshPicks off: %s (picks %d vis %d)", r.body, picks, vis)
	}
}

func TestRetentionOnOff(t *testing.T) {
	f := loadFixtures(t)[0]
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprint("retention=", on), func(t *testing.T) {
			h := newHarness(t, func(c *core.Config) { c.RawRetention = on })
			if r := h.collect(h.a.Ingest, f.body, nil); r.status != 200 {
				t.Fatal(r.status)
			}
			n := h.rawChunkCount("a")
			if on && n == 0 || !on && n != 0 {
				t.Fatalf("retention %v: %d raw chunks", on, n)
			}
		})
	}
}

func TestRevocationTakesEffectAtOnce(t *testing.T) {
	h := newHarness(t, nil)
	ok := batchOf(validEvent("scene_change", ""))
	if r := h.collect(h.a.Ingest, ok, nil); r.status != 200 {
		t.Fatal(r.status)
	}
	if _, err := h.store.Registry().RevokeKey("a", h.a.Ingest); err != nil {
		t.Fatal(err)
	}
	if r := h.collect(h.a.Ingest, ok, nil); r.status != 401 {
		t.Fatalf("revoked key: %d", r.status)
	}
	if r := h.do("POST", "/k/"+h.a.Ingest+"/api/v1/collect", ok, nil); r.status != 401 {
		t.Fatalf("revoked key in path: %d", r.status)
	}
	if r := h.collect(h.b.Ingest, ok, nil); r.status != 200 {
		t.Fatalf("other project's key affected: %d", r.status)
	}
}

func TestNoRawIPUserAgentOrKeyStoredOrLogged(t *testing.T) {
	const ip, ua = "203.0.113.77", "UniqueAgent/9.9 (Probe-OS-7f3a) Chrome/120.0"
	h := newHarness(t, func(c *core.Config) { c.TrustProxy = "true"; c.RawRetention = true })
	f := loadFixtures(t)[0]
	hdr := map[string]string{"x-forwarded-for": ip, "user-agent": ua}
	for i := 0; i < 3; i++ {
		if r := h.do("POST", "/api/v1/collect?key="+h.a.Ingest, f.body, hdr); r.status != 200 {
			t.Fatal(r.status)
		}
		if r := h.do("POST", "/k/"+h.a.Ingest+"/api/v1/collect", f.body, hdr); r.status != 200 {
			t.Fatal(r.status)
		}
	}
	// Failures are logged too; they must not carry client data either.
	h.do("POST", "/api/v1/collect?key=uzi_"+"wrongkey0123", f.body, hdr)
	h.do("POST", "/k/uzi_wrongkey0123/api/v1/collect", []byte("{"), hdr)
	h.store.Close() // flush everything to files
	needles := []string{ip, "Probe-OS-7f3a", "UniqueAgent", h.a.Ingest, "wrongkey0123"}
	filepath.Walk(h.dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				t.Errorf("%s contains %q", p, n)
			}
		}
		return nil
	})
	logs := h.logs.String()
	for _, n := range needles {
		if strings.Contains(logs, n) {
			t.Errorf("logs contain %q", n)
		}
	}
}

func TestVisitorIDAndCoarseUA(t *testing.T) {
	h := newHarness(t, func(c *core.Config) { c.TrustProxy = "true" })
	start := validEvent("session_start", `,"device":{"browser":"forged","os":"forged","engine":"webgl2"}`)
	send := func(ip, ua string) {
		r := h.collect(h.a.Ingest, batchOf(start), map[string]string{"x-forwarded-for": ip, "user-agent": ua})
		if r.status != 200 || num(r.json(t), "accepted") != 1 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	}
	firefox := "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"
	send("198.51.100.1", firefox)
	send("198.51.100.1", firefox)
	send("198.51.100.2", firefox)
	ev := h.storedEvents("a")
	if len(ev) != 3 {
		t.Fatal(len(ev))
	}
	v0, v1, v2 := ev[0].JSON["visitorId"], ev[1].JSON["visitorId"], ev[2].JSON["visitorId"]
	if v0 != v1 || v0 == v2 {
		t.Fatalf("visitor ids %v %v %v", v0, v1, v2)
	}
	dev := ev[0].JSON["device"].(map[string]any)
	if dev["browser"] != "firefox" || dev["os"] != "windows" || dev["engine"] != "webgl2" {
		t.Fatalf("device %v", dev)
	}
}

func TestCORS(t *testing.T) {
	h := newHarness(t, func(c *core.Config) { c.CORSOrigins = []string{"https://shop.example.com"} })
	pre := func(origin string) resp {
		return h.do("OPTIONS", "/api/v1/collect", nil, map[string]string{"origin": origin,
			"access-control-request-method": "POST", "access-control-request-headers": "content-type,x-api-key"})
	}
	r := pre("https://shop.example.com")
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "https://shop.example.com" ||
		r.header.Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "PUT") ||
		!strings.Contains(strings.ToLower(r.header.Get("Access-Control-Allow-Headers")), "x-api-key") {
		t.Fatalf("allowed preflight: %d %v", r.status, r.header)
	}
	r = pre("https://evil.example.com")
	if r.status != 403 || r.header.Get("Access-Control-Allow-Origin") != "" || r.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("foreign preflight: %d %v", r.status, r.header)
	}
	body := batchOf(validEvent("scene_change", ""))
	r = h.collect(h.a.Ingest, body, map[string]string{"origin": "https://shop.example.com", "content-type": "text/plain"})
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "https://shop.example.com" || r.header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("allowed POST: %d %v", r.status, r.header)
	}
	r = h.collect(h.a.Ingest, body, map[string]string{"origin": "https://evil.example.com"})
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("foreign origin echoed")
	}
	// No origins configured: no cross-origin at all.
	h2 := newHarness(t, nil)
	r = h2.do("OPTIONS", "/api/v1/collect", nil, map[string]string{"origin": "https://shop.example.com", "access-control-request-method": "POST"})
	if r.status != 403 || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("no origins: %d %v", r.status, r.header)
	}
}

func TestRateLimits(t *testing.T) {
	h := newHarness(t, func(c *core.Config) { c.IngestRateLimitMax = 3; c.KeyIngestRateLimitMax = 5 })
	body := batchOf(validEvent("scene_change", ""))
	hdrIP := func(ip string) map[string]string { return map[string]string{"x-forwarded-for": ip} }
	// Without a trusted proxy every request comes from 127.0.0.1: the per-IP limit bites at 4.
	for i := 0; i < 3; i++ {
		if r := h.collect(h.a.Ingest, body, nil); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := h.collect(h.a.Ingest, body, nil)
	if r.status != 429 || r.header.Get("Retry-After") == "" || !strings.Contains(r.json(t)["error"].(string), "client address") {
		t.Fatalf("per-IP limit: %d %v %s", r.status, r.header, r.body)
	}
	// Per key: with a trusted proxy and distinct client IPs, the key limit of 5 bites.
	h2 := newHarness(t, func(c *core.Config) { c.TrustProxy = "true"; c.IngestRateLimitMax = 100; c.KeyIngestRateLimitMax = 5 })
	for i := 0; i < 5; i++ {
		if r := h2.collect(h2.a.Ingest, body, hdrIP(fmt.Sprintf("192.0.2.%d", i+1))); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r = h2.collect(h2.a.Ingest, body, hdrIP("192.0.2.99"))
	if r.status != 429 || !strings.Contains(r.json(t)["error"].(string), "API key") {
		t.Fatalf("per-key limit: %d %s", r.status, r.body)
	}
	if r := h2.collect(h2.b.Ingest, body, hdrIP("192.0.2.99")); r.status != 200 {
		t.Fatalf("other key limited: %d", r.status)
	}
	if got := len(h.storedEvents("a")); got != 3 {
		t.Fatalf("limited requests stored events: %d", got)
	}
}

func TestStorageUnavailable(t *testing.T) {
	body := batchOf(validEvent("scene_change", ""))
	// Disk nearly full: the free-space floor is above what any disk has.
	h := newHarness(t, func(c *core.Config) { c.MinFreeDisk = 1 << 62 })
	r := h.collect(h.a.Ingest, body, nil)
	if r.status != 503 || r.header.Get("Retry-After") == "" || !strings.Contains(r.json(t)["error"].(string), "disk") {
		t.Fatalf("disk full: %d %v %s", r.status, r.header, r.body)
	}
	if r := h.do("GET", "/ready", nil, nil); r.status != 503 {
		t.Fatalf("ready while disk full: %d", r.status)
	}
	// A closed store.
	h2 := newHarness(t, nil)
	if r := h2.collect(h2.a.Ingest, body, nil); r.status != 200 {
		t.Fatal(r.status)
	}
	h2.store.Close()
	r = h2.collect(h2.a.Ingest, body, nil)
	if r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Fatalf("closed store: %d %s", r.status, r.body)
	}
	if r := h2.do("GET", "/health", nil, nil); r.status != 200 {
		t.Fatalf("health: %d", r.status)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	h := newHarness(t, nil)
	if r := h.do("GET", "/health", nil, nil); r.status != 200 || r.json(t)["status"] != "ok" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	// Degraded: still alive (200), the reason in the body, until it clears.
	why := `2 fdatasync failures: check the disk "sdb"`
	h.degraded.Store(&why)
	if r := h.do("GET", "/health", nil, nil); r.status != 200 || r.json(t)["status"] != "degraded" || r.json(t)["reason"] != why {
		t.Fatalf("degraded health: %d %s", r.status, r.body)
	}
	// Ready all the same, saying why to look.
	if r := h.do("GET", "/ready", nil, nil); r.status != 200 || r.json(t)["status"] != "ready" || r.json(t)["degraded"] != why {
		t.Fatalf("degraded ready: %d %s", r.status, r.body)
	}
	none := ""
	h.degraded.Store(&none)
	if r := h.do("GET", "/health", nil, nil); r.status != 200 || r.json(t)["status"] != "ok" {
		t.Fatalf("health after: %d %s", r.status, r.body)
	}
	if r := h.do("GET", "/ready", nil, nil); r.status != 200 || r.json(t)["status"] != "ready" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if r := h.do("POST", "/health", nil, nil); r.status != 405 {
		t.Fatalf("POST /health: %d", r.status)
	}
	r := h.do("GET", "/metrics", nil, nil)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") ||
		!strings.Contains(string(r.body), "# TYPE uptimizr_ingest_decode_seconds histogram") {
		t.Fatalf("%d %s", r.status, r.body[:min(len(r.body), 300)])
	}
}

func TestShutdownFinishesInFlightRequests(t *testing.T) {
	h := newHarness(t, nil)
	body := batchOf(validEvent("scene_change", ""), validEvent("scene_change", ""))
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := fmt.Sprintf("POST /api/v1/collect HTTP/1.1\r\nHost: x\r\nx-api-key: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", h.a.Ingest, len(body))
	conn.Write([]byte(head))
	conn.Write(body[:10])
	// Let the server start reading the request.
	time.Sleep(150 * time.Millisecond)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- h.srv.Shutdown(ctx)
	}()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("shutdown returned while a request was in flight: %v", err)
	default:
	}
	// A request that arrives during the drain, on a new connection, is
	// answered 503 with Connection: close, and stores nothing.
	c2, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	if err != nil {
		t.Fatalf("the listener closed while a request was in flight: %v", err)
	}
	defer c2.Close()
	fmt.Fprintf(c2, "%s", head)
	c2.Write(body)
	res2, err := http.ReadResponse(bufio.NewReader(c2), nil)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := io.ReadAll(res2.Body)
	if res2.StatusCode != 503 || res2.Header.Get("Retry-After") == "" || !res2.Close {
		t.Errorf("a new request during shutdown: %d %v close=%v %s", res2.StatusCode, res2.Header, res2.Close, b2)
	}
	conn.Write(body[10:])
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.Contains(string(b), `"accepted":2`) {
		t.Fatalf("in-flight request: %d %s", res.StatusCode, b)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := h.store.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopen: the acknowledged events are there.
	st, err := storage.Open(storage.Options{Dir: h.dir, MinFreeDisk: -1, DisableAggregation: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h.store = st
	if n := len(h.storedEvents("a")); n != 2 {
		t.Fatalf("after reopen %d events, want 2", n)
	}
}
