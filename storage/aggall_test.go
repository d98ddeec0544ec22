package storage

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"

	badger "github.com/dgraph-io/badger/v4"
)

// TestEverySceneCells: a session's every-scene cell of an hour holds its
// cells of every scene of that hour merged, for each kind that has them,
// over several folds (turns and steps measured across folds, from the
// session's record, included) and sessions that move between scenes.
func TestEverySceneCells(t *testing.T) {
	s := openTest(t, Options{DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	for i, f := range []string{"batch200_00.json", "batch200_01.json", "batch200_02.json", "batch50_00.json"} {
		b := batchFromFixture(t, filepath.Join("../testdata/fixtures", f), pnum)
		if err := s.Sink().Commit(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 || i == 3 {
			if err := s.Aggregator().foldUntilCaughtUp(nil, pnum); err != nil {
				t.Fatal(err)
			}
		}
	}
	type sh struct {
		session string
		bucket  int64
	}
	for k, ak := range allScenesOf {
		kind := aggKind(k)
		if ak == 0 {
			continue
		}
		ops := kindOps[kind]
		want, got := map[sh]cell{}, map[sh]cell{}
		scenes := map[sh]map[string]bool{}
		read := func(k aggKind, into map[sh]cell, sceneOf map[sh]map[string]bool) {
			prefix := append(binary.BigEndian.AppendUint32([]byte{nsAgg}, pnum), byte(k), scopeSession)
			s.adb.View(func(txn *badger.Txn) error {
				it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
				defer it.Close()
				for it.Rewind(); it.Valid(); it.Next() {
					rest := it.Item().KeyCopy(nil)[len(prefix):]
					n := int(binary.BigEndian.Uint16(rest))
					sess, rest := string(rest[2:2+n]), rest[2+n:]
					m := int(rest[0])
					id := sh{sess, int64(binary.BigEndian.Uint64(rest[1+m:]))}
					if sceneOf != nil {
						if sceneOf[id] == nil {
							sceneOf[id] = map[string]bool{}
						}
						sceneOf[id][string(rest[1:1+m])] = true
					}
					if into[id] == nil {
						into[id] = cell{}
					}
					if err := it.Item().Value(func(v []byte) error { return decodeCell(ops, v, into[id]) }); err != nil {
						t.Fatal(err)
					}
				}
				return nil
			})
		}
		read(kind, want, scenes)
		read(ak, got, nil)
		if len(want) == 0 {
			t.Fatalf("kind %q: no cells folded", kind)
		}
		several := 0
		for id, c := range want {
			if len(scenes[id]) > 1 {
				several++
			}
			if err := sameCell(got[id], c); err != nil {
				t.Errorf("kind %q session %s hour %d: every-scene cell: %v", kind, id.session, id.bucket, err)
			}
		}
		if len(got) != len(want) {
			t.Errorf("kind %q: %d every-scene cells, want %d", kind, len(got), len(want))
		}
		if several == 0 {
			t.Errorf("kind %q: no session-hour with cells in several scenes: %s", kind, fmt.Sprint(scenes))
		}
	}
}

// TestBackfillEveryScene: a store folded before the every-scene cells
// existed gets them at open, equal to the ones folding makes, and the
// backfill runs once.
func TestBackfillEveryScene(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, DisableAggregation: true, MinFreeDisk: -1})
	if err != nil {
		t.Fatal(err)
	}
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	for _, f := range []string{"batch200_00.json", "batch50_00.json", "batch200_01.json"} {
		if err := s.Sink().Commit(t.Context(), batchFromFixture(t, filepath.Join("../testdata/fixtures", f), pnum)); err != nil {
			t.Fatal(err)
		}
		if err := s.Aggregator().foldUntilCaughtUp(nil, pnum); err != nil {
			t.Fatal(err)
		}
	}
	everyScene := func(s *Store) map[string]cell {
		out := map[string]cell{}
		s.adb.View(func(txn *badger.Txn) error {
			for k, ak := range allScenesOf {
				if ak == 0 {
					continue
				}
				prefix := append(binary.BigEndian.AppendUint32([]byte{nsAgg}, pnum), byte(ak))
				it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
				for it.Rewind(); it.Valid(); it.Next() {
					c := cell{}
					it.Item().Value(func(v []byte) error { return decodeCell(kindOps[k], v, c) })
					out[string(it.Item().Key())] = c
				}
				it.Close()
			}
			return nil
		})
		return out
	}
	folded := everyScene(s)
	if len(folded) == 0 {
		t.Fatal("no every-scene cells folded")
	}
	// Back to a store without them (as one folded by an older version).
	err = s.adb.Update(func(txn *badger.Txn) error {
		for k := range folded {
			if err := txn.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return txn.Delete(everySceneDone)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(Options{Dir: dir, DisableAggregation: true, MinFreeDisk: -1})
	if err != nil {
		t.Fatal(err)
	}
	got := everyScene(s)
	if len(got) != len(folded) {
		t.Fatalf("backfilled %d cells, folded %d", len(got), len(folded))
	}
	for k, c := range folded {
		if err := sameCell(got[k], c); err != nil {
			t.Errorf("cell %q: %v", k, err)
		}
	}
	n, err := s.backfillEveryScene()
	if err != nil || n != 0 {
		t.Fatalf("second backfill: %d cells, %v", n, err)
	}
	s.Close()
}
