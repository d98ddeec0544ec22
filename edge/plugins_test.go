package edge_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/uptimizr/edge/core"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	guestOnce sync.Once
	guestWasm []byte
	guestErr  error
)

// testGuest builds the plugin host's test guest (plugins/testdata/guest).
func testGuest(t *testing.T) []byte {
	t.Helper()
	guestOnce.Do(func() {
		out := filepath.Join(t.TempDir(), "guest.wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "../plugins/testdata/guest")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b, err := cmd.CombinedOutput(); err != nil {
			guestErr = err
			t.Logf("%s", b)
			return
		}
		guestWasm, guestErr = os.ReadFile(out)
	})
	if guestErr != nil {
		t.Fatal(guestErr)
	}
	return guestWasm
}

func (h *harness) upload(name, config, policy string, wasm []byte) resp {
	h.t.Helper()
	q := url.Values{}
	if config != "" {
		q.Set("config", config)
	}
	if policy != "" {
		q.Set("policy", policy)
	}
	return h.do("PUT", "/api/v1/plugins/"+name+"?"+q.Encode(), wasm, map[string]string{"x-api-key": h.a.Admin, "content-type": "application/wasm"})
}

func TestPluginsThroughTheServer(t *testing.T) {
	h := newHarness(t, nil)
	wasm := testGuest(t)
	f := loadFixtures(t)[0]
	wantAcc, _ := expectDefault(f.events)

	// Admin only.
	if r := h.do("PUT", "/api/v1/plugins/x", wasm, map[string]string{"x-api-key": h.a.Query}); r.status != 403 {
		t.Fatalf("query key uploads: %d", r.status)
	}
	// Uploads that fail their checks: 400 with the reason, nothing goes live.
	for name, c := range map[string]struct {
		cfg  string
		wasm []byte
		msg  string
	}{
		"garbage":   {"", []byte("not a module"), "not a wasm binary"},
		"trap":      {`{"mode":"trap"}`, wasm, "self-test"},
		"spin":      {`{"mode":"spin"}`, wasm, "self-test"},
		"moves":     {`{"mode":"change-project"}`, wasm, "projectId changed"},
		"refuses":   {`{"mode":"refuse"}`, wasm, "uptimizr_init returned"},
		"badconfig": {`[1,2]`, wasm, "config must be a JSON object"},
	} {
		r := h.upload("p-"+name, c.cfg, "", c.wasm)
		if r.status != 400 || !strings.Contains(string(r.body), c.msg) {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	// A 100 MB upload is refused from its headers, before the body is read.
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT /api/v1/plugins/huge HTTP/1.1\r\nHost: x\r\nx-api-key: %s\r\nContent-Type: application/wasm\r\nContent-Length: %d\r\n\r\n", h.a.Admin, 100<<20)
	conn.Write(bytes.Repeat([]byte{0}, 64<<10))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || res.StatusCode != 413 {
		t.Errorf("100 MB upload: %v %v", res, err)
	}
	conn.Close()
	if r := h.collect(h.a.Ingest, f.body, nil); num(r.json(t), "accepted") != wantAcc {
		t.Fatalf("rejected uploads changed ingest: %s", r.body)
	}

	// A plugin that renames custom events goes live at once.
	r := h.upload("renamer", `{"mode":"rename-custom"}`, "", wasm)
	var up struct {
		Name    string
		Version int
	}
	if json.Unmarshal(r.body, &up); r.status != 201 || up.Name != "renamer" || up.Version != 1 {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	before := len(h.storedEvents("a"))
	h.collect(h.a.Ingest, f.body, nil)
	stored := h.storedEvents("a")[before:]
	customs := 0
	for _, e := range stored {
		if e.Type.String() == "custom" {
			customs++
			if e.JSON["name"] != "redacted" {
				t.Fatalf("custom event stored unfiltered: %s", e.Raw)
			}
		}
	}
	if customs == 0 || len(stored) != wantAcc {
		t.Fatalf("stored %d (customs %d)", len(stored), customs)
	}
	// Project b is untouched by a's plugin.
	beforeB := len(h.storedEvents("b"))
	h.collect(h.b.Ingest, f.body, nil)
	for _, e := range h.storedEvents("b")[beforeB:] {
		if e.JSON["name"] == "redacted" {
			t.Fatal("a's plugin ran on b's batch")
		}
	}

	// A broken version quarantines; nothing unredacted is stored; rollback
	// and replay bring the batch back through the fixed chain.
	if r := h.upload("renamer", `{"mode":"trap-on-2"}`, "", wasm); r.status != 201 {
		t.Fatalf("trap-on-2 upload (its self-test is call 1): %d %s", r.status, r.body)
	}
	before = len(h.storedEvents("a"))
	r = h.collect(h.a.Ingest, f.body, nil)
	if m := r.json(t); num(m, "quarantined") != wantAcc || num(m, "accepted") != 0 {
		t.Fatalf("quarantine: %s", r.body)
	}
	if len(h.storedEvents("a")) != before {
		t.Fatal("a quarantined batch reached the log")
	}
	var q struct {
		Count   int
		Batches []struct {
			ID     string
			Plugin string
			Events int
		}
	}
	if st := h.getJSON("/api/v1/quarantine", h.a.Admin, &q); st != 200 || q.Count != 1 || q.Batches[0].Events != wantAcc || q.Batches[0].Plugin != "renamer" {
		t.Fatalf("quarantine list: %d %+v", st, q)
	}
	if st := h.getJSON("/api/v1/quarantine", h.a.Query, &q); st != 403 {
		t.Fatalf("query key sees the quarantine: %d", st)
	}
	if st := h.getJSON("/api/v1/quarantine", h.b.Admin, &q); st != 200 || q.Count != 0 {
		t.Fatalf("b sees a's quarantine: %+v", q)
	}
	h.getJSON("/api/v1/quarantine", h.a.Admin, &q)
	id := q.Batches[0].ID
	if r := h.do("POST", "/api/v1/plugins/renamer/rollback", nil, map[string]string{"x-api-key": h.a.Admin}); r.status != 200 || !strings.Contains(string(r.body), `"version":1`) {
		t.Fatalf("rollback: %d %s", r.status, r.body)
	}
	r = h.do("POST", "/api/v1/quarantine/"+id+"/replay", nil, map[string]string{"x-api-key": h.a.Admin})
	if r.status != 200 || num(r.json(t), "accepted") != wantAcc {
		t.Fatalf("replay: %d %s", r.status, r.body)
	}
	replayed := h.storedEvents("a")[before:]
	if len(replayed) != wantAcc {
		t.Fatalf("replayed %d events", len(replayed))
	}
	for _, e := range replayed {
		if e.Type.String() == "custom" && e.JSON["name"] != "redacted" {
			t.Fatal("the replay skipped the fixed plugin")
		}
	}
	if h.getJSON("/api/v1/quarantine", h.a.Admin, &q); q.Count != 0 {
		t.Fatal("the replayed entry is still quarantined")
	}

	// List, config, remove.
	var list []struct {
		Name     string
		Active   int
		Versions []struct{ Version int }
	}
	if st := h.getJSON("/api/v1/plugins", h.a.Admin, &list); st != 200 || len(list) != 1 || list[0].Active != 1 || len(list[0].Versions) != 2 {
		t.Fatalf("list: %d %+v", st, list)
	}
	r = h.do("PUT", "/api/v1/plugins/renamer/config", []byte(`{"mode":"keep"}`), map[string]string{"x-api-key": h.a.Admin})
	if r.status != 200 || !strings.Contains(string(r.body), `"version":3`) {
		t.Fatalf("config: %d %s", r.status, r.body)
	}
	if r := h.do("DELETE", "/api/v1/plugins/renamer", nil, map[string]string{"x-api-key": h.a.Admin}); r.status != 200 {
		t.Fatalf("remove: %d", r.status)
	}
	if r := h.do("DELETE", "/api/v1/plugins/renamer", nil, map[string]string{"x-api-key": h.a.Admin}); r.status != 404 {
		t.Fatalf("second remove: %d %s", r.status, r.body)
	}
}

// TestPluginUploadCap: COLLECTOR_PLUGIN_MAX_MODULE_MB bounds uploads on the
// wire, answered in the API's JSON shape, and a module under it still goes
// live.
func TestPluginUploadCap(t *testing.T) {
	wasm := testGuest(t)
	if len(wasm) <= 1<<20 {
		t.Fatalf("the test guest is %d bytes; this test needs one over 1 MiB", len(wasm))
	}
	h := newHarness(t, func(c *core.Config) { c.PluginModuleMiB = 1 })
	// Refused from its headers: the answer comes before the body is sent.
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /api/v1/plugins/big HTTP/1.1\r\nHost: x\r\nx-api-key: %s\r\nContent-Type: application/wasm\r\nContent-Length: %d\r\n\r\n", h.a.Admin, len(wasm))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 413 || !strings.Contains(string(body), `"error"`) {
		t.Fatalf("a %d-byte module under a 1 MiB cap: %d %s", len(wasm), res.StatusCode, body)
	}
	h = newHarness(t, func(c *core.Config) { c.PluginModuleMiB = 8 })
	if r := h.upload("big", "", "", wasm); r.status != 201 {
		t.Fatalf("a %d-byte module under an 8 MiB cap: %d %s", len(wasm), r.status, r.body)
	}
	bad := core.DefaultConfig()
	bad.VisitorHashSecret = "x"
	bad.PluginModuleMiB = 0
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "COLLECTOR_PLUGIN_MAX_MODULE_MB") {
		t.Fatalf("a zero module cap validates: %v", err)
	}
}
