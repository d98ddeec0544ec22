package edge

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkLimiterAllow: one goroutine, a working set of existing keys.
func BenchmarkLimiterAllow(b *testing.B) {
	l := NewLimiter(1<<30, time.Minute)
	keys := make([]uint64, 1024)
	for i := range keys {
		keys[i] = HashIP(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Allow(keys[i&1023], limiterT0)
		i++
	}
}

// BenchmarkLimiterAllowParallel: all cores, each goroutine on its own keys.
func BenchmarkLimiterAllowParallel(b *testing.B) {
	l := NewLimiter(1<<30, time.Minute)
	var seq atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		base := seq.Add(1) << 32
		i := uint64(0)
		for pb.Next() {
			l.Allow(base+i&1023, limiterT0)
			i++
		}
	})
}

// BenchmarkLimiterAllowParallelSameKey: all cores hammering one key (one shard).
func BenchmarkLimiterAllowParallelSameKey(b *testing.B) {
	l := NewLimiter(100, time.Minute)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Allow(42, limiterT0)
		}
	})
}

// BenchmarkLimiterNewKeys: a flood of distinct keys against a full limiter.
func BenchmarkLimiterNewKeys(b *testing.B) {
	l := newLimiter(10, time.Minute, 1<<10)
	b.ReportAllocs()
	k := uint64(0)
	for b.Loop() {
		l.Allow(k*0x9E3779B97F4A7C15, limiterT0)
		k++
	}
}

func BenchmarkHashIP(b *testing.B) {
	ip := netip.MustParseAddr("2001:db8:85a3::8a2e:370:7334")
	b.ReportAllocs()
	for b.Loop() {
		HashIP(ip)
	}
}
