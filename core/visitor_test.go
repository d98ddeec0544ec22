package core

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var testVisitorSecret = []byte("0123456789abcdef-test-secret")

const visitorTestUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"

func mustHasher(t testing.TB, secret []byte) *VisitorHasher {
	t.Helper()
	h, err := NewVisitorHasher(secret)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func visitorID(h *VisitorHasher, ip string, ua string, now time.Time) string {
	var dst [32]byte
	h.Hash(&dst, netip.MustParseAddr(ip), []byte(ua), now)
	return string(dst[:])
}

// referenceVisitorID is an independent, straightforward implementation of SPEC §6.
func referenceVisitorID(secret []byte, ipText, ua string, now time.Time) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(now.UTC().Format("2006-01-02")))
	salt := hex.EncodeToString(m.Sum(nil))
	sum := sha256.Sum256([]byte(ipText + "|" + ua + "|" + salt))
	return hex.EncodeToString(sum[:])[:32]
}

func TestNewVisitorHasherSecretLength(t *testing.T) {
	if _, err := NewVisitorHasher(nil); err == nil {
		t.Error("nil secret accepted")
	}
	if _, err := NewVisitorHasher(make([]byte, 15)); err == nil {
		t.Error("15-byte secret accepted")
	}
	if _, err := NewVisitorHasher(make([]byte, 16)); err != nil {
		t.Errorf("16-byte secret rejected: %v", err)
	}
}

func TestVisitorHashSecretIsCopied(t *testing.T) {
	secret := append([]byte(nil), testVisitorSecret...)
	h := mustHasher(t, secret)
	secret[0] ^= 0xff // the caller reuses its buffer after construction
	now := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	got := visitorID(h, "203.0.113.7", visitorTestUA, now)
	if want := referenceVisitorID(testVisitorSecret, "203.0.113.7", visitorTestUA, now); got != want {
		t.Fatalf("hasher followed a change to the caller's secret slice: %s, want %s", got, want)
	}
}

func TestVisitorHashMatchesReference(t *testing.T) {
	h := mustHasher(t, testVisitorSecret)
	cases := []struct {
		ip, canonical, ua string
		now               time.Time
	}{
		{"203.0.113.7", "203.0.113.7", visitorTestUA, time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)},
		{"::ffff:203.0.113.7", "203.0.113.7", visitorTestUA, time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)},
		{"2001:DB8:0:0::1", "2001:db8::1", "curl/8.5.0", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"fe80::1%eth0", "fe80::1", "", time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC)},
		{"10.0.0.1", "10.0.0.1", "ua|with|pipes", time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC)},
		// A non-UTC location: the day is the UTC day (2025-03-15 01:30 UTC).
		{"10.0.0.1", "10.0.0.1", visitorTestUA, time.Date(2025, 3, 14, 20, 30, 0, 0, time.FixedZone("EST", -5*3600))},
	}
	// User-Agents around and far beyond the inline buffer take the streaming path.
	for _, n := range []int{maxInlineUA - 1, maxInlineUA, maxInlineUA + 1, 10 << 10} {
		ua := strings.Repeat("x", n)
		cases = append(cases, struct {
			ip, canonical, ua string
			now               time.Time
		}{"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", ua, time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)})
	}
	for _, c := range cases {
		got := visitorID(h, c.ip, c.ua, c.now)
		want := referenceVisitorID(testVisitorSecret, c.canonical, c.ua, c.now)
		if got != want {
			t.Errorf("Hash(%q, UA of %d bytes, %v) = %s, reference %s", c.ip, len(c.ua), c.now, got, want)
		}
	}
}

func TestVisitorHashFormat(t *testing.T) {
	h := mustHasher(t, testVisitorSecret)
	re := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for i, ip := range []string{"1.2.3.4", "::1", "2001:db8::dead:beef"} {
		id := visitorID(h, ip, visitorTestUA, time.Unix(int64(i)*1e8, 0))
		if !re.MatchString(id) {
			t.Errorf("id %q is not 32 lowercase hex chars", id)
		}
	}
}

func TestVisitorHashDeterministicAcrossHashers(t *testing.T) {
	// Two hashers with the same secret stand in for two edge nodes.
	a := mustHasher(t, testVisitorSecret)
	b := mustHasher(t, append([]byte(nil), testVisitorSecret...))
	now := time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)
	x := visitorID(a, "198.51.100.4", visitorTestUA, now)
	if y := visitorID(a, "198.51.100.4", visitorTestUA, now); y != x {
		t.Fatalf("same hasher, same input: %s vs %s", x, y)
	}
	if y := visitorID(b, "198.51.100.4", visitorTestUA, now); y != x {
		t.Fatalf("same secret on another hasher: %s vs %s", x, y)
	}
}

func TestVisitorHashInputsMatter(t *testing.T) {
	h := mustHasher(t, testVisitorSecret)
	other := mustHasher(t, []byte("another-secret-of-16+bytes"))
	now := time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)
	base := visitorID(h, "198.51.100.4", visitorTestUA, now)
	diff := map[string]string{
		"secret": visitorID(other, "198.51.100.4", visitorTestUA, now),
		"ip":     visitorID(h, "198.51.100.5", visitorTestUA, now),
		"ua":     visitorID(h, "198.51.100.4", visitorTestUA+" ", now),
	}
	for what, id := range diff {
		if id == base {
			t.Errorf("changing the %s did not change the id", what)
		}
	}
	if got := visitorID(h, "::ffff:198.51.100.4", visitorTestUA, now); got != base {
		t.Errorf("IPv4-mapped form gives a different id: %s vs %s", got, base)
	}
}

func TestVisitorHashDayRotation(t *testing.T) {
	h := mustHasher(t, testVisitorSecret)
	lastMs := time.Date(2025, 6, 1, 23, 59, 59, 999_000_000, time.UTC)
	lastNs := time.Date(2025, 6, 1, 23, 59, 59, 999_999_999, time.UTC)
	midnight := time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)
	morning := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	noon := time.Date(2025, 6, 1, 12, 34, 56, 0, time.UTC)

	day1 := visitorID(h, "192.0.2.1", visitorTestUA, noon)
	for _, ts := range []time.Time{morning, lastMs, lastNs} {
		if got := visitorID(h, "192.0.2.1", visitorTestUA, ts); got != day1 {
			t.Errorf("%v: id %s differs from same-day id %s", ts, got, day1)
		}
	}
	day2 := visitorID(h, "192.0.2.1", visitorTestUA, midnight)
	if day2 == day1 {
		t.Fatal("id did not change at 00:00:00 UTC")
	}
	if want := referenceVisitorID(testVisitorSecret, "192.0.2.1", visitorTestUA, midnight); day2 != want {
		t.Fatalf("day 2 id %s, reference %s", day2, want)
	}
	// Requests straddling midnight out of order keep mapping to their own day.
	for i := 0; i < 3; i++ {
		if got := visitorID(h, "192.0.2.1", visitorTestUA, lastMs); got != day1 {
			t.Fatalf("back to day 1: %s want %s", got, day1)
		}
		if got := visitorID(h, "192.0.2.1", visitorTestUA, midnight); got != day2 {
			t.Fatalf("back to day 2: %s want %s", got, day2)
		}
	}
	// Going far away and back still yields the right ids.
	if got := visitorID(h, "192.0.2.1", visitorTestUA, midnight.AddDate(1, 0, 0)); got == day2 {
		t.Fatal("a year later: same id")
	}
	if got := visitorID(h, "192.0.2.1", visitorTestUA, noon); got != day1 {
		t.Fatalf("after cache churn: %s want %s", got, day1)
	}
}

func TestVisitorHashConcurrent(t *testing.T) {
	h := mustHasher(t, testVisitorSecret)
	base := time.Date(2025, 6, 1, 23, 59, 59, 0, time.UTC)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				now := base.Add(time.Duration(i%3) * time.Second) // crosses midnight
				got := visitorID(h, "192.0.2.9", visitorTestUA, now)
				if want := referenceVisitorID(testVisitorSecret, "192.0.2.9", visitorTestUA, now); got != want {
					t.Errorf("goroutine %d: %s want %s", g, got, want)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

func TestVisitorHashZeroAllocs(t *testing.T) {
	h := mustHasher(t, testVisitorSecret)
	ip4 := netip.MustParseAddr("::ffff:203.0.113.7")
	ip6 := netip.MustParseAddr("2001:db8:85a3::8a2e:370:7334")
	ua := []byte(visitorTestUA)
	now := time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)
	var dst [32]byte
	h.Hash(&dst, ip4, ua, now) // warm the salt cache and the pool
	allocs := testing.AllocsPerRun(1000, func() {
		h.Hash(&dst, ip4, ua, now)
		h.Hash(&dst, ip6, ua, now.Add(time.Hour))
	})
	if allocs != 0 {
		t.Fatalf("Hash allocates %.1f times per call pair", allocs)
	}
}

func BenchmarkVisitorHash(b *testing.B) {
	h := mustHasher(b, testVisitorSecret)
	ip := netip.MustParseAddr("203.0.113.7")
	ua := []byte(visitorTestUA)
	now := time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)
	var dst [32]byte
	b.ReportAllocs()
	for b.Loop() {
		h.Hash(&dst, ip, ua, now)
	}
}

func BenchmarkVisitorHashParallel(b *testing.B) {
	h := mustHasher(b, testVisitorSecret)
	ip := netip.MustParseAddr("2001:db8:85a3::8a2e:370:7334")
	ua := []byte(visitorTestUA)
	now := time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var dst [32]byte
		for pb.Next() {
			h.Hash(&dst, ip, ua, now)
		}
	})
}
