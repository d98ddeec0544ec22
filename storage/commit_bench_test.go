package storage

import (
	"context"
	"testing"
)

// BenchmarkCommit measures the group committer: parallel callers each commit
// a 200-event batch (about 60 bytes an event) and wait until it is durable.
func BenchmarkCommit(b *testing.B) {
	for _, c := range []struct {
		name      string
		compress  bool
		retention bool
	}{{"s2", true, false}, {"plain", false, false}, {"s2+retention", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			comp := c.compress
			s := openTest(b, Options{LogCompression: &comp, Retention: c.retention})
			batch := testBatch(1, 200, "s1", "s2", "s3")
			b.SetBytes(int64(len(batch.Buf)))
			b.ReportAllocs()
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				bb := testBatch(1, 200, "s1", "s2", "s3")
				for pb.Next() {
					if err := s.Sink().Commit(context.Background(), bb); err != nil {
						b.Error(err)
						return
					}
				}
			})
			groups, reqs := s.Committer().Stats()
			b.ReportMetric(float64(reqs)/float64(max(groups, 1)), "req/group")
		})
	}
}
