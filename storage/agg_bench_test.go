package storage

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

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
// log into aggregates: each op folds one 200-event record (256 records per
// transaction), events/s reported.
func BenchmarkAggregatorFold(b *testing.B) {
	s := openTest(b, Options{DisableAggregation: true})
	if _, err := s.Registry().CreateProject("bench"); err != nil {
		b.Fatal(err)
	}
	pnum := s.Registry().Project("bench").Num
	batch := fixtureBatch(b, pnum)
	b.ReportAllocs()
	for done := 0; done < b.N; {
		b.StopTimer()
		n := min(foldRecords, b.N-done)
		for i := 0; i < n; i++ {
			if err := s.Sink().Commit(b.Context(), batch); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		for folded := 0; folded < n; {
			k, err := s.Aggregator().foldProject(pnum, foldRecords)
			if err != nil || k == 0 {
				b.Fatalf("fold: %d %v", k, err)
			}
			folded += k
		}
		done += n
	}
	b.ReportMetric(float64(b.N)*200/b.Elapsed().Seconds(), "events/s")
}
