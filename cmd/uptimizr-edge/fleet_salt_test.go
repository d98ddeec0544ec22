package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/fleet/bundle"
	"github.com/uptimizr/edge/fleet/fleettest"
	"github.com/uptimizr/edge/storage"
)

// visitorOf is the visitor id a node gave the events of a session (raw
// retention on), "" while it has none.
func visitorOf(t *testing.T, base, query, session string) string {
	t.Helper()
	var evs []map[string]any
	getJSON(t, base, query, "sessions/"+session+"/events", &evs)
	if len(evs) == 0 {
		return ""
	}
	v, _ := evs[0]["visitorId"].(string)
	return v
}

// TestFleetVisitorSalt: two nodes with seeds of their own give one
// visitor two ids; a bundle's visitorSalt from today, published to the
// control plane, re-keys both at once, and then they agree. The published
// revision holds the seed only sealed to each node's key, and each node
// replaces its key once it has taken the seed; publishing the same salt
// again does not take it twice. A seed from a later day waits for its day.
func TestFleetVisitorSalt(t *testing.T) {
	if testing.Short() {
		t.Skip("fleet test skipped in -short mode")
	}
	ns := fleettest.StartNATS(t)
	url := "nats://" + ns.Addr()
	dir := t.TempDir()
	write := fileWriter(t, dir)
	common := []string{"VISITOR_HASH_SECRET=", "ENABLE_RAW_SESSION_RETENTION=true", "COLLECTOR_CONTROL_URL=" + url}
	var edges [2]*server
	var dirs [2]string
	for i := range edges {
		d := filepath.Join(dir, fmt.Sprintf("edge-%d", i))
		dirs[i] = d
		if _, errOut, code := run(t, []string{"VISITOR_HASH_SECRET="}, "salt", "init", "--data-dir", d); code != 0 {
			t.Fatalf("salt init: %s", errOut)
		}
		edges[i] = start(t, append(common, fmt.Sprintf("COLLECTOR_NODE_ID=edge-%d", i)), "serve", "--data-dir", d)
	}
	status := func() fleetStatusOut { return fleetStatusOf(t, url) }
	eventually(t, "both nodes report their sealing keys", 10*time.Second, func() bool {
		st := status()
		return len(st.Nodes) == 2 && st.Nodes[0].SealKey != "" && st.Nodes[1].SealKey != ""
	})
	keysBefore := status().Nodes

	publish := func(body string) (applied, string) {
		t.Helper()
		out, errOut, code := run(t, nil, "fleet", "apply", write("b.json", body), "--control", url)
		if code != 0 {
			t.Fatalf("publish: %s", errOut)
		}
		var a applied
		json.Unmarshal([]byte(out), &a)
		return a, errOut
	}
	keys := `"keys":[{"name":"web","caps":["ingest"]},{"name":"dash","caps":["query"]}]`
	a, _ := publish(`{"projects":[{"id":"shop",` + keys + `}]}`)
	web, dash := a.Keys["shop/web"], a.Keys["shop/dash"]
	ids := func(session string) [2]string {
		var out [2]string
		for i, s := range edges {
			eventually(t, fmt.Sprintf("edge %d takes the revision", i), 10*time.Second, func() bool {
				code, _ := post(t, s.base+"/api/v1/collect", web, fleetBatch(session, 1))
				return code == 200
			})
			eventually(t, "the session's events", 5*time.Second, func() bool { out[i] = visitorOf(t, s.base, dash, session); return out[i] != "" })
		}
		return out
	}
	if before := ids("before"); before[0] == before[1] {
		t.Fatalf("two nodes with their own seeds gave one visitor one id: %v", before)
	}

	seedBytes := make([]byte, 32)
	rand.Read(seedBytes)
	seed := hex.EncodeToString(seedBytes)
	today := time.Now().UTC().Format(time.DateOnly)
	salted := `{"projects":[{"id":"shop",` + keys + `}],"visitorSalt":{"seed":"` + seed + `","from":"` + today + `"}}`
	_, errOut := publish(salted)
	if !strings.Contains(errOut, "sealed to 2 nodes: edge-0, edge-1") {
		t.Fatalf("publish with a visitor salt: %s", errOut)
	}
	id := bundle.SeedID(seedBytes)
	eventually(t, "both nodes take the seed", 10*time.Second, func() bool {
		st := status()
		return len(st.Nodes) == 2 && st.Nodes[0].SaltID == id && st.Nodes[1].SaltID == id
	})
	after := ids("after")
	if after[0] != after[1] {
		t.Fatalf("after the fleet's re-key the nodes disagree: %v", after)
	}
	for i, n := range status().Nodes {
		if n.SealKey == keysBefore[i].SealKey {
			t.Errorf("%s kept its sealing key after taking the seed", n.Node)
		}
	}

	// What the bucket holds: the seed's id and boxes, never the seed.
	hist, err := revisionBucket(t, url).History(context.Background(), "revision")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range hist {
		if strings.Contains(strings.ToLower(string(e.Value())), seed) {
			t.Fatalf("revision %d in the bucket holds the seed", e.Revision())
		}
	}

	// The same salt again (another change beside it): not taken twice, the
	// ids stay.
	publish(`{"projects":[{"id":"shop",` + keys + `,"channels":{"gaze":true}}],"visitorSalt":{"seed":"` + seed + `","from":"` + today + `"}}`)
	eventually(t, "both nodes take revision 3", 10*time.Second, func() bool {
		st := status()
		return len(st.Nodes) == 2 && st.Nodes[0].Revision == 3 && st.Nodes[1].Revision == 3
	})
	if again := ids("again"); again != after {
		t.Fatalf("the same seed published again changed the ids: %v, then %v", after, again)
	}

	// A seed from tomorrow: taken (both report it), ids unchanged today.
	rand.Read(seedBytes)
	tomorrow := time.Now().UTC().Add(24 * time.Hour).Format(time.DateOnly)
	publish(`{"projects":[{"id":"shop",` + keys + `}],"visitorSalt":{"seed":"` + hex.EncodeToString(seedBytes) + `","from":"` + tomorrow + `"}}`)
	next := bundle.SeedID(seedBytes)
	eventually(t, "both nodes take tomorrow's seed", 10*time.Second, func() bool {
		st := status()
		return len(st.Nodes) == 2 && st.Nodes[0].SaltID == next && st.Nodes[1].SaltID == next
	})
	if later := ids("later"); later != after {
		t.Fatalf("a seed from tomorrow changed today's ids: %v, then %v", after, later)
	}
	for _, d := range dirs {
		_, pending, err := storage.ReadVisitorSeed(d)
		if err != nil || pending == nil || core.DayString(pending.Day) != tomorrow || bundle.SeedID(pending.Seed[:]) != next {
			t.Fatalf("%s: the seed waiting for tomorrow: %+v %v", d, pending != nil, err)
		}
	}
}

// TestFleetVisitorSaltLocal: fleet apply --data-dir takes a bundle's
// visitorSalt into the node's seed file, keeps only its id in the stored
// revision, and takes it once.
func TestFleetVisitorSaltLocal(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	env := []string{"VISITOR_HASH_SECRET="}
	if _, errOut, code := run(t, env, "salt", "init", "--data-dir", data); code != 0 {
		t.Fatalf("salt init: %s", errOut)
	}
	seedBytes := make([]byte, 32)
	rand.Read(seedBytes)
	seed := hex.EncodeToString(seedBytes)
	today := time.Now().UTC().Format(time.DateOnly)
	file := filepath.Join(dir, "b.json")
	os.WriteFile(file, []byte(`{"projects":[{"id":"shop","keys":[{"name":"web","caps":["ingest"]}]}],"visitorSalt":{"seed":"`+seed+`","from":"`+today+`"}}`), 0o644)
	_, errOut, code := run(t, env, "fleet", "apply", file, "--data-dir", data)
	if code != 0 || !strings.Contains(errOut, "set-visitor-salt") {
		t.Fatalf("apply: %d %s", code, errOut)
	}
	cur, _, err := storage.ReadVisitorSeed(data)
	if err != nil || hex.EncodeToString(cur.Seed[:]) != seed || core.DayString(cur.Day) != today {
		t.Fatalf("the node's seed after the apply: %v", err)
	}
	s, err := storage.Open(storage.Options{Dir: data, MinFreeDisk: -1, DisableAggregation: true})
	if err != nil {
		t.Fatal(err)
	}
	last, _, err := s.Registry().LastFleetRevision()
	s.Close()
	if err != nil || strings.Contains(string(last.Signed), seed) || last.SaltID != bundle.SeedID(seedBytes) {
		t.Fatalf("the stored revision: %s %q %v", last.Signed, last.SaltID, err)
	}
	if _, errOut, code := run(t, env, "fleet", "apply", file, "--data-dir", data); code != 0 || strings.Contains(errOut, "visitor-salt") {
		t.Fatalf("the same salt again: %d %s", code, errOut)
	}
}

// A node's sealing key is made once and read back; a damaged key file is
// refused with the way out in the message, and rotating replaces the key.
func TestNodeKeyFile(t *testing.T) {
	dir := t.TempDir()
	k1, err := loadNodeKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Join(dir, nodeKeyFile)); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", info, err)
	}
	if k2, err := loadNodeKey(dir); err != nil || k2.Public() != k1.Public() {
		t.Fatalf("read back: %v", err)
	}
	k3, err := rotateNodeKey(dir)
	if err != nil || k3.Public() == k1.Public() {
		t.Fatalf("rotate: %v", err)
	}
	if k4, err := loadNodeKey(dir); err != nil || k4.Public() != k3.Public() {
		t.Fatalf("after the rotation: %v", err)
	}
	for _, bad := range []string{"not base64!", "AAAA"} {
		os.WriteFile(filepath.Join(dir, nodeKeyFile), []byte(bad), 0o600)
		if _, err := loadNodeKey(dir); err == nil || !strings.Contains(err.Error(), "delete it and the node makes a new one") {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}
