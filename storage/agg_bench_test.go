package storage

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/uptimizr/edge/bench/gen"
	"github.com/uptimizr/edge/core"
)

// fixtureBatch builds a batch from a fixture file's events as stored (their
// JSON as the ingest path would keep it, close enough for folding).
func fixtureBatch(tb testing.TB, pnum uint32) *core.Batch {
	return batchFromFixture(tb, filepath.Join("../testdata/fixtures", "batch200_00.json"), pnum)
}

// batchFromFixture builds a batch of project pnum from one fixture file.
func batchFromFixture(tb testing.TB, path string, pnum uint32) *core.Batch {
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal("fixtures not found")
	}
	return batchFromBody(tb, raw, pnum)
}

// batchFromBody builds a batch of project pnum from a request body.
func batchFromBody(tb testing.TB, raw []byte, pnum uint32) *core.Batch {
	var doc struct{ Events []json.RawMessage }
	if err := json.Unmarshal(raw, &doc); err != nil {
		tb.Fatal(err)
	}
	b := &core.Batch{ProjectID: "bench", ProjectNum: pnum}
	for _, e := range doc.Events {
		var head struct {
			Type      string
			SessionID string
			TS        int64
		}
		json.Unmarshal(e, &head)
		t, _ := core.ParseEventType([]byte(head.Type))
		b.AppendEvent(t, head.TS, []byte(head.SessionID), e)
	}
	return b
}

// BenchmarkAggregatorFold measures how fast the aggregator folds the ingest
// log into aggregates: each op folds one 200-event record (up to
// benchFoldRecords records per transaction), events/s and records per
// fold reported.
func BenchmarkAggregatorFold(b *testing.B) {
	benchFold(b, func(pnum uint32) []*core.Batch { return []*core.Batch{fixtureBatch(b, pnum)} })
}

// BenchmarkAggregatorFoldMix is BenchmarkAggregatorFold over the bench
// generator's batches: the ingest scenario's 64 bodies (8 clients in
// flight, every event type, sessions that start, move between scenes and
// end) instead of one fixture batch folded again and again.
func BenchmarkAggregatorFoldMix(b *testing.B) { benchFoldGen(b, 64) }

// BenchmarkAggregatorFoldMixHours is BenchmarkAggregatorFoldMix over 1024
// bodies, about two hours of the 8 clients: the scene-wide hourly cells
// grow to tens of kilobytes each, and every fold rewrites those it
// touches.
func BenchmarkAggregatorFoldMixHours(b *testing.B) { benchFoldGen(b, 1024) }

func benchFoldGen(b *testing.B, bodies int) {
	benchFold(b, func(pnum uint32) []*core.Batch {
		g := gen.New(gen.Config{Seed: 1})
		batches := make([]*core.Batch, bodies)
		for i := range batches {
			batches[i] = batchFromBody(b, g.Next(nil), pnum)
		}
		return batches
	})
}

// benchFoldRecords is the records a benchmark fold takes at most, as the
// aggregator's (under load its passes are foldInterval apart and take
// about that many). Like the aggregator, the benchmark halves it while a
// fold does not fit one transaction.
const benchFoldRecords = foldRecords

func benchFold(b *testing.B, batchesOf func(pnum uint32) []*core.Batch) {
	s := openTest(b, Options{DisableAggregation: true})
	if _, err := s.Registry().CreateProject("bench"); err != nil {
		b.Fatal(err)
	}
	pnum := s.Registry().Project("bench").Num
	batches := batchesOf(pnum)
	next, limit, folds := 0, benchFoldRecords, 0
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		b.StopTimer()
		n := min(benchFoldRecords, b.N-done)
		for i := 0; i < n; i++ {
			batch := batches[next%len(batches)]
			next++
			if err := s.Sink().Commit(b.Context(), batch); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		for folded := 0; folded < n; {
			k, err := s.Aggregator().foldProject(pnum, limit)
			if errors.Is(err, badger.ErrTxnTooBig) && limit > 1 {
				limit /= 2 // as foldUntilCaughtUp does
				continue
			}
			folds++
			if err != nil || k == 0 {
				b.Fatalf("fold: %d %v", k, err)
			}
			folded += k
		}
		done += n
	}
	b.ReportMetric(float64(b.N)*200/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/float64(folds), "records/fold")
}
