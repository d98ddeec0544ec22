package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uptimizr/edge/fleet/bundle"
	"github.com/uptimizr/edge/fleet/control"
	"github.com/uptimizr/edge/fleet/fleettest"
)

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, deadline time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %s", what, deadline)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type fleetStatusOut struct {
	Revision uint64              `json:"revision"`
	Nodes    []control.Heartbeat `json:"nodes"`
}

// TestFleetControlPlane: with a real nats-server (embedded), a signed
// bundle published with fleet apply --control reaches two edges (a key
// works on both), a key taken out gets 401 on both, a tampered revision
// written straight into the bucket is refused and the last one kept, a
// node restarted while NATS is down serves on its last revision and
// catches up once NATS is back, and a bad bundle publishes nothing.
func TestFleetControlPlane(t *testing.T) {
	if testing.Short() {
		t.Skip("fleet test skipped in -short mode")
	}
	ns := fleettest.StartNATS(t)
	url := "nats://" + ns.Addr()
	dir := t.TempDir()
	keyBase := filepath.Join(dir, "signing")
	out, _, code := run(t, nil, "fleet", "keygen", keyBase)
	if code != 0 {
		t.Fatal("keygen")
	}
	var kg struct{ PublicKey string }
	json.Unmarshal([]byte(out), &kg)
	write := fileWriter(t, dir)
	common := []string{"VISITOR_HASH_SECRET=fleet-control-test-secret-0123456789", "COLLECTOR_CONTROL_URL=" + url, "COLLECTOR_CONTROL_PUBKEY=" + kg.PublicKey}
	var edges [2]*server
	var dirs [2]string
	for i := range edges {
		dirs[i] = filepath.Join(dir, fmt.Sprintf("edge-%d", i))
		edges[i] = start(t, append(common, fmt.Sprintf("COLLECTOR_NODE_ID=edge-%d", i)), "serve", "--data-dir", dirs[i])
	}
	publish := func(file string) (applied, string, int) {
		t.Helper()
		out, errOut, code := run(t, nil, "fleet", "apply", file, "--control", url, "--sign", keyBase+".key")
		var a applied
		if code == 0 {
			if err := json.Unmarshal([]byte(out), &a); err != nil {
				t.Fatalf("%q: %v", out, err)
			}
		}
		return a, errOut, code
	}
	ingestOK := func(s *server, key string) bool {
		code, _ := post(t, s.base+"/api/v1/collect", key, fleetBatch("control", 1))
		return code == 200
	}
	first := write("b1.json", minimalBundle)
	a, errOut, code := publish(first)
	if code != 0 || a.Revision != 1 || a.Keys["shop/web"] == "" {
		t.Fatalf("publish: %+v %d %s", a, code, errOut)
	}
	web, dash := a.Keys["shop/web"], a.Keys["shop/dash"]
	for i, s := range edges {
		eventually(t, fmt.Sprintf("edge %d takes revision 1", i), 10*time.Second, func() bool { return ingestOK(s, web) })
		if code := getStatus(t, s.base+"/api/v1/event-counts", dash); code != 200 {
			t.Fatalf("edge %d: the query key: %d", i, code)
		}
	}
	status := func() fleetStatusOut { return fleetStatusOf(t, url) }
	eventually(t, "both nodes report revision 1", 10*time.Second, func() bool {
		st := status()
		return st.Revision == 1 && len(st.Nodes) == 2 && st.Nodes[0].Revision == 1 && st.Nodes[1].Revision == 1
	})

	// dash taken out: 401 on both.
	second := write("b2.json", `{"projects":[{"id":"shop","channels":{"gaze":true},"keys":[{"name":"web","caps":["ingest"]}]}]}`)
	if a, errOut, code := publish(second); code != 0 || a.Revision != 2 || len(a.Keys) != 0 || !strings.Contains(errOut, "revoke-key shop/dash") {
		t.Fatalf("second publish: %+v %d %s", a, code, errOut)
	}
	for i, s := range edges {
		eventually(t, fmt.Sprintf("edge %d revokes dash", i), 10*time.Second, func() bool {
			return getStatus(t, s.base+"/api/v1/event-counts", dash) == 401
		})
		if !ingestOK(s, web) {
			t.Fatalf("edge %d: web after the revocation", i)
		}
	}

	// A revision written straight into the bucket, its payload changed
	// (dash back, with admin) under the old signature: refused.
	kv := revisionBucket(t, url)
	e, err := kv.Get(context.Background(), "revision")
	if err != nil {
		t.Fatal(err)
	}
	var signed bundle.Signed
	json.Unmarshal(e.Value(), &signed)
	rev, _ := bundle.Open(&signed, nil)
	rev.Number = 3
	rev.Projects[0].Keys = append(rev.Projects[0].Keys, bundle.RevKey{Name: "dash", Caps: 7, Hash: hashHex(dash)})
	payload, _ := json.Marshal(rev)
	signed.Payload = payload
	b, _ := json.Marshal(signed)
	if _, err := kv.Put(context.Background(), "revision", b); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both nodes refuse the tampered revision", 10*time.Second, func() bool {
		st := status()
		return len(st.Nodes) == 2 && st.Nodes[0].Refused > 0 && st.Nodes[1].Refused > 0
	})
	for i, s := range edges {
		if code := getStatus(t, s.base+"/api/v1/event-counts", dash); code != 401 {
			t.Fatalf("edge %d took the tampered revision: dash %d", i, code)
		}
	}

	// A bad bundle: nothing published.
	bad := write("bad.json", `{"projects":[{"id":"shop","keys":[{"name":"web","caps":["root"]}]}]}`)
	if _, errOut, code := publish(bad); code == 0 || !strings.Contains(errOut, `unknown capability "root"`) {
		t.Fatalf("bad bundle: %d %s", code, errOut)
	}

	// NATS down, edge 1 restarted: it serves on revision 2; NATS back, a
	// new revision reaches it.
	ns.Stop()
	edges[1].cmd.Process.Signal(os.Interrupt)
	edges[1].cmd.Wait()
	edges[1] = start(t, append(common, "COLLECTOR_NODE_ID=edge-1"), "serve", "--data-dir", dirs[1])
	if !ingestOK(edges[1], web) || getStatus(t, edges[1].base+"/api/v1/event-counts", dash) != 401 {
		t.Fatal("edge 1 restarted without NATS does not serve on its last revision")
	}
	ns.Start()
	third := write("b3.json", `{"projects":[{"id":"shop","keys":[{"name":"web","caps":["ingest"]},{"name":"ops","caps":["admin"]}]}]}`)
	var a3 applied
	eventually(t, "publish once NATS is back", 20*time.Second, func() bool {
		var code int
		a3, _, code = publish(third)
		return code == 0
	})
	ops := a3.Keys["shop/ops"]
	for i, s := range edges {
		eventually(t, fmt.Sprintf("edge %d catches up", i), 20*time.Second, func() bool {
			return getStatus(t, s.base+"/api/v1/keys", ops) == 200
		})
	}

	req, _ := http.NewRequest("GET", edges[0].base+"/api/v1/keys", nil)
	req.Header.Set("x-api-key", ops)
	if res, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !strings.Contains(string(body), `"name":"web"`) || !strings.Contains(string(body), `"name":"ops"`) {
			t.Fatalf("GET /api/v1/keys: %s", body)
		}
	}

	// GET /api/v1/fleet with an admin key: the revision and both nodes.
	req, _ = http.NewRequest("GET", edges[1].base+"/api/v1/fleet", nil)
	req.Header.Set("x-api-key", ops)
	var fs fleetStatusOut
	if res, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		json.NewDecoder(res.Body).Decode(&fs)
		res.Body.Close()
		if res.StatusCode != 200 || fs.Revision != a3.Revision || len(fs.Nodes) != 2 || fs.Nodes[0].Node != "edge-0" {
			t.Fatalf("GET /api/v1/fleet: %d %+v", res.StatusCode, fs)
		}
	}
	if code := getStatus(t, edges[1].base+"/api/v1/fleet", web); code != 403 {
		t.Fatalf("GET /api/v1/fleet with an ingest key: %d", code)
	}

	// Local changes of what the bundle owns are refused on a following
	// node: 409 over HTTP, an error from the CLI; reads still work.
	if code, body := post(t, edges[0].base+"/api/v1/keys", ops, `{"caps":"ingest"}`); code != 409 || !strings.Contains(body, "follows a fleet bundle") {
		t.Fatalf("POST /api/v1/keys on a following node: %d %s", code, body)
	}
	_, errOut, code = run(t, nil, "key", "create", "--project", "shop", "--cap", "ingest", "--data-dir", dirs[0])
	if code == 0 || !strings.Contains(errOut, "follows a fleet bundle") {
		t.Fatalf("key create on a following node: %d %s", code, errOut)
	}
	if _, errOut, code := run(t, nil, "fleet", "apply", third, "--data-dir", dirs[0]); code == 0 || !strings.Contains(errOut, "follows a fleet bundle") {
		t.Fatalf("a local fleet apply on a following node: %d %s", code, errOut)
	}
	if out, _, code := run(t, nil, "key", "list", "--project", "shop", "--data-dir", dirs[0]); code != 0 || !strings.Contains(out, `"name":"ops"`) {
		t.Fatalf("key list: %d %s", code, out)
	}
}

// fileWriter writes files into dir, each returning its path.
func fileWriter(t *testing.T, dir string) func(name, body string) string {
	return func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

// fleetStatusOf is fleet status --control url.
func fleetStatusOf(t *testing.T, url string) fleetStatusOut {
	t.Helper()
	out, errOut, code := run(t, nil, "fleet", "status", "--control", url)
	if code != 0 {
		t.Fatalf("status: %s", errOut)
	}
	var st fleetStatusOut
	json.Unmarshal([]byte(out), &st)
	return st
}

// revisionBucket opens the control plane's revision bucket.
func revisionBucket(t *testing.T, url string) jetstream.KeyValue {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(context.Background(), control.RevisionBucket)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

const minimalBundle = `{"projects":[{"id":"shop","channels":{"gaze":true},"keys":[{"name":"web","caps":["ingest"]},{"name":"dash","caps":["query"]}]}]}`

func hashHex(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// TestFleetLargeBundle: a bundle of 100 projects, 300 keys and 50
// plugins is published and a node converges on it: every key works for
// its own project only, every plugin is in its chain.
func TestFleetLargeBundle(t *testing.T) {
	if testing.Short() {
		t.Skip("fleet test skipped in -short mode")
	}
	ns := fleettest.StartNATS(t)
	url := "nats://" + ns.Addr()
	dir := t.TempDir()
	wasm, err := os.ReadFile("../../plugins/examples/pii-redact/pii-redact.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pii.wasm"), wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	type key struct {
		Name string   `json:"name"`
		Caps []string `json:"caps"`
	}
	type plugin struct {
		Name   string `json:"name"`
		Module string `json:"module"`
	}
	type project struct {
		ID      string   `json:"id"`
		Keys    []key    `json:"keys"`
		Plugins []plugin `json:"plugins,omitempty"`
	}
	var b struct {
		Projects []project `json:"projects"`
	}
	for i := 0; i < 100; i++ {
		p := project{ID: fmt.Sprintf("p%03d", i), Keys: []key{{"web", []string{"ingest"}}, {"dash", []string{"query"}}, {"ops", []string{"admin"}}}}
		if i < 50 {
			p.Plugins = []plugin{{"pii", "pii.wasm"}}
		}
		b.Projects = append(b.Projects, p)
	}
	js, _ := json.Marshal(b)
	file := filepath.Join(dir, "large.json")
	if err := os.WriteFile(file, js, 0o644); err != nil {
		t.Fatal(err)
	}
	// A plugin call's deadline for slow machines: fifty self-tests run here
	// and on the node.
	slow := "COLLECTOR_PLUGIN_TIMEOUT=2s"
	s := start(t, []string{"VISITOR_HASH_SECRET=fleet-large-test-secret-0123456789", "COLLECTOR_CONTROL_URL=" + url, "COLLECTOR_NODE_ID=edge-large", slow},
		"serve", "--data-dir", filepath.Join(dir, "data"))
	out, errOut, code := run(t, []string{slow}, "fleet", "apply", file, "--control", url)
	if code != 0 {
		t.Fatalf("apply: %s", errOut)
	}
	var a applied
	if err := json.Unmarshal([]byte(out), &a); err != nil || len(a.Keys) != 300 {
		t.Fatalf("%d keys printed, %v", len(a.Keys), err)
	}
	// Converged: the node reports the revision once its registry and
	// every plugin chain are applied.
	eventually(t, "the node converges", 60*time.Second, func() bool {
		out, _, code := run(t, nil, "fleet", "status", "--control", url)
		var st fleetStatusOut
		json.Unmarshal([]byte(out), &st)
		return code == 0 && len(st.Nodes) == 1 && st.Nodes[0].Revision == a.Revision
	})
	for i := 0; i < 100; i++ {
		p := fmt.Sprintf("p%03d", i)
		if code := getStatus(t, s.base+"/api/v1/event-counts", a.Keys[p+"/dash"]); code != 200 {
			t.Fatalf("%s/dash: %d", p, code)
		}
		if code := getStatus(t, s.base+"/api/v1/event-counts", a.Keys[p+"/web"]); code != 403 {
			t.Fatalf("%s/web reads: %d", p, code)
		}
		req, _ := http.NewRequest("GET", s.base+"/api/v1/plugins", nil)
		req.Header.Set("x-api-key", a.Keys[p+"/ops"])
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if has := strings.Contains(string(body), `"name":"pii"`); has != (i < 50) {
			t.Fatalf("%s plugins: %s", p, body)
		}
	}
}
