package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/uptimizr/edge/core"
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
	// The fixtures' resource samples and session_starts are each in one
	// scene of their session: one more of each in another scene.
	first := batchFromFixture(t, filepath.Join("../testdata/fixtures", "batch200_00.json"), pnum)
	sess, ts := string(first.Session(0)), first.Events[0].TS
	commitEvents(t, s, pnum, [][3]string{
		{"resource_sample", sess, fmt.Sprint(ts+1) + `,"sceneId":"elsewhere","jsHeapBytes":1048576,"triangles":5000`},
		{"session_start", sess, fmt.Sprint(ts+2) + `,"sceneId":"elsewhere","device":{"engine":"webgl","isMobile":false,"renderer":"r","browser":"b","os":"o"}`},
	})
	type sh struct {
		session, scene string
		bucket         int64
	}
	for _, d := range derivations {
		ops := kindOps[d.from]
		want, got := map[sh]cell{}, map[sh]cell{}
		scenes := map[sh]map[string]bool{}
		read := func(k aggKind, into map[sh]cell, sceneOf map[sh]map[string]bool, filter bool) {
			prefix := append(binary.BigEndian.AppendUint32([]byte{nsAgg}, pnum), byte(k), scopeSession)
			s.adb.View(func(txn *badger.Txn) error {
				it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
				defer it.Close()
				for it.Rewind(); it.Valid(); it.Next() {
					rest := it.Item().KeyCopy(nil)[len(prefix):]
					n := int(binary.BigEndian.Uint16(rest))
					sess, rest := string(rest[2:2+n]), rest[2+n:]
					m := int(rest[0])
					scene := string(rest[1 : 1+m])
					id := sh{sess, scene, int64(binary.BigEndian.Uint64(rest[1+m:]))}
					if filter && d.allScenes {
						id.scene = ""
					}
					if sceneOf != nil {
						if sceneOf[id] == nil {
							sceneOf[id] = map[string]bool{}
						}
						sceneOf[id][scene] = true
					}
					c := cell{}
					if err := it.Item().Value(func(v []byte) error { return decodeCell(ops, v, c) }); err != nil {
						t.Fatal(err)
					}
					for item, row := range c {
						if filter && d.keep != nil && !d.keep(item) {
							continue
						}
						var pre []byte
						if filter && d.sceneItems {
							pre = append([]byte{byte(len(scene))}, scene...)
						}
						switch {
						case filter && d.item != nil:
							item = string(d.item(pre, item))
						case filter && d.sceneItems:
							item = string(pre) + item
						}
						if into[id] == nil {
							into[id] = cell{}
						}
						into[id].add(ops, item, row...)
					}
				}
				return nil
			})
		}
		read(d.from, want, scenes, true)
		read(d.to, got, nil, false)
		if len(want) == 0 {
			t.Fatalf("%q → %q: nothing folded", d.from, d.to)
		}
		several := 0
		for id, c := range want {
			if len(scenes[id]) > 1 {
				several++
			}
			if err := sameCell(got[id], c); err != nil {
				t.Errorf("%q → %q, session %s scene %q hour %d: %v", d.from, d.to, id.session, id.scene, id.bucket, err)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%q → %q: %d derived cells, want %d", d.from, d.to, len(got), len(want))
		}
		if d.allScenes && several == 0 {
			t.Errorf("%q → %q: no session-hour with cells in several scenes", d.from, d.to)
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
			for _, d := range derivations {
				prefix := append(binary.BigEndian.AppendUint32([]byte{nsAgg}, pnum), byte(d.to))
				it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
				for it.Rewind(); it.Valid(); it.Next() {
					c := cell{}
					it.Item().Value(func(v []byte) error { return decodeCell(kindOps[d.to], v, c) })
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
		// A cell of a kind derived once and retired since.
		if err := txn.Set(cellKey(pnum, retiredKinds[0], []byte("s"), []byte("a"), 0), cell{"x": {1, 1, 1}}.encode(kindOps[kindPerfFPS])); err != nil {
			return err
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
	s.adb.View(func(txn *badger.Txn) error {
		if _, err := txn.Get(cellKey(pnum, retiredKinds[0], []byte("s"), []byte("a"), 0)); !errors.Is(err, badger.ErrKeyNotFound) {
			t.Errorf("a retired kind's cell after the backfill: %v", err)
		}
		return nil
	})
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

// TestPerfKindsAgree: every per-session perf read gives, from the derived
// cells perfKind picks, the sessions and figures it gives from the scene
// cells they derive from, with and without a scene, by scene or not.
func TestPerfKindsAgree(t *testing.T) {
	s := openTest(t, Options{DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	var evs [][3]string
	base := int64(1795892400000)
	for i := 0; i < 40; i++ {
		sess := fmt.Sprintf("s%02d", i%7)
		scene := []string{"a", "b", "c"}[i%3]
		ts := fmt.Sprint(base + int64(i)*97_000)
		evs = append(evs,
			[3]string{"frame_perf", sess, ts + fmt.Sprintf(`,"sceneId":%q,"fps":%d,"frameTimeMs":%d.5,"frameTimeP95Ms":%d,"longFrames":%d`, scene, 20+i, 5+i%9, 20+i%5, i%4)},
			[3]string{"resource_sample", sess, ts + fmt.Sprintf(`,"sceneId":%q,"jsHeapBytes":%d,"triangles":%d,"textureBytes":%d`, scene, 1<<20+i*4096, 1000+i, 1<<16+i)})
	}
	commitEvents(t, s, pnum, evs)
	r := s.Reader()
	type run struct {
		scene   string
		byScene bool
		hists   uint8
		upTo    byte
	}
	summary := func(kind aggKind, c run) map[[2]string]string {
		q := core.DefaultQuery()
		q.Scene = c.scene
		out := map[[2]string]string{}
		err := r.eachSessionPerfOf(kind, pnum, &q, c.byScene, c.hists, c.upTo, func(session, scene string, p *sessionPerf) {
			// What the reads of run c use: frames and fps, with the
			// frame-time figures when asked for; or the resources.
			v := ""
			if c.hists&(1<<perfItemResource) == 0 {
				// kindPerfFPS's bins are 1 fps wide: its median is
				// compared at that width.
				med := p.fps.quantile(0.5, fpsBinValue)
				if kind == kindPerfFPS {
					med = p.fps.quantile(0.5, coarseFPSBinValue)
				} else if c.byScene { // the scene cells' bins, halved
					var coarse hist
					for _, x := range p.fps.bins {
						coarse.add(x.b/2, x.n)
					}
					med = coarse.quantile(0.5, coarseFPSBinValue)
				}
				v = fmt.Sprint(p.frames, p.long, p.hasFrames, med)
			}
			if c.hists&(1<<perfItemFrameTime) != 0 {
				v += fmt.Sprint(p.p95n, p.p95max, p.frameTime.quantile(0.5, frameTimeBinValue))
			}
			if c.hists&(1<<perfItemResource) != 0 {
				v += fmt.Sprint(p.resSamples, p.hasSamples)
				for i := range p.res {
					v += fmt.Sprint(p.res[i].quantile(0.5, logBinValue))
				}
			}
			out[[2]string{session, scene}] = v
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	checked := map[aggKind]bool{}
	for _, scene := range []string{"", "b"} {
		for _, c := range []run{
			{scene, false, fpsHist, perfItemFPS},
			{scene, false, 0, perfItemWindows},
			{scene, false, 1 << perfItemFrameTime, perfItemWindows},
			{scene, false, 1 << perfItemResource, perfItemSamples},
			{scene, true, fpsHist, perfItemWindows},
		} {
			q := core.DefaultQuery()
			q.Scene = c.scene
			kind := perfKind(&q, c.byScene, c.hists, c.upTo)
			checked[kind] = true
			got, want := summary(kind, c), summary(kindPerfSession, c)
			if len(want) == 0 || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%+v from %q:\n got %v\nwant %v", c, kind, got, want)
			}
		}
	}
	for _, k := range []aggKind{kindPerfAll, kindResAll, kindPerfFPS} {
		if !checked[k] {
			t.Errorf("no read picked %q", k)
		}
	}
}
