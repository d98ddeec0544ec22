package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// applied is fleet apply's output.
type applied struct {
	Revision uint64            `json:"revision"`
	Keys     map[string]string `json:"keys"`
}

func fleetApply(t *testing.T, env []string, args ...string) (applied, string, int) {
	t.Helper()
	out, errOut, code := run(t, env, append([]string{"fleet", "apply"}, args...)...)
	var a applied
	if code == 0 {
		if err := json.Unmarshal([]byte(out), &a); err != nil {
			t.Fatalf("fleet apply output %q: %v", out, err)
		}
	}
	return a, errOut, code
}

// TestFleetBundleOnARunningNode: a node started with a control public key
// takes only signed revisions; a signed bundle's keys work at once, and a
// key left out of the next one gets 401 at once; a bundle with a bad
// plugin is refused whole and changes nothing; the revision survives a
// restart.
func TestFleetBundleOnARunningNode(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	keyBase := filepath.Join(dir, "signing")
	out, _, code := run(t, nil, "fleet", "keygen", keyBase)
	if code != 0 {
		t.Fatal("keygen failed")
	}
	var kg struct{ PublicKey string }
	json.Unmarshal([]byte(out), &kg)
	if st, err := os.Stat(keyBase + ".key"); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v", st, err)
	}
	env := []string{"VISITOR_HASH_SECRET=fleet-bundle-test-secret-0123456789", "COLLECTOR_CONTROL_PUBKEY=" + kg.PublicKey}
	write := fileWriter(t, dir)
	wasm, err := os.ReadFile("../../plugins/examples/pii-redact/pii-redact.wasm")
	if err != nil {
		t.Fatal(err)
	}
	write("pii.wasm", string(wasm))
	write("bad.wasm", "\x00asm not really a module")
	first := write("b1.yaml", `
projects:
  - id: shop
    channels: {gaze: true}
    keys:
      - {name: web, caps: [ingest]}
      - {name: dash, caps: [query]}
    plugins:
      - {name: pii, module: pii.wasm, policy: drop}
`)
	s := start(t, env, "--data-dir", data)

	// Unsigned: refused by the node, nothing applied.
	if _, errOut, code := fleetApply(t, env, first, "--data-dir", data); code == 0 || !strings.Contains(errOut, "not signed") {
		t.Fatalf("unsigned bundle: code %d, %s", code, errOut)
	}
	a, errOut, code := fleetApply(t, env, first, "--data-dir", data, "--sign", keyBase+".key")
	if code != 0 {
		t.Fatalf("signed apply: %s", errOut)
	}
	web, dash := a.Keys["shop/web"], a.Keys["shop/dash"]
	if a.Revision != 1 || !strings.HasPrefix(web, "uzi_") || !strings.HasPrefix(dash, "uzq_") || len(a.Keys) != 2 {
		t.Fatalf("applied %+v", a)
	}
	if code, body := post(t, s.base+"/api/v1/collect", web, fleetBatch("bundle", 3)); code != 200 {
		t.Fatalf("ingest with the bundle's key: %d %s", code, body)
	}
	if code := getStatus(t, s.base+"/api/v1/event-counts", dash); code != 200 {
		t.Fatalf("query with the bundle's key: %d", code)
	}
	if code, _ := post(t, s.base+"/api/v1/collect", dash, fleetBatch("bundle", 1)); code != 403 {
		t.Fatalf("ingest with the query key: %d", code)
	}
	out, _, _ = run(t, env, "plugin", "list", "--project", "shop", "--data-dir", data)
	if !strings.Contains(out, `"name":"pii"`) {
		t.Fatalf("plugin list: %s", out)
	}

	// The project's own raw retention, on a node whose retention is off:
	// its raw stream is kept and replayed while the bundle says so; the
	// next revision without it gives the project the node's setting (403).
	if code := getStatus(t, s.base+"/api/v1/sessions/bundle/events", dash); code != 403 {
		t.Fatalf("replay with the node's retention off: %d", code)
	}
	retained := write("b-raw.yaml", "projects:\n  - id: shop\n    channels: {gaze: true}\n    rawRetention: true\n    keys:\n      - {name: web, caps: [ingest]}\n      - {name: dash, caps: [query]}\n    plugins: [{name: pii, module: pii.wasm, policy: drop}]\n")
	if _, errOut, code := fleetApply(t, env, retained, "--data-dir", data, "--sign", keyBase+".key"); code != 0 || !strings.Contains(errOut, "set-raw-retention shop: the node's → on") {
		t.Fatalf("rawRetention: code %d, %s", code, errOut)
	}
	if code, body := post(t, s.base+"/api/v1/collect", web, fleetBatch("kept", 2)); code != 200 {
		t.Fatalf("ingest: %d %s", code, body)
	}
	var replay []map[string]any
	getJSON(t, s.base, dash, "sessions/kept/events", &replay)
	if len(replay) != 2 || replay[0]["name"] != "e0" || replay[1]["name"] != "e1" {
		t.Fatalf("replay of a retained project: %v", replay)
	}

	// A project's own ingest limit per key: the third request in the
	// window is refused with 429 (the node's limit is off here).
	limited := write("b-limit.yaml", "projects:\n  - id: shop\n    channels: {gaze: true}\n    rateLimit: {max: 2, window: 1h}\n    keys:\n      - {name: web, caps: [ingest]}\n      - {name: dash, caps: [query]}\n    plugins: [{name: pii, module: pii.wasm, policy: drop}]\n")
	if _, errOut, code := fleetApply(t, env, limited, "--data-dir", data, "--sign", keyBase+".key"); code != 0 || !strings.Contains(errOut, "set-rate-limit shop: the node's → 2 per 1h0m0s") {
		t.Fatalf("rateLimit: code %d, %s", code, errOut)
	}
	statuses := []int{}
	for i := 0; i < 3; i++ {
		code, _ := post(t, s.base+"/api/v1/collect", web, fleetBatch("limited", 1))
		statuses = append(statuses, code)
	}
	if fmt.Sprint(statuses) != "[200 200 429]" {
		t.Fatalf("ingest under the project's limit: %v", statuses)
	}
	unlimited := write("b-unlimit.yaml", "projects:\n  - id: shop\n    channels: {gaze: true}\n    keys:\n      - {name: web, caps: [ingest]}\n      - {name: dash, caps: [query]}\n    plugins: [{name: pii, module: pii.wasm, policy: drop}]\n")
	if _, errOut, code := fleetApply(t, env, unlimited, "--data-dir", data, "--sign", keyBase+".key"); code != 0 {
		t.Fatalf("rateLimit removed: %s", errOut)
	}
	if code, _ := post(t, s.base+"/api/v1/collect", web, fleetBatch("limited", 1)); code != 200 {
		t.Fatalf("the limit taken out: %d", code)
	}
	if code := getStatus(t, s.base+"/api/v1/sessions/kept/events", dash); code != 403 {
		t.Fatalf("replay once the bundle no longer retains: %d", code)
	}

	// A bundle with a module that is not one: refused whole.
	bad := write("b2.yaml", `
projects:
  - id: shop
    keys: [{name: web, caps: [ingest]}]
    plugins: [{name: pii, module: bad.wasm}]
`)
	if _, errOut, code := fleetApply(t, env, bad, "--data-dir", data, "--sign", keyBase+".key"); code == 0 || !strings.Contains(errOut, "pii") {
		t.Fatalf("bad plugin: code %d, %s", code, errOut)
	}
	if code := getStatus(t, s.base+"/api/v1/event-counts", dash); code != 200 {
		t.Fatalf("the refused bundle changed the keys: dash %d", code)
	}

	// dash left out: 401 at once; web kept, unchanged.
	second := write("b3.json", `{"projects":[{"id":"shop","channels":{"gaze":true},"keys":[{"name":"web","caps":["ingest"]}],
		"plugins":[{"name":"pii","module":"pii.wasm","policy":"drop"}]}]}`)
	a, errOut, code = fleetApply(t, env, second, "--data-dir", data, "--sign", keyBase+".key")
	if code != 0 || a.Revision != 5 || len(a.Keys) != 0 {
		t.Fatalf("second apply: %+v %d %s", a, code, errOut)
	}
	if !strings.Contains(errOut, "revoke-key shop/dash") || strings.Contains(errOut, "set-plugin") {
		t.Errorf("changes shown: %s", errOut)
	}
	if out, _, _ := run(t, env, "plugin", "list", "--project", "shop", "--data-dir", data); strings.Contains(out, `"version":2`) {
		t.Errorf("an unchanged plugin got a new version: %s", out)
	}
	if code := getStatus(t, s.base+"/api/v1/event-counts", dash); code != 401 {
		t.Fatalf("the revoked key: %d", code)
	}
	if code, _ := post(t, s.base+"/api/v1/collect", web, fleetBatch("bundle2", 1)); code != 200 {
		t.Fatalf("the kept key: %d", code)
	}

	// After a restart the node serves on its last revision.
	s.cmd.Process.Signal(os.Interrupt)
	s.cmd.Wait()
	s = start(t, env, "--data-dir", data)
	if code, _ := post(t, s.base+"/api/v1/collect", web, fleetBatch("bundle3", 1)); code != 200 {
		t.Fatalf("the kept key after a restart: %d", code)
	}
	if code := getStatus(t, s.base+"/api/v1/event-counts", dash); code != 401 {
		t.Fatalf("the revoked key after a restart: %d", code)
	}
	out, _, code = run(t, env, "fleet", "diff", second, "--data-dir", data)
	if code != 0 || !strings.Contains(out, `"revision":6`) || !strings.Contains(out, `"changes":[]`) {
		t.Fatalf("diff of the applied bundle: %s", out)
	}
}

// getStatus GETs url with key and returns the status.
func getStatus(t *testing.T, url, key string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("x-api-key", key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestFleetBundleFile: a node started with COLLECTOR_BUNDLE applies the
// file at start, again when it changes (re-signed), and refuses a change
// whose signature does not verify, keeping its revision; the keys are
// those the file gives by hash.
func TestFleetBundleFile(t *testing.T) {
	dir := t.TempDir()
	keyBase := filepath.Join(dir, "signing")
	out, _, _ := run(t, nil, "fleet", "keygen", keyBase)
	var kg struct{ PublicKey string }
	json.Unmarshal([]byte(out), &kg)
	newKey := func(caps string) (key, hash string) {
		out, errOut, code := run(t, nil, "fleet", "key", caps)
		if code != 0 {
			t.Fatalf("fleet key: %s", errOut)
		}
		var k struct{ Key, Hash string }
		json.Unmarshal([]byte(out), &k)
		return k.Key, k.Hash
	}
	web, webHash := newKey("ingest")
	dash, dashHash := newKey("query")
	file := filepath.Join(dir, "fleet.yaml")
	write := func(body string, sign bool) {
		t.Helper()
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if sign {
			if _, errOut, code := run(t, nil, "fleet", "sign", file, "--sign", keyBase+".key"); code != 0 {
				t.Fatalf("fleet sign: %s", errOut)
			}
		}
	}
	write("projects:\n  - id: shop\n    keys:\n      - {name: web, caps: [ingest], hash: "+webHash+"}\n      - {name: dash, caps: [query], hash: "+dashHash+"}\n", true)
	env := []string{"VISITOR_HASH_SECRET=fleet-bundle-file-secret-0123456789", "COLLECTOR_BUNDLE=" + file, "COLLECTOR_CONTROL_PUBKEY=" + kg.PublicKey}
	data := filepath.Join(dir, "data")
	s := start(t, env, "--data-dir", data)
	if code, body := post(t, s.base+"/api/v1/collect", web, fleetBatch("file", 2)); code != 200 {
		t.Fatalf("ingest with the file's key: %d %s", code, body)
	}
	if code := getStatus(t, s.base+"/api/v1/event-counts", dash); code != 200 {
		t.Fatalf("query with the file's key: %d", code)
	}
	// dash taken out, not signed again: refused, dash still works.
	without := "projects:\n  - id: shop\n    keys:\n      - {name: web, caps: [ingest], hash: " + webHash + "}\n"
	write(without, false)
	metric := func(name string) string {
		res, err := http.Get(s.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, name+" ") {
				return strings.TrimPrefix(l, name+" ")
			}
		}
		return ""
	}
	eventually(t, "the unsigned change is refused", 10*time.Second, func() bool {
		return metric("uptimizr_fleet_revisions_refused") != "0" && metric("uptimizr_fleet_revisions_refused") != ""
	})
	if code := getStatus(t, s.base+"/api/v1/event-counts", dash); code != 200 {
		t.Fatalf("the refused change was applied: dash %d", code)
	}
	// Signed: applied within a few seconds; SIGHUP makes it at once.
	write(without, true)
	s.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "the signed change is applied", 10*time.Second, func() bool {
		return getStatus(t, s.base+"/api/v1/event-counts", dash) == 401
	})
	if metric("uptimizr_fleet_revision") != "2" {
		t.Errorf("revision %s, want 2", metric("uptimizr_fleet_revision"))
	}
	if _, errOut, code := run(t, nil, "key", "create", "--project", "shop", "--cap", "ingest", "--data-dir", data); code == 0 || !strings.Contains(errOut, "follows a fleet bundle") {
		t.Fatalf("key create on a node with a bundle file: %d %s", code, errOut)
	}
	// A restart on the same file applies nothing new.
	s.cmd.Process.Signal(os.Interrupt)
	s.cmd.Wait()
	s = start(t, env, "--data-dir", data)
	if code, _ := post(t, s.base+"/api/v1/collect", web, fleetBatch("file2", 1)); code != 200 {
		t.Fatal("web after a restart")
	}
	time.Sleep(2500 * time.Millisecond) // a look at the file
	if got := metric("uptimizr_fleet_revision"); got != "2" {
		t.Errorf("revision %s after a restart on the same file, want 2", got)
	}
}
