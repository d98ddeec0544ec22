package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestPluginVersionsChainAndRollback(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir})
	ps := s.Plugins()
	h1, err := ps.PutModule([]byte("module one"))
	if err != nil {
		t.Fatal(err)
	}
	h1again, _ := ps.PutModule([]byte("module one"))
	h2, _ := ps.PutModule([]byte("module two"))
	if h1 != h1again || h1 == h2 || len(h1) != 64 {
		t.Fatalf("hashes %s %s %s", h1, h1again, h2)
	}
	if b, err := ps.Module(h2); err != nil || string(b) != "module two" {
		t.Fatalf("module: %q %v", b, err)
	}
	if _, err := ps.AddVersion(1, "Bad Name", h1, 1, nil, "drop"); !errors.Is(err, ErrBadPluginName) {
		t.Fatalf("bad name: %v", err)
	}
	r, err := ps.AddVersion(1, "pii", h1, 10, json.RawMessage(`{"a":1}`), "quarantine")
	if err != nil || r.Active != 1 {
		t.Fatalf("first version: %+v %v", r, err)
	}
	ps.AddVersion(1, "guard", h1, 10, nil, "drop")
	r, _ = ps.AddVersion(1, "pii", h2, 12, json.RawMessage(`{"a":2}`), "quarantine")
	if r.Active != 2 || len(r.Versions) != 2 {
		t.Fatalf("second version: %+v", r)
	}
	if _, err := ps.AddVersion(2, "pii", h2, 12, nil, "pass"); err != nil { // another project
		t.Fatal(err)
	}
	list, _ := ps.List(1)
	if len(list) != 2 || list[0].Name != "pii" || list[1].Name != "guard" {
		t.Fatalf("chain %+v", list)
	}
	if err := ps.SetOrder(1, []string{"guard"}); err == nil {
		t.Fatal("an order that leaves a plugin out was accepted")
	}
	if err := ps.SetOrder(1, []string{"guard", "pii"}); err != nil {
		t.Fatal(err)
	}
	if r, err := ps.Rollback(1, "pii"); err != nil || r.Active != 1 {
		t.Fatalf("rollback: %+v %v", r, err)
	}
	if _, err := ps.Rollback(1, "pii"); !errors.Is(err, ErrNoRollback) {
		t.Fatalf("second rollback: %v", err)
	}
	if _, err := ps.Activate(1, "pii", 9); !errors.Is(err, ErrVersionNotFound) {
		t.Fatalf("unknown version: %v", err)
	}
	if err := ps.Remove(1, "guard"); err != nil {
		t.Fatal(err)
	}
	if err := ps.Remove(1, "guard"); !errors.Is(err, ErrPluginNotFound) {
		t.Fatalf("second remove: %v", err)
	}
	s.Close()
	s2 := openTest(t, Options{Dir: dir})
	list, _ = s2.Plugins().List(1)
	if len(list) != 1 || list[0].Name != "pii" || list[0].Active != 1 || string(list[0].Version(2).Config) != `{"a":2}` {
		t.Fatalf("after reopen %+v", list)
	}
	if other, _ := s2.Plugins().List(2); len(other) != 1 || other[0].Versions[0].Policy != "pass" {
		t.Fatalf("project 2: %+v", other)
	}
}

func TestQuarantineKeepsBatchesApartWithTTL(t *testing.T) {
	s := openTest(t, Options{QuarantineTTL: time.Second})
	q := s.Quarantine()
	b := testBatch(3, 20, "s1", "s2")
	for i := 0; i < 3; i++ {
		if err := q.Put(context.Background(), 3, "pii", 2, fmt.Sprint("trap ", i), b); err != nil {
			t.Fatal(err)
		}
	}
	q.Put(context.Background(), 4, "other", 1, "x", testBatch(4, 5, "s"))
	list, total, err := q.List(3, 2)
	if err != nil || total != 3 || len(list) != 2 || list[0].Plugin != "pii" || list[0].Events != 20 || list[0].Reason != "trap 0" {
		t.Fatalf("list: %+v total %d %v", list, total, err)
	}
	e, got, err := q.Get(3, list[1].ID)
	if err != nil || e.Reason != "trap 1" || len(got.Events) != 20 || string(got.JSON(5)) != string(b.JSON(5)) || got.ReceivedAt != b.ReceivedAt {
		t.Fatalf("get: %+v %v", e, err)
	}
	if _, _, err := q.Get(4, list[1].ID); !errors.Is(err, ErrQuarantineNotFound) {
		t.Fatalf("another project's entry: %v", err)
	}
	if err := q.Delete(3, list[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, total, _ := q.List(3, 10); total != 2 {
		t.Fatalf("after delete %d", total)
	}
	// Nothing of a quarantined batch is in the ingest log.
	if seqs, _ := readLog(t, s, 3); len(seqs) != 0 {
		t.Fatal("quarantined events reached the ingest log")
	}
	time.Sleep(2100 * time.Millisecond)
	if _, total, _ := q.List(3, 10); total != 0 {
		t.Fatalf("%d entries outlived their TTL", total)
	}
}
