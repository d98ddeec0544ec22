package storage

import (
	"encoding/binary"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/uptimizr/edge/core"
)

// fixtureBatches builds one batch per fixture file.
func fixtureBatches(t *testing.T, pnum uint32) []*core.Batch {
	paths, _ := filepath.Glob("../testdata/fixtures/batch*.json")
	if len(paths) == 0 {
		t.Fatal("fixtures not found")
	}
	var out []*core.Batch
	for _, p := range paths {
		out = append(out, batchFromFixture(t, p, pnum))
	}
	return out
}

type scopeKey struct {
	kind           aggKind
	session, scene string
	bucket         int64
}

func parseCellKey(t *testing.T, k []byte) scopeKey {
	t.Helper()
	var sk scopeKey
	sk.kind = aggKind(k[5])
	r := k[6:]
	switch r[0] {
	case scopeScene:
		n := int(r[1])
		sk.scene, r = string(r[2:2+n]), r[2+n:]
	case scopeSession:
		n := int(binary.BigEndian.Uint16(r[1:]))
		sk.session, r = string(r[3:3+n]), r[3+n:]
		m := int(r[0])
		sk.scene, r = string(r[1:1+m]), r[1+m:]
	default:
		t.Fatalf("bad scope in %q", k)
	}
	if len(r) != 8 {
		t.Fatalf("bad bucket in %q", k)
	}
	sk.bucket = int64(binary.BigEndian.Uint64(r))
	return sk
}

// TestSceneCellsAreTheMergeOfSessionCells: folding writes each event to its
// session's cells and derives the scene-wide cells (and the hourly roll-ups
// of per-minute kinds) from them; across several folds, every scene cell
// must equal the merge of its sessions' cells, item by item.
func TestSceneCellsAreTheMergeOfSessionCells(t *testing.T) {
	s := openTest(t, Options{DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	for i, b := range fixtureBatches(t, pnum) {
		if err := s.Sink().Commit(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 { // several folds, some of more than one record
			if err := s.Aggregator().Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	stored := map[scopeKey]cell{}
	if err := s.adb.View(func(txn *badger.Txn) error {
		prefix := binary.BigEndian.AppendUint32([]byte{nsAgg}, pnum)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			sk := parseCellKey(t, it.Item().Key())
			c := cell{}
			if err := it.Item().Value(func(v []byte) error { return decodeCell(kindOps[sk.kind], v, c) }); err != nil {
				return err
			}
			stored[sk] = c
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[scopeKey]cell{}
	merge := func(k scopeKey, c cell) {
		w := want[k]
		if w == nil {
			w = cell{}
			want[k] = w
		}
		w.merge(kindOps[k.kind], c)
	}
	kinds := map[aggKind]bool{}
	for k, c := range stored {
		if k.session == "" {
			continue
		}
		kinds[k.kind] = true
		if sessionOnly[k.kind] {
			continue // kept per session only
		}
		merge(scopeKey{k.kind, "", k.scene, k.bucket}, c)
		if hk := rollupOf[k.kind]; hk != 0 {
			merge(scopeKey{hk, "", k.scene, k.bucket - k.bucket%hourMs}, c)
		}
	}
	if len(kinds) < 6 || len(want) < 10 {
		t.Fatalf("only %d kinds and %d scene cells folded: the fixtures should exercise most kinds", len(kinds), len(want))
	}
	for k, w := range want {
		got, ok := stored[k]
		if !ok {
			t.Errorf("scene cell %+v missing", k)
			continue
		}
		if err := sameCell(got, w); err != nil {
			t.Errorf("scene cell %+v: %v", k, err)
		}
	}
	for k := range stored {
		if k.kind == kindInputsHLL {
			// Sketches are kept per scene only: a session's own sketch
			// would hold one session.
			if k.session != "" {
				t.Errorf("sketch cell %+v kept per session", k)
			}
			continue
		}
		if _, ok := want[k]; !ok && k.session == "" {
			t.Errorf("scene cell %+v has no session cells", k)
		}
	}
}

func sameCell(got, want cell) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d items, want %d", len(got), len(want))
	}
	for item, w := range want {
		g, ok := got[item]
		if !ok || len(g) != len(w) {
			return fmt.Errorf("item %q: %v, want %v", item, g, w)
		}
		for i := range w {
			if d := math.Abs(g[i] - w[i]); d > 1e-9*math.Max(1, math.Abs(w[i])) {
				return fmt.Errorf("item %q: %v, want %v", item, g, w)
			}
		}
	}
	return nil
}
