package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/uptimizr/edge/core"
)

// rawEv is one event of a test request: its session, ts and a marker that
// makes its canonical JSON unique.
type rawEv struct {
	session string
	ts      int64
	id      int
}

func (e rawEv) json() string {
	return fmt.Sprintf(`{"type":"custom","sessionId":%q,"ts":%d,"id":%d}`, e.session, e.ts, e.id)
}

// commitRequests commits each request as its own batch, in order, and
// returns the events in arrival order.
func commitRequests(t testing.TB, s *Store, pnum uint32, reqs [][]rawEv) []rawEv {
	t.Helper()
	var all []rawEv
	for _, evs := range reqs {
		b := &core.Batch{ProjectID: "p", ProjectNum: pnum, ReceivedAt: 1700000000000}
		for _, e := range evs {
			b.AppendEvent(core.TypeCustom, e.ts, []byte(e.session), []byte(e.json()))
		}
		if err := s.Sink().Commit(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
	}
	return all
}

// readRaw reads one session's raw stream.
func readRaw(t testing.TB, s *Store, pnum uint32, session string, since, until int64) []string {
	t.Helper()
	var out []string
	var last int64 = -1
	err := s.Raw().SessionEvents(pnum, []byte(session), since, until, func(ts int64, ev []byte) error {
		if ts < last {
			t.Errorf("ts went back: %d after %d", ts, last)
		}
		last = ts
		if !strings.Contains(string(ev), fmt.Sprintf(`"ts":%d,`, ts)) {
			t.Errorf("event %s reported with ts %d", ev, ts)
		}
		out = append(out, string(ev))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wantStream is the contract: a session's events with since ≤ ts ≤ until,
// stably sorted by ts from arrival order.
func wantStream(all []rawEv, session string, since, until int64) []string {
	var sel []rawEv
	for _, e := range all {
		if e.session == session && e.ts >= since && e.ts <= until {
			sel = append(sel, e)
		}
	}
	slices.SortStableFunc(sel, func(a, b rawEv) int { return cmp.Compare(a.ts, b.ts) })
	out := make([]string, len(sel))
	for i, e := range sel {
		out[i] = e.json()
	}
	return out
}

func sameStream(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("event %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

func TestRawMergeOverlappingChunks(t *testing.T) {
	s := openTest(t, Options{Retention: true, RetentionTTL: time.Hour})
	// Three requests whose ts ranges interleave. Keys order the chunks
	// r3 (first ts 5), r1 (10), r2 (20); ts 30 is in all three and must come
	// out in arrival order r1, r2, r3. Within r4, equal ts keep batch order.
	reqs := [][]rawEv{
		{{"s", 50, 1}, {"s", 10, 2}, {"s", 30, 3}},
		{{"s", 20, 4}, {"s", 40, 5}, {"s", 30, 6}},
		{{"s", 30, 7}, {"s", 60, 8}, {"s", 5, 9}},
		{{"s", 45, 10}, {"s", 30, 11}, {"s", 45, 12}, {"s", 30, 13}},
	}
	all := commitRequests(t, s, 1, reqs)
	got := readRaw(t, s, 1, "s", 0, 1<<53)
	var ids []string
	for _, g := range got {
		ids = append(ids, g[strings.Index(g, `"id":`)+5:len(g)-1])
	}
	if want := "9 2 4 3 6 7 11 13 5 10 12 1 8"; strings.Join(ids, " ") != want {
		t.Fatalf("order by id: %s, want %s", strings.Join(ids, " "), want)
	}
	sameStream(t, got, wantStream(all, "s", 0, 1<<53))
}

func TestRawSessionsAndProjectsApart(t *testing.T) {
	s := openTest(t, Options{Retention: true, RetentionTTL: time.Hour})
	// "s" is a prefix of "s2": the length in the key keeps them apart.
	reqs := [][]rawEv{
		{{"s", 3, 1}, {"s2", 1, 2}, {"s", 1, 3}, {"x", 2, 4}},
		{{"s2", 0, 5}, {"s", 2, 6}},
	}
	all := commitRequests(t, s, 1, reqs)
	other := commitRequests(t, s, 2, [][]rawEv{{{"s", 1, 100}}})
	for _, sess := range []string{"s", "s2", "x"} {
		sameStream(t, readRaw(t, s, 1, sess, 0, 1<<53), wantStream(all, sess, 0, 1<<53))
	}
	sameStream(t, readRaw(t, s, 2, "s", 0, 1<<53), wantStream(other, "s", 0, 1<<53))
	for _, c := range []struct {
		pnum uint32
		sess string
		want bool
	}{{1, "s", true}, {1, "s2", true}, {1, "x", true}, {2, "s", true}, {2, "s2", false}, {1, "y", false}, {3, "s", false}, {1, "", false}} {
		if got, err := s.Raw().HasSession(c.pnum, []byte(c.sess)); err != nil || got != c.want {
			t.Errorf("HasSession(%d, %q) = %v, %v", c.pnum, c.sess, got, err)
		}
	}
	if got := readRaw(t, s, 1, "nope", 0, 1<<53); len(got) != 0 {
		t.Fatalf("unknown session: %v", got)
	}
}

func TestRawManyChunks(t *testing.T) {
	s := openTest(t, Options{Retention: true, RetentionTTL: time.Hour})
	// 600 requests that all overlap one another (each spans most of [0,1000]),
	// plus a later run of 600 disjoint ones.
	var reqs [][]rawEv
	id := 0
	for k := 0; k < 600; k++ {
		req := []rawEv{{"m", int64(1000 - k), id}, {"m", int64(k), id + 1}, {"m", 500, id + 2}}
		id += 3
		reqs = append(reqs, req)
	}
	for k := 0; k < 600; k++ {
		reqs = append(reqs, []rawEv{{"m", int64(2000 + 2*k + 1), id}, {"m", int64(2000 + 2*k), id + 1}})
		id += 2
	}
	all := commitRequests(t, s, 1, reqs)
	sameStream(t, readRaw(t, s, 1, "m", 0, 1<<53), wantStream(all, "m", 0, 1<<53))
	sameStream(t, readRaw(t, s, 1, "m", 500, 2100), wantStream(all, "m", 500, 2100))
}

// TestRawMergeProperty compares the merged stream with a stable sort by ts
// of every event in arrival order, for random requests: random sessions,
// ts drawn from narrow ranges (many ties, within and across requests),
// random batch sizes, and random since/until windows.
func TestRawMergeProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	for round := 0; round < rounds; round++ {
		s := openTest(t, Options{Retention: true, RetentionTTL: time.Hour})
		sessions := []string{"a", "b", "ab", "c"}[:1+rng.IntN(4)]
		nreq := 1 + rng.IntN(60)
		spread := int64(1 + rng.IntN(200))
		var reqs [][]rawEv
		id := 0
		for r := 0; r < nreq; r++ {
			base := rng.Int64N(spread * 3)
			n := 1 + rng.IntN(40)
			req := make([]rawEv, n)
			for i := range req {
				req[i] = rawEv{sessions[rng.IntN(len(sessions))], base + rng.Int64N(spread), id}
				id++
			}
			reqs = append(reqs, req)
		}
		all := commitRequests(t, s, 1, reqs)
		for _, sess := range sessions {
			sameStream(t, readRaw(t, s, 1, sess, 0, 1<<53), wantStream(all, sess, 0, 1<<53))
			since := rng.Int64N(spread * 4)
			until := since + rng.Int64N(spread*2)
			sameStream(t, readRaw(t, s, 1, sess, since, until), wantStream(all, sess, since, until))
		}
		s.Close()
	}
}

func TestRawStopsOnCallbackError(t *testing.T) {
	s := openTest(t, Options{Retention: true, RetentionTTL: time.Hour})
	commitRequests(t, s, 1, [][]rawEv{{{"s", 1, 1}, {"s", 2, 2}, {"s", 3, 3}}, {{"s", 2, 4}}})
	stop := errors.New("stop")
	n := 0
	err := s.Raw().SessionEvents(1, []byte("s"), 0, 1<<53, func(int64, []byte) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Fatalf("err %v after %d events", err, n)
	}
	// since > until is an empty window, not an error.
	if got := readRaw(t, s, 1, "s", 3, 2); len(got) != 0 {
		t.Fatal(got)
	}
}

func TestRawCorruptChunk(t *testing.T) {
	s := openTest(t, Options{Retention: true, RetentionTTL: time.Hour})
	commitRequests(t, s, 1, [][]rawEv{{{"s", 1, 1}, {"s", 2, 2}}})
	// A chunk that starts later and cannot be decoded: the events before it
	// are delivered, then the read fails.
	key := RawPrefix(1, []byte("s"))
	key = append(key, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 99, 0, 0)
	if err := s.DB().Update(func(txn *badger.Txn) error { return txn.Set(key, []byte{1, 0, 0xff}) }); err != nil {
		t.Fatal(err)
	}
	n := 0
	err := s.Raw().SessionEvents(1, []byte("s"), 0, 1<<53, func(int64, []byte) error { n++; return nil })
	if !errors.Is(err, ErrCorruptRecord) || n != 2 {
		t.Fatalf("err %v after %d events", err, n)
	}
}

func TestRawChunksExpire(t *testing.T) {
	s := openTest(t, Options{Retention: true, RetentionTTL: time.Second})
	all := commitRequests(t, s, 1, [][]rawEv{{{"s", 1, 1}, {"s", 2, 2}}})
	sameStream(t, readRaw(t, s, 1, "s", 0, 1<<53), wantStream(all, "s", 0, 1<<53))
	// Badger's TTL has a resolution of a second.
	time.Sleep(2100 * time.Millisecond)
	if ok, err := s.Raw().HasSession(1, []byte("s")); ok || err != nil {
		t.Fatalf("expired session still found: %v %v", ok, err)
	}
	if got := readRaw(t, s, 1, "s", 0, 1<<53); len(got) != 0 {
		t.Fatalf("expired events read: %v", got)
	}
}

// TestExpiresAtRoundsUp: an entry lives at least its TTL, never a second
// less, whatever fraction of a second it was written at.
func TestExpiresAtRoundsUp(t *testing.T) {
	for _, c := range []struct {
		now  time.Time
		ttl  time.Duration
		want int64
	}{
		{time.Unix(100, 0), time.Second, 101},
		{time.Unix(100, 1), time.Second, 102},
		{time.Unix(100, 999_999_999), time.Second, 102},
		{time.Unix(100, 500_000_000), 1500 * time.Millisecond, 102},
		{time.Unix(100, 500_000_000), 24 * time.Hour, 100 + 86400 + 1},
	} {
		got := expiresAt(c.now, c.ttl)
		if int64(got) != c.want {
			t.Errorf("expiresAt(%v, %v) = %d, want %d", c.now.UnixNano(), c.ttl, got, c.want)
		}
		if end := c.now.Add(c.ttl).Unix(); int64(got) < end {
			t.Errorf("expires at %d before now+ttl %d", got, end)
		}
	}
}
