package load

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// exact is the nearest-rank percentile of sorted values.
func exact(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = max(rank, 1)
	return sorted[rank-1]
}

func TestHistogramPercentiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sets := map[string][]time.Duration{}

	// Log-uniform from 1 µs to 60 s.
	var logu []time.Duration
	for range 200_000 {
		logu = append(logu, time.Duration(math.Exp(rng.Float64()*math.Log(60e9/1e3))*1e3))
	}
	sets["log-uniform 1µs..60s"] = logu

	// A typical loopback shape: most around 300 µs, a slow tail.
	var shaped []time.Duration
	for range 100_000 {
		v := 250*time.Microsecond + time.Duration(rng.ExpFloat64()*float64(80*time.Microsecond))
		if rng.IntN(1000) == 0 {
			v = 20*time.Millisecond + time.Duration(rng.IntN(int(30*time.Millisecond)))
		}
		shaped = append(shaped, v)
	}
	sets["loopback with tail"] = shaped

	// Every value from 1 to 10000 ns once: includes the exact region.
	var seq []time.Duration
	for i := 1; i <= 10000; i++ {
		seq = append(seq, time.Duration(i))
	}
	sets["1..10000ns"] = seq

	for name, vals := range sets {
		var h Histogram
		for _, v := range vals {
			h.Record(v)
		}
		sorted := slices.Clone(vals)
		slices.Sort(sorted)
		for _, q := range []float64{0.01, 0.10, 0.50, 0.90, 0.99, 0.999, 0.9999} {
			want, got := exact(sorted, q), h.Percentile(q)
			if rel := math.Abs(float64(got-want)) / float64(want); rel > 0.02 {
				t.Errorf("%s p%v: %v, exact %v (%.2f%% off)", name, q*100, got, want, rel*100)
			}
		}
		if h.Count() != int64(len(vals)) || h.Min() != sorted[0] || h.Max() != sorted[len(sorted)-1] {
			t.Errorf("%s: count %d min %v max %v", name, h.Count(), h.Min(), h.Max())
		}
		if h.Percentile(0) != sorted[0] || h.Percentile(1) != sorted[len(sorted)-1] {
			t.Errorf("%s: p0 %v p100 %v", name, h.Percentile(0), h.Percentile(1))
		}
		var sum time.Duration
		for _, v := range vals {
			sum += v
		}
		if m := sum / time.Duration(len(vals)); h.Mean() != m {
			t.Errorf("%s: mean %v, exact %v", name, h.Mean(), m)
		}
	}
}

func TestHistogramBuckets(t *testing.T) {
	// Buckets are contiguous and each value lies in its bucket.
	prev := -1
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 257, 511, 512, 1000, 1e6, 1e9, 6e10, histMaxNs} {
		i := bucketOf(v)
		lo, w := bucketRange(i)
		if v < lo || v >= lo+w {
			t.Errorf("%d in bucket %d = [%d, %d)", v, i, lo, lo+w)
		}
		if i < prev {
			t.Errorf("bucket of %d is %d, below %d", v, i, prev)
		}
		prev = i
		if v >= 128 && float64(w)/float64(v) > 1.0/128 {
			t.Errorf("%d: bucket width %d", v, w)
		}
	}
	for i := 1; i < histBuckets; i++ {
		lo, _ := bucketRange(i)
		plo, pw := bucketRange(i - 1)
		if plo+pw != lo {
			t.Fatalf("gap between bucket %d and %d", i-1, i)
		}
	}
	if bucketOf(math.MaxUint64) != histBuckets-1 {
		t.Error("overflow does not land in the last bucket")
	}
}

func TestHistogramMergeAndEdges(t *testing.T) {
	var empty Histogram
	if empty.Percentile(0.5) != 0 || empty.Mean() != 0 || empty.Max() != 0 {
		t.Error("empty histogram reports values")
	}
	var a, b, all Histogram
	for i := range 1000 {
		d := time.Duration(i+1) * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	a.Merge(&empty)
	if a != all {
		t.Error("merged histogram differs from one fed every value")
	}
	var neg Histogram
	neg.Record(-time.Second)
	if neg.Max() != 0 || neg.Count() != 1 {
		t.Error("negative duration not recorded as zero")
	}
	var huge Histogram
	huge.Record(time.Hour)
	if huge.Percentile(0.5) != time.Hour {
		t.Errorf("value beyond range reported as %v", huge.Percentile(0.5))
	}
}

func TestHistogramRecordAllocs(t *testing.T) {
	var h Histogram
	if n := testing.AllocsPerRun(1000, func() { h.Record(1234 * time.Microsecond) }); n != 0 {
		t.Errorf("%v allocations per Record", n)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	vals := make([]time.Duration, 1024)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range vals {
		vals[i] = time.Duration(rng.Int64N(int64(100 * time.Millisecond)))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h.Record(vals[i&1023])
		i++
	}
}

func BenchmarkHistogramPercentile(b *testing.B) {
	var h Histogram
	for i := range 1_000_000 {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = h.Percentile(0.999)
	}
}
