package edge

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// limiterT0 is the start of a one-minute window (Unix time is a multiple of 60 s).
var limiterT0 = time.Unix(1_750_000_020, 0)

func TestLimiterExactlyMaxThenDenied(t *testing.T) {
	l := NewLimiter(5, time.Minute)
	for i := 0; i < 5; i++ {
		if ok, ra := l.Allow(42, limiterT0.Add(time.Duration(i)*time.Second)); !ok || ra != 0 {
			t.Fatalf("request %d denied (retryAfter %v)", i+1, ra)
		}
	}
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow(42, limiterT0.Add(10*time.Second)); ok {
			t.Fatalf("request %d beyond max allowed", 6+i)
		}
	}
}

func TestLimiterResetsAtWindowBoundary(t *testing.T) {
	l := NewLimiter(2, time.Minute)
	l.Allow(7, limiterT0)
	l.Allow(7, limiterT0)
	if ok, _ := l.Allow(7, limiterT0.Add(time.Minute-time.Nanosecond)); ok {
		t.Fatal("allowed in the last nanosecond of a full window")
	}
	for i := 0; i < 2; i++ {
		if ok, _ := l.Allow(7, limiterT0.Add(time.Minute)); !ok {
			t.Fatalf("request %d of the next window denied", i+1)
		}
	}
	if ok, _ := l.Allow(7, limiterT0.Add(time.Minute)); ok {
		t.Fatal("third request of the next window allowed")
	}
	// Several windows later the key starts from zero again.
	if ok, _ := l.Allow(7, limiterT0.Add(10*time.Minute)); !ok {
		t.Fatal("denied after idle windows")
	}
}

func TestLimiterLateRequestCountsInCurrentWindow(t *testing.T) {
	l := NewLimiter(1, time.Minute)
	if ok, _ := l.Allow(9, limiterT0.Add(time.Minute)); !ok {
		t.Fatal("first request denied")
	}
	// A request whose clock reading is from the previous window, processed
	// after the shard moved on, must not reopen that window's budget.
	ok, ra := l.Allow(9, limiterT0.Add(time.Minute-time.Millisecond))
	if ok {
		t.Fatal("late request got a fresh budget")
	}
	if ra != 61*time.Second {
		t.Fatalf("retryAfter %v, want 61s (window ends 60.001s later)", ra)
	}
}

func TestLimiterRetryAfter(t *testing.T) {
	cases := []struct {
		window time.Duration
		at     time.Duration // offset of the denied request into the window
		want   time.Duration
	}{
		{time.Minute, 0, 60 * time.Second},
		{time.Minute, time.Nanosecond, 60 * time.Second},
		{time.Minute, 30 * time.Second, 30 * time.Second},
		{time.Minute, 30*time.Second + time.Millisecond, 30 * time.Second},
		{time.Minute, 29*time.Second + time.Millisecond, 31 * time.Second},
		{time.Minute, 59*time.Second + 999*time.Millisecond, time.Second},
		{time.Minute, time.Minute - time.Nanosecond, time.Second},
		{100 * time.Millisecond, 50 * time.Millisecond, time.Second}, // never below 1s
		{time.Hour, 0, time.Hour},
	}
	for _, c := range cases {
		l := NewLimiter(1, c.window)
		start := limiterT0.Truncate(c.window)
		if start.UnixNano()%int64(c.window) != 0 {
			t.Fatalf("bad test start for window %v", c.window)
		}
		l.Allow(1, start)
		ok, got := l.Allow(1, start.Add(c.at))
		if ok {
			t.Fatalf("window %v: second request allowed", c.window)
		}
		if got != c.want {
			t.Errorf("window %v, at +%v: retryAfter %v, want %v", c.window, c.at, got, c.want)
		}
	}
}

func TestLimiterWindowsAlignedToEpoch(t *testing.T) {
	// Two limiters created at different times agree on window edges.
	a := NewLimiter(1, time.Minute)
	b := NewLimiter(1, time.Minute)
	a.Allow(3, limiterT0.Add(59*time.Second))
	if ok, _ := a.Allow(3, limiterT0.Add(61*time.Second)); !ok {
		t.Fatal("window edge not at a multiple of 60s since the epoch")
	}
	b.Allow(3, limiterT0.Add(61*time.Second))
	if ok, _ := b.Allow(3, limiterT0.Add(119*time.Second)); ok {
		t.Fatal("61s and 119s should share a window")
	}
	// Instants before 1970 use floor division too.
	c := NewLimiter(1, time.Minute)
	pre := time.Unix(-60, 0)
	c.Allow(3, pre)
	if ok, _ := c.Allow(3, pre.Add(59*time.Second)); ok {
		t.Fatal("-60s and -1s should share a window")
	}
	if ok, _ := c.Allow(3, time.Unix(0, 0)); !ok {
		t.Fatal("0s starts a new window")
	}
}

func TestLimiterIndependentKeys(t *testing.T) {
	l := NewLimiter(3, time.Minute)
	for k := uint64(0); k < 1000; k++ {
		for i := 0; i < 3; i++ {
			if ok, _ := l.Allow(k, limiterT0); !ok {
				t.Fatalf("key %d request %d denied", k, i+1)
			}
		}
	}
	for k := uint64(0); k < 1000; k++ {
		if ok, _ := l.Allow(k, limiterT0); ok {
			t.Fatalf("key %d: fourth request allowed", k)
		}
	}
	if n := l.entries(); n != 1000 {
		t.Fatalf("tracking %d keys, want 1000", n)
	}
}

func TestLimiterDisabled(t *testing.T) {
	for _, l := range []*Limiter{NewLimiter(0, time.Minute), NewLimiter(-5, time.Second), nil} {
		for i := 0; i < 10000; i++ {
			if ok, ra := l.Allow(1, limiterT0); !ok || ra != 0 {
				t.Fatalf("disabled limiter denied request %d", i)
			}
		}
	}
}

func TestLimiterDefaultWindow(t *testing.T) {
	l := NewLimiter(1, 0)
	l.Allow(1, limiterT0)
	if ok, ra := l.Allow(1, limiterT0.Add(30*time.Second)); ok || ra != 30*time.Second {
		t.Fatalf("window 0: ok=%v retryAfter=%v, want a one-minute window", ok, ra)
	}
}

func TestLimiterConcurrentExactTotals(t *testing.T) {
	const (
		goroutines = 16
		perG       = 2000
		max        = 1000
	)
	l := NewLimiter(max, time.Minute)
	var shared atomic.Int64
	own := make([]atomic.Int64, goroutines)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < perG; i++ {
				if ok, _ := l.Allow(0xfeed, limiterT0); ok {
					shared.Add(1)
				}
				if ok, _ := l.Allow(uint64(g+1), limiterT0.Add(time.Duration(i)*time.Millisecond)); ok {
					own[g].Add(1)
				}
			}
		}(g)
	}
	wg.Wait()
	if got := shared.Load(); got != max {
		t.Errorf("shared key: %d allowed, want exactly %d", got, max)
	}
	for g := range own {
		if got := own[g].Load(); got != max {
			t.Errorf("key of goroutine %d: %d allowed, want %d", g, got, max)
		}
	}
}

func TestLimiterMemoryBound(t *testing.T) {
	const shardCap = 256
	l := newLimiter(10, time.Minute, shardCap)
	limit := limiterShards * shardCap
	for k := uint64(0); k < 1_000_000; k++ {
		if ok, _ := l.Allow(k, limiterT0); !ok {
			t.Fatalf("new key %d denied", k)
		}
	}
	if n := l.entries(); n > limit {
		t.Fatalf("%d entries, cap %d", n, limit)
	}
	for i := range l.shards {
		if n := len(l.shards[i].counts); n > shardCap {
			t.Fatalf("shard %d holds %d entries, cap %d", i, n, shardCap)
		}
	}
	// A key that keeps sending is evicted rarely: the least-used entries of a
	// sample go first, and it keeps being limited.
	hot := uint64(1 << 40)
	allowed := 0
	for i := 0; i < 100; i++ {
		if ok, _ := l.Allow(hot, limiterT0); ok {
			allowed++
		}
		l.Allow(uint64(2_000_000+i), limiterT0) // more flood in between
	}
	if allowed > 20 {
		t.Errorf("hot key allowed %d times under a flood, max is 10 (plus rare evictions)", allowed)
	}
}

func TestLimiterMemoryBoundDefaultCap(t *testing.T) {
	if testing.Short() {
		t.Skip("1e6 keys")
	}
	l := NewLimiter(10, time.Minute)
	for k := uint64(0); k < 1_000_000; k++ {
		l.Allow(k*0x9E3779B97F4A7C15+7, limiterT0)
	}
	if n, limit := l.entries(), limiterShards*defaultShardCap; n > limit || n < 900_000 {
		t.Fatalf("%d entries (cap %d)", n, limit)
	}
}

func TestLimiterDropsOldWindowsAndShrinks(t *testing.T) {
	l := newLimiter(10, time.Minute, 1<<12)
	// A flood window: many distinct keys.
	for k := uint64(0); k < 100_000; k++ {
		l.Allow(k, limiterT0)
	}
	peakBefore := 0
	for i := range l.shards {
		peakBefore = max(peakBefore, l.shards[i].peak)
	}
	if peakBefore <= shrinkMin {
		t.Fatalf("test setup: peak %d does not exceed shrinkMin", peakBefore)
	}
	// Two quiet windows touching every shard with one key each.
	quiet := func(at time.Time) {
		for k := uint64(0); k < 10_000; k++ {
			l.Allow(k, at)
		}
	}
	quiet(limiterT0.Add(time.Minute))
	if n := l.entries(); n != 10_000 {
		t.Fatalf("after rollover: %d entries, want only the 10000 keys of the new window", n)
	}
	quiet(limiterT0.Add(2 * time.Minute))
	for i := range l.shards {
		if p := l.shards[i].peak; p > 4*len(l.shards[i].counts) && p > shrinkMin {
			t.Errorf("shard %d still sized for %d keys while holding %d", i, p, len(l.shards[i].counts))
		}
	}
}

func TestLimiterZeroAllocs(t *testing.T) {
	l := NewLimiter(1<<30, time.Minute)
	keys := make([]uint64, 256)
	for i := range keys {
		keys[i] = HashIP(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
		l.Allow(keys[i], limiterT0)
	}
	allocs := testing.AllocsPerRun(200, func() {
		for _, k := range keys {
			l.Allow(k, limiterT0.Add(time.Second))
		}
	})
	if allocs != 0 {
		t.Fatalf("Allow allocates %.1f times per pass over existing keys", allocs)
	}
	// The deny path does not allocate either.
	d := NewLimiter(1, time.Minute)
	d.Allow(5, limiterT0)
	allocs = testing.AllocsPerRun(1000, func() { d.Allow(5, limiterT0) })
	if allocs != 0 {
		t.Fatalf("denied Allow allocates %.1f times", allocs)
	}
	// Nor does a window change for a shard whose map is reused.
	w := NewLimiter(10, time.Minute)
	w.Allow(5, limiterT0)
	i := 1
	allocs = testing.AllocsPerRun(1000, func() {
		w.Allow(5, limiterT0.Add(time.Duration(i)*time.Minute))
		i++
	})
	if allocs != 0 {
		t.Fatalf("Allow across window changes allocates %.1f times", allocs)
	}
}

func TestHashIP(t *testing.T) {
	h := func(s string) uint64 { return HashIP(netip.MustParseAddr(s)) }
	if h("192.0.2.1") != h("::ffff:192.0.2.1") {
		t.Error("mapped and plain IPv4 hash differently")
	}
	if h("192.0.2.1") == h("192.0.2.2") {
		t.Error("distinct IPv4 addresses collide")
	}
	if h("2001:db8:1:2::1") != h("2001:db8:1:2:ffff:ffff:ffff:ffff") {
		t.Error("addresses of one IPv6 /64 hash differently")
	}
	if h("2001:db8:1:2::1") == h("2001:db8:1:3::1") {
		t.Error("different IPv6 /64s collide")
	}
	if h("fe80::1%eth0") != h("fe80::1") {
		t.Error("zone changes the hash")
	}
	if h("::") == h("0.0.0.0") {
		t.Error(":: and 0.0.0.0 collide")
	}
	ip := netip.MustParseAddr("2001:db8::1")
	var sink uint64
	if a := testing.AllocsPerRun(1000, func() { sink = HashIP(ip) }); a != 0 {
		t.Fatalf("HashIP allocates %.1f times", a)
	}
	_ = sink
}
