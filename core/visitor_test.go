package core

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
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

func visitorID(h *VisitorHasher, project, ip string, ua string, now time.Time) string {
	var dst [32]byte
	h.Hash(&dst, project, netip.MustParseAddr(ip), []byte(ua), now)
	return string(dst[:])
}

// The reference: a straightforward rendering of the definitions in
// visitor.go and ratchet.go, written apart from them.

func refH(label string, x []byte) [32]byte {
	return sha256.Sum256(append([]byte("uptimizr/"+label+"\x00"), x...))
}

func refSeed(secret []byte, day int64) [32]byte {
	s := refH("secret", secret)
	for d := int64(0); d < day; d++ {
		s = refH("ratchet", s[:])
	}
	return s
}

func refIDFromSeed(seed [32]byte, project, ipText, ua string) string {
	salt := refH("salt", seed[:])
	label := make([]byte, 32)
	copy(label, "uptimizr visitor id v2")
	in := append(salt[:], label...)
	in = binary.BigEndian.AppendUint16(in, uint16(len(project)))
	in = append(in, project...)
	in = append(in, byte(len(ipText)))
	in = append(in, ipText...)
	in = append(in, ua...)
	sum := sha256.Sum256(in)
	return hex.EncodeToString(sum[:16])
}

func referenceVisitorID(secret []byte, project, ipText, ua string, now time.Time) string {
	day := now.Unix() / 86400
	if now.Unix() < 0 {
		day = 0 // the ratchet starts at day 0
	}
	return refIDFromSeed(refSeed(secret, day), project, ipText, ua)
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
	got := visitorID(h, "shop", "203.0.113.7", visitorTestUA, now)
	if want := referenceVisitorID(testVisitorSecret, "shop", "203.0.113.7", visitorTestUA, now); got != want {
		t.Fatalf("hasher followed a change to the caller's secret slice: %s, want %s", got, want)
	}
}

func TestVisitorHashMatchesReference(t *testing.T) {
	type tc struct {
		project, ip, canonical, ua string
		now                        time.Time
	}
	cases := []tc{
		{"shop", "203.0.113.7", "203.0.113.7", visitorTestUA, time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)},
		{"shop", "::ffff:203.0.113.7", "203.0.113.7", visitorTestUA, time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)},
		{"a", "2001:DB8:0:0::1", "2001:db8::1", "curl/8.5.0", time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)},
		{"p.1:x-y_z", "fe80::1%eth0", "fe80::1", "", time.Date(2025, 3, 16, 23, 59, 59, 0, time.UTC)},
		{strings.Repeat("p", 64), "10.0.0.1", "10.0.0.1", "ua|with|pipes", time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)},
		// A non-UTC location: the day is the UTC day (2025-04-02 01:30 UTC).
		{"shop", "10.0.0.1", "10.0.0.1", visitorTestUA, time.Date(2025, 4, 1, 20, 30, 0, 0, time.FixedZone("EST", -5*3600))},
	}
	// User-Agents and project ids around and far beyond the inline buffer
	// take the streaming path.
	for _, n := range []int{maxInlineUA - 1, maxInlineUA, maxInlineUA + 1, 10 << 10} {
		cases = append(cases, tc{"shop", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", strings.Repeat("x", n), time.Date(2025, 4, 2, 12, 0, 0, 0, time.UTC)})
	}
	cases = append(cases, tc{strings.Repeat("q", maxInlineProject+1), "10.0.0.1", "10.0.0.1", visitorTestUA, time.Date(2025, 4, 3, 12, 0, 0, 0, time.UTC)})
	cases = append(cases, tc{strings.Repeat("q", 300), "10.0.0.1", "10.0.0.1", visitorTestUA, time.Date(2025, 4, 3, 12, 0, 0, 0, time.UTC)})
	h := mustHasher(t, testVisitorSecret) // the cases go forward in time
	for _, c := range cases {
		got := visitorID(h, c.project, c.ip, c.ua, c.now)
		want := referenceVisitorID(testVisitorSecret, c.project, c.canonical, c.ua, c.now)
		if got != want {
			t.Errorf("Hash(%q, %q, UA of %d bytes, %v) = %s, reference %s", c.project, c.ip, len(c.ua), c.now, got, want)
		}
	}
}

func TestVisitorHashFormat(t *testing.T) {
	h := mustHasher(t, testVisitorSecret)
	re := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for i, ip := range []string{"1.2.3.4", "::1", "2001:db8::dead:beef"} {
		id := visitorID(h, "shop", ip, visitorTestUA, time.Unix(int64(i)*1e8, 0))
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
	x := visitorID(a, "shop", "198.51.100.4", visitorTestUA, now)
	if y := visitorID(a, "shop", "198.51.100.4", visitorTestUA, now); y != x {
		t.Fatalf("same hasher, same input: %s vs %s", x, y)
	}
	if y := visitorID(b, "shop", "198.51.100.4", visitorTestUA, now); y != x {
		t.Fatalf("same secret on another hasher: %s vs %s", x, y)
	}
}

func TestVisitorHashInputsMatter(t *testing.T) {
	h := mustHasher(t, testVisitorSecret)
	other := mustHasher(t, []byte("another-secret-of-16+bytes"))
	now := time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)
	base := visitorID(h, "shop", "198.51.100.4", visitorTestUA, now)
	diff := map[string]string{
		"secret":  visitorID(other, "shop", "198.51.100.4", visitorTestUA, now),
		"project": visitorID(h, "blog", "198.51.100.4", visitorTestUA, now),
		"ip":      visitorID(h, "shop", "198.51.100.5", visitorTestUA, now),
		"ua":      visitorID(h, "shop", "198.51.100.4", visitorTestUA+" ", now),
		// The length prefixes keep pieces from sliding into each other.
		"split": visitorID(h, "shop1", "98.51.100.4", visitorTestUA, now),
	}
	for what, id := range diff {
		if id == base {
			t.Errorf("changing the %s did not change the id", what)
		}
	}
	if got := visitorID(h, "shop", "::ffff:198.51.100.4", visitorTestUA, now); got != base {
		t.Errorf("IPv4-mapped form gives a different id: %s vs %s", got, base)
	}
}

// The same browser sending to two projects is two unrelated visitors; one
// project sees one visitor all day on every node.
func TestVisitorHashPerProject(t *testing.T) {
	nodeA := mustHasher(t, testVisitorSecret)
	nodeB := mustHasher(t, testVisitorSecret)
	morning := time.Date(2025, 6, 1, 0, 0, 1, 0, time.UTC)
	evening := time.Date(2025, 6, 1, 23, 59, 59, 0, time.UTC)
	ids := map[string]bool{}
	for _, p := range []string{"shop", "blog", "docs"} {
		a := visitorID(nodeA, p, "198.51.100.4", visitorTestUA, morning)
		if b := visitorID(nodeB, p, "198.51.100.4", visitorTestUA, evening); b != a {
			t.Errorf("project %s: node B in the evening %s, node A in the morning %s", p, b, a)
		}
		if ids[a] {
			t.Errorf("project %s shares its id with another project", p)
		}
		ids[a] = true
	}
}

func TestVisitorHashDayRotation(t *testing.T) {
	h := mustHasher(t, testVisitorSecret)
	morning := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	noon := time.Date(2025, 6, 1, 12, 34, 56, 0, time.UTC)
	lastMs := time.Date(2025, 6, 1, 23, 59, 59, 999_000_000, time.UTC)
	lastNs := time.Date(2025, 6, 1, 23, 59, 59, 999_999_999, time.UTC)
	midnight := time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)

	day1 := visitorID(h, "shop", "192.0.2.1", visitorTestUA, morning)
	for _, ts := range []time.Time{noon, lastMs, lastNs} {
		if got := visitorID(h, "shop", "192.0.2.1", visitorTestUA, ts); got != day1 {
			t.Errorf("%v: id %s differs from same-day id %s", ts, got, day1)
		}
	}
	day2 := visitorID(h, "shop", "192.0.2.1", visitorTestUA, midnight)
	if day2 == day1 {
		t.Fatal("id did not change at 00:00:00 UTC")
	}
	if want := referenceVisitorID(testVisitorSecret, "shop", "192.0.2.1", visitorTestUA, midnight); day2 != want {
		t.Fatalf("day 2 id %s, reference %s", day2, want)
	}
	// Once the day has turned, an earlier clock reading (a request stamped
	// just before midnight, a clock stepped back) gets today's id: the
	// hasher holds nothing that could give yesterday's.
	for _, ts := range []time.Time{lastMs, noon, morning.AddDate(-1, 0, 0)} {
		if got := visitorID(h, "shop", "192.0.2.1", visitorTestUA, ts); got != day2 {
			t.Errorf("%v after the turn: %s, want today's %s", ts, got, day2)
		}
	}
	if got := h.Day(); got != UTCDay(midnight) {
		t.Fatalf("hasher at day %d, want %d", got, UTCDay(midnight))
	}
	if got := visitorID(h, "shop", "192.0.2.1", visitorTestUA, midnight.AddDate(1, 0, 0)); got == day2 {
		t.Fatal("a year later: same id")
	}
}

// Nodes handed the same seed for the same day agree on every later day,
// however each of them gets there, and without talking to each other.
func TestVisitorRatchetNodesAgree(t *testing.T) {
	start := DaySeed{Day: UTCDay(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))}
	for i := range start.Seed {
		start.Seed[i] = byte(i*7 + 3)
	}
	daily := NewSeededVisitorHasher(&start, nil, nil) // steps one day at a time
	jumper := NewSeededVisitorHasher(&start, nil, nil)
	var later *VisitorHasher // provisioned on day 10 from an export
	at := func(d int) time.Time { return time.Unix((start.Day+int64(d))*86400+3600, 0) }
	for d := 0; d <= 40; d++ {
		got := visitorID(daily, "shop", "198.51.100.4", visitorTestUA, at(d))
		if want := refIDFromSeed(refRatchet(start.Seed, d), "shop", "198.51.100.4", visitorTestUA); got != want {
			t.Fatalf("day %d: %s, reference %s", d, got, want)
		}
		if d == 10 {
			exp, err := daily.Export(start.Day + 10)
			if err != nil {
				t.Fatal(err)
			}
			later = NewSeededVisitorHasher(&exp, nil, nil)
		}
		if later != nil {
			if id := visitorID(later, "shop", "198.51.100.4", visitorTestUA, at(d)); id != got {
				t.Fatalf("day %d: the node provisioned on day 10 says %s, the first node %s", d, id, got)
			}
		}
	}
	if id := visitorID(jumper, "shop", "198.51.100.4", visitorTestUA, at(40)); id != visitorID(daily, "shop", "198.51.100.4", visitorTestUA, at(40)) {
		t.Fatal("a node that was down 40 days disagrees on day 40")
	}
}

func refRatchet(seed [32]byte, steps int) [32]byte {
	for range steps {
		seed = refH("ratchet", seed[:])
	}
	return seed
}

// VISITOR_HASH_SECRET, the migration path: nodes started on different days
// from the same secret agree.
func TestVisitorSecretNodesStartedOnDifferentDaysAgree(t *testing.T) {
	early := mustHasher(t, testVisitorSecret)
	d0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for d := 0; d < 16; d++ {
		visitorID(early, "shop", "192.0.2.1", visitorTestUA, d0.AddDate(0, 0, d))
	}
	lateStart := mustHasher(t, testVisitorSecret)
	now := d0.AddDate(0, 0, 16)
	if a, b := visitorID(early, "shop", "192.0.2.1", visitorTestUA, now), visitorID(lateStart, "shop", "192.0.2.1", visitorTestUA, now); a != b {
		t.Fatalf("node started 16 days earlier says %s, node started today %s", a, b)
	}
	s := SeedFromSecret(testVisitorSecret)
	s.AdvanceTo(UTCDay(now))
	if s.Seed != refSeed(testVisitorSecret, UTCDay(now)) {
		t.Fatal("SeedFromSecret + AdvanceTo differs from the reference ratchet")
	}
}

func TestVisitorExportNeverAnEarlierDay(t *testing.T) {
	s := DaySeed{Day: 20000}
	s.Seed[0] = 1
	h := NewSeededVisitorHasher(&s, nil, nil)
	if _, err := h.Export(19999); !errors.Is(err, ErrNoEarlierDay) {
		t.Fatalf("export of the day before: %v, want ErrNoEarlierDay", err)
	}
	for _, d := range []int64{20000, 20001, 20100} {
		e, err := h.Export(d)
		if err != nil {
			t.Fatalf("export of day %d: %v", d, err)
		}
		if e.Day != d || e.Seed != refRatchet(s.Seed, int(d-20000)) {
			t.Fatalf("export of day %d: day %d, seed differs from the reference", d, e.Day)
		}
	}
	h.Advance(time.Unix(20005*86400, 0))
	if _, err := h.Export(20004); !errors.Is(err, ErrNoEarlierDay) {
		t.Fatalf("after the hasher moved to day 20005, export of 20004: %v", err)
	}
}

// A re-key scheduled for a later day takes over on that day, on every node
// given it.
func TestVisitorRekeyFromALaterDay(t *testing.T) {
	cur := DaySeed{Day: 20000}
	cur.Seed[0] = 1
	next := DaySeed{Day: 20003}
	next.Seed[0] = 2
	var saved []DaySeed
	h := NewSeededVisitorHasher(&cur, nil, func(c, p *DaySeed) error {
		saved = append(saved, *c)
		if p != nil && p.Day != 20003 {
			t.Errorf("pending saved for day %d", p.Day)
		}
		return nil
	})
	if err := h.Rekey(&next); err != nil {
		t.Fatal(err)
	}
	at := func(d int64) time.Time { return time.Unix(d*86400+60, 0) }
	if got, want := visitorID(h, "shop", "192.0.2.1", "ua", at(20002)), refIDFromSeed(refRatchet(cur.Seed, 2), "shop", "192.0.2.1", "ua"); got != want {
		t.Fatalf("before the re-key's day: %s, want the old chain's %s", got, want)
	}
	if got, want := visitorID(h, "shop", "192.0.2.1", "ua", at(20004)), refIDFromSeed(refRatchet(next.Seed, 1), "shop", "192.0.2.1", "ua"); got != want {
		t.Fatalf("after the re-key's day: %s, want the new chain's %s", got, want)
	}
	// Requests step the hasher in memory only; the node's ticker persists.
	if last := saved[len(saved)-1]; last.Day != 20000 {
		t.Fatalf("a request persisted day %d: requests must not wait on the disk", last.Day)
	}
	if err := h.Advance(at(20004)); err != nil {
		t.Fatal(err)
	}
	if last := saved[len(saved)-1]; last.Day != 20004 || last.Seed != refRatchet(next.Seed, 1) {
		t.Fatalf("last state persisted: day %d (want 20004 on the new chain)", last.Day)
	}
}

// Every step forward hands the new state to persist; a failed persist is
// reported and retried by the next Advance, and an older state is never
// persisted after a newer one.
func TestVisitorPersist(t *testing.T) {
	cur := DaySeed{Day: 20000}
	cur.Seed[5] = 9
	var mu sync.Mutex
	var days []int64
	fail := true
	var reported []error
	h := NewSeededVisitorHasher(&cur, nil, func(c, _ *DaySeed) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return errors.New("disk full")
		}
		days = append(days, c.Day)
		return nil
	})
	h.OnError(func(err error) { reported = append(reported, err) })
	if err := h.Advance(time.Unix(20001*86400, 0)); err == nil {
		t.Fatal("a failed persist was not returned")
	}
	if len(reported) != 1 {
		t.Fatalf("failures reported: %d, want 1", len(reported))
	}
	fail = false
	if err := h.Advance(time.Unix(20001*86400+5, 0)); err != nil {
		t.Fatal(err)
	}
	if len(days) != 1 || days[0] != 20001 {
		t.Fatalf("persisted days %v, want [20001] (the retry)", days)
	}
	if err := h.Advance(time.Unix(20001*86400+9, 0)); err != nil || len(days) != 1 {
		t.Fatalf("nothing new, yet persisted again: %v %v", days, err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			h.Advance(time.Unix(int64(20002+i)*86400, 0))
		}(i)
	}
	wg.Wait()
	for i := 1; i < len(days); i++ {
		if days[i] < days[i-1] {
			t.Fatalf("persisted days went back: %v", days)
		}
	}
	if days[len(days)-1] != 20009 {
		t.Fatalf("last persisted day %d, want 20009", days[len(days)-1])
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
				now := base.Add(time.Duration(i/100) * time.Second) // crosses midnight
				got := visitorID(h, "shop", "192.0.2.9", visitorTestUA, now)
				want := referenceVisitorID(testVisitorSecret, "shop", "192.0.2.9", visitorTestUA, now)
				if got != want && h.Day() == UTCDay(now) {
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
	long := []byte(strings.Repeat("x", 4096))
	now := time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)
	var dst [32]byte
	h.Hash(&dst, "shop", ip4, ua, now) // ratchet to the day and warm the pool
	h.Hash(&dst, "shop", ip4, long, now)
	allocs := testing.AllocsPerRun(1000, func() {
		h.Hash(&dst, "shop", ip4, ua, now)
		h.Hash(&dst, "shop", ip6, ua, now.Add(time.Hour))
		h.Hash(&dst, "shop", ip6, long, now.Add(time.Hour))
	})
	if allocs != 0 {
		t.Fatalf("Hash allocates %.1f times per call triple", allocs)
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
		h.Hash(&dst, "shop", ip, ua, now)
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
			h.Hash(&dst, "shop", ip, ua, now)
		}
	})
}
