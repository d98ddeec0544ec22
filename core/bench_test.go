package core

import "testing"

// BenchmarkAdd measures the per-event hot path over a 200-event fixture
// batch; bytes are the events' input JSON.
func BenchmarkAdd(b *testing.B) {
	var fx *fixture
	for _, f := range loadFixtures(b) {
		if len(f.events) == 200 {
			fx = &f
			break
		}
	}
	if fx == nil {
		b.Fatal("no 200-event fixture")
	}
	for _, bc := range []struct {
		name string
		ch   Channels
	}{{"all-channels", AllChannels()}, {"default-channels", DefaultChannels()}} {
		b.Run(bc.name, func(b *testing.B) {
			info := testInfo(bc.ch)
			var p Processor
			var batch Batch
			run := func() {
				batch.Reset()
				p.Begin(&batch, info)
				for _, ev := range fx.events {
					p.Add(ev)
				}
			}
			run() // grow the buffers before measuring
			b.SetBytes(int64(fx.bytes))
			b.ReportAllocs()
			for b.Loop() {
				run()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(fx.events)), "ns/event")
		})
	}
}
