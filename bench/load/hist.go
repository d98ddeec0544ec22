package load

import (
	"math"
	"math/bits"
	"time"
)

// Histogram is a log-linear latency histogram in the style of HdrHistogram.
// Values below 128 ns are kept exactly; above, every power of two is split
// into 128 equal buckets, so a recorded value is known to within 1/128
// (0.8 %) of itself. The range ends at 2^38 ns (about 275 s); larger values
// land in the last bucket. Recording is a few integer operations and never
// allocates; histograms of several workers are combined with Merge.
//
// The zero value is an empty histogram ready for use. It is not safe for
// concurrent use: give each goroutine its own and merge them.
type Histogram struct {
	counts [histBuckets]uint64
	total  uint64
	sum    uint64 // nanoseconds
	min    uint64
	max    uint64
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits // buckets per power of two
	histMaxExp  = 30               // values up to 2^(histMaxExp+histSubBits+1) ns
	histBuckets = (histMaxExp + 2) * histSub
	histMaxNs   = uint64(1)<<(histMaxExp+histSubBits+1) - 1
)

// bucketOf returns the bucket index of a value in nanoseconds.
func bucketOf(v uint64) int {
	if v > histMaxNs {
		v = histMaxNs
	}
	if v < histSub {
		return int(v)
	}
	e := bits.Len64(v) - histSubBits - 1
	return e*histSub + int(v>>uint(e))
}

// bucketRange returns the smallest value of bucket i and the bucket's width.
func bucketRange(i int) (lo, width uint64) {
	if i < 2*histSub {
		return uint64(i), 1
	}
	e := i/histSub - 1
	m := uint64(i - e*histSub)
	return m << uint(e), 1 << uint(e)
}

// Record adds one latency. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	var v uint64
	if d > 0 {
		v = uint64(d)
	}
	h.counts[bucketOf(v)]++
	if h.total == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.total++
	h.sum += v
}

// Merge adds every value recorded in o.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.total += o.total
	h.sum += o.sum
}

// Reset empties the histogram.
func (h *Histogram) Reset() { *h = Histogram{} }

// Count is the number of recorded values.
func (h *Histogram) Count() int64 { return int64(h.total) }

// Min is the smallest recorded value (exact), 0 when empty.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Max is the largest recorded value (exact), 0 when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean is the arithmetic mean of the recorded values (exact), 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum / h.total)
}

// Percentile returns the latency below or at which the fraction q of the
// recorded values lie, q in [0, 1]: Percentile(0.999) is p99.9. It uses the
// nearest-rank definition, the value of rank ceil(q·n) in sorted order,
// reported as the middle of its bucket and clamped to the exact minimum and
// maximum; q ≤ 0 gives the minimum, q ≥ 1 the maximum. An empty histogram
// returns 0.
func (h *Histogram) Percentile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	if q <= 0 || math.IsNaN(q) {
		return time.Duration(h.min)
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		seen += c
		if seen >= rank {
			lo, w := bucketRange(i)
			v := lo + (w-1)/2
			if v < h.min {
				v = h.min
			}
			if v > h.max {
				v = h.max
			}
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}
