// Package fleettest is the conformance suite of the fleet's stream
// engines: Run holds every engine to the fleet.Publisher and
// fleet.Subscriber contracts, case by case, each engine on a fresh
// server; StartNATS and StartKafka run those servers in-process, on
// loopback ports. Only tests import it.
package fleettest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptimizr/edge/fleet"
)

// Engine is one engine under test, on a server of its own.
type Engine interface {
	// Publisher returns a new Publisher (the case closes it).
	Publisher(t *testing.T) fleet.Publisher
	// Subscriber returns a Subscriber of the stream through the durable
	// consumer or consumer group durable, filtered to the subjects of
	// filter ("" = all; else fleet.Subject of a project).
	Subscriber(t *testing.T, durable, filter string) fleet.Subscriber
	// DeadLetters returns a Subscriber of the dead letters.
	DeadLetters(t *testing.T, durable string) fleet.Subscriber
	// Caps says what the engine does beyond the contract.
	Caps() Caps
	// Stop and Start stop the engine's servers and start them again with
	// their data, on the same addresses (only called with Caps.Restart).
	Stop(t *testing.T)
	Start(t *testing.T)
}

// Caps are what an engine can do that the suite cannot ask of every one.
type Caps struct {
	// Dedup: a record published twice is stored once (JetStream drops a
	// Nats-Msg-Id it has within its duplicate window). Without it (Kafka:
	// the idempotent producer drops only its own retries within one
	// producer session, not a deliberate second publish) the copy is
	// delivered too, and the hub drops it by (node, project, seq).
	Dedup bool
	// Restart: Stop and Start work and keep the engine's data.
	Restart bool
	// SnappyBodies: with Compression snappy, a message's body is a Snappy
	// block (JetStream). Without it the engine compresses in its own
	// protocol (Kafka's batches), and a message's body is the NDJSON.
	SnappyBodies bool
}

// Config is what a case asks of the engine it gets.
type Config struct {
	MaxInFlight int    // the Publisher's bound (fleet.EngineOptions.MaxInFlight)
	Compression string // fleet.EngineOptions.Compression
}

// deadline bounds every wait of the suite: generous, for a loaded
// machine; a case that passes never waits for it.
const deadline = 2 * time.Minute

const node = "edge-1"

// Run runs every case against the engines newEngine makes, one fresh
// engine per case.
func Run(t *testing.T, newEngine func(t *testing.T, c Config) Engine) {
	cases := []struct {
		name string
		fn   func(t *testing.T, newEngine func(t *testing.T, c Config) Engine)
	}{
		{"RoundTrip", testRoundTrip},
		{"Order", testOrder},
		{"InFlightBound", testInFlightBound},
		{"Dedup", testDedup},
		{"Redeliver", testRedeliver},
		{"DeadLetter", testDeadLetter},
		{"DurablePosition", testDurablePosition},
		{"Filter", testFilter},
		{"Outage", testOutage},
		{"Forwarder", testForwarder},
		{"Pending", testPending},
		{"SharedConsumer", testSharedConsumer},
		{"Compression", testCompression},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newEngine) })
	}
}

// publisher wraps a fleet.Publisher: it counts each record's
// acknowledgements and the records published and not acknowledged.
type publisher struct {
	t   *testing.T
	pub fleet.Publisher

	inflight, maxInflight atomic.Int64

	mu     sync.Mutex
	acks   map[string]int   // by MsgID: acknowledgements received
	errs   map[string]error // by MsgID: the last one's error
	wanted int              // acknowledgements expected
	cond   *sync.Cond
}

func newPublisher(t *testing.T, e Engine) *publisher {
	p := &publisher{t: t, pub: e.Publisher(t), acks: map[string]int{}, errs: map[string]error{}}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// publish publishes r and fails the test when Publish refuses it.
func (p *publisher) publish(ctx context.Context, r *fleet.Record) {
	p.t.Helper()
	if err := p.tryPublish(ctx, r); err != nil {
		p.t.Errorf("Publish %s: %v", r.MsgID(), err)
	}
}

func (p *publisher) tryPublish(ctx context.Context, r *fleet.Record) error {
	id := r.MsgID()
	p.mu.Lock()
	p.wanted++
	p.mu.Unlock()
	var once atomic.Bool
	err := p.pub.Publish(ctx, r, func(err error) {
		if once.Swap(true) {
			p.t.Errorf("record %s acknowledged twice", id)
		}
		p.inflight.Add(-1)
		p.mu.Lock()
		p.acks[id]++
		p.errs[id] = err
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	if err != nil {
		p.mu.Lock()
		p.wanted--
		p.mu.Unlock()
		return err
	}
	// Counted after Publish returns, so the count is never above the
	// records truly in flight (an ack may come before this).
	n := p.inflight.Add(1)
	for {
		m := p.maxInflight.Load()
		if n <= m || p.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	return nil
}

// settled waits until every record published is acknowledged, and
// returns the MsgIDs acknowledged with an error.
func (p *publisher) settled() (failed []string) {
	p.t.Helper()
	timer := time.AfterFunc(deadline, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer timer.Stop()
	start := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.received() < p.wanted {
		if time.Since(start) >= deadline {
			p.t.Fatalf("%d of %d acknowledgements after %v", p.received(), p.wanted, deadline)
		}
		p.cond.Wait()
	}
	for id, err := range p.errs {
		if err != nil {
			failed = append(failed, id)
		}
	}
	slices.Sort(failed)
	return failed
}

func (p *publisher) received() int {
	n := 0
	for _, c := range p.acks {
		n += c
	}
	return n
}

// err returns the error of the last acknowledgement of id.
func (p *publisher) err(id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errs[id]
}

// publishAll publishes recs in order and fails the test unless every one
// is acknowledged without error.
func (p *publisher) publishAll(recs []fleet.Record) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	for i := range recs {
		p.publish(ctx, &recs[i])
	}
	if failed := p.settled(); len(failed) > 0 {
		p.t.Fatalf("%d records acknowledged with an error, first %s: %v", len(failed), failed[0], p.err(failed[0]))
	}
}

func (p *publisher) close() {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := p.pub.Close(ctx); err != nil {
		p.t.Errorf("Publisher.Close: %v", err)
	}
}

// records returns records from..to-1 of project.
func records(project string, from, to uint64) []fleet.Record {
	var out []fleet.Record
	for s := from; s < to; s++ {
		out = append(out, NewRecord(node, project, s))
	}
	return out
}

// interleave returns the records of each list, one of each in turn.
func interleave(lists ...[]fleet.Record) []fleet.Record {
	var out []fleet.Record
	for i := 0; ; i++ {
		n := len(out)
		for _, l := range lists {
			if i < len(l) {
				out = append(out, l[i])
			}
		}
		if len(out) == n {
			return out
		}
	}
}

// sentinel is a record published after the others of its project: once
// it is consumed, whatever the stream held of that project before it has
// been too (a project's records are consumed in order).
func sentinel(project string, k uint64) fleet.Record {
	return NewRecord(node, project, 1_000_000+k)
}

// parse reads a message back into a record, failing the test when it is
// not one (call it from the test's goroutine).
func parse(t *testing.T, m *fleet.Message) fleet.Record {
	t.Helper()
	r, err := tryParse(m)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func tryParse(m *fleet.Message) (fleet.Record, error) {
	var r fleet.Record
	if err := fleet.ParseRecord(m.Header, slices.Clone(m.Body), &r); err != nil {
		return r, fmt.Errorf("message on %s: %w", m.Subject, err)
	}
	return r, nil
}

// sameRecord reports how got (parsed from a message) differs from want.
func sameRecord(got, want fleet.Record) error {
	if got.Node != want.Node || got.Project != want.Project || got.Seq != want.Seq || got.ReceivedAt != want.ReceivedAt {
		return fmt.Errorf("record %s received-at %d, want %s received-at %d", got.MsgID(), got.ReceivedAt, want.MsgID(), want.ReceivedAt)
	}
	if !slices.EqualFunc(got.Events, want.Events, func(a, b []byte) bool { return string(a) == string(b) }) {
		return fmt.Errorf("record %s events %q, want %q", got.MsgID(), got.Events, want.Events)
	}
	return nil
}

// consume runs sub.Consume with fn until fn says done (after which its
// message counts as handled: fn's error is returned to Consume as it
// is), and returns Consume's error. It fails the test after the
// deadline.
func consume(t *testing.T, sub fleet.Subscriber, fn func(m *fleet.Message) (done bool, err error)) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var finished atomic.Bool
	timer := time.AfterFunc(deadline, cancel)
	defer timer.Stop()
	err := sub.Consume(ctx, func(m *fleet.Message) error {
		done, err := fn(m)
		if done {
			finished.Store(true)
			cancel()
		}
		return err
	})
	if !finished.Load() {
		t.Fatalf("Consume returned %v before the case had what it waits for (deadline %v)", err, deadline)
	}
	return err
}

// collector keeps what a consumer got: every delivery, in order.
type collector struct {
	mu   sync.Mutex
	got  []fleet.Record
	seen map[string]int
}

func newCollector() *collector { return &collector{seen: map[string]int{}} }

func (c *collector) add(r fleet.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, r)
	c.seen[r.MsgID()]++
}

func (c *collector) has(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[id] > 0
}

func (c *collector) hasAll(ids []string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if c.seen[id] == 0 {
			return false
		}
	}
	return true
}

func ids(recs []fleet.Record) []string {
	out := make([]string, len(recs))
	for i := range recs {
		out[i] = recs[i].MsgID()
	}
	return out
}

// checkExactlyOnce fails the test unless the collector got each of want
// exactly once, intact, and nothing else but the sentinels.
func checkExactlyOnce(t *testing.T, c *collector, want []fleet.Record, sentinels []fleet.Record) {
	t.Helper()
	byID := map[string]fleet.Record{}
	for _, r := range want {
		byID[r.MsgID()] = r
	}
	extra := map[string]bool{}
	for _, r := range sentinels {
		extra[r.MsgID()] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.got {
		id := r.MsgID()
		w, ok := byID[id]
		switch {
		case ok:
			if err := sameRecord(r, w); err != nil {
				t.Error(err)
			}
		case extra[id]:
		default:
			t.Errorf("consumed %s, which was not published", id)
		}
	}
	for id := range byID {
		if n := c.seen[id]; n != 1 {
			t.Errorf("%s consumed %d times, want once", id, n)
		}
	}
}

// testRoundTrip: every record published is acknowledged once, without
// error, by the time Close returns; consumed once with its headers and
// body intact; a Publish after Close fails without calling ack.
func testRoundTrip(t *testing.T, newEngine func(*testing.T, Config) Engine) {
	e := newEngine(t, Config{})
	p := newPublisher(t, e)
	recs := interleave(records("shop", 0, 100), records("blog.eu", 0, 100), records("news", 0, 50))
	ctx := context.Background()
	for i := range recs {
		p.publish(ctx, &recs[i])
	}
	p.close() // settles what is in flight
	p.mu.Lock()
	got := p.received()
	p.mu.Unlock()
	if got != len(recs) {
		t.Fatalf("%d acknowledgements when Close returned, want %d", got, len(recs))
	}
	if failed := p.settled(); len(failed) > 0 {
		t.Fatalf("%d records acknowledged with an error, first %s: %v", len(failed), failed[0], p.err(failed[0]))
	}
	called := false
	r := NewRecord(node, "shop", 500)
	if err := p.pub.Publish(ctx, &r, func(error) { called = true }); err == nil {
		t.Error("Publish after Close returned no error")
	}
	if called {
		t.Error("Publish after Close called ack")
	}

	// The sentinels go out after the records: once each is consumed,
	// a record consumed twice would have been too.
	p2 := newPublisher(t, e)
	sents := []fleet.Record{sentinel("shop", 0), sentinel("blog.eu", 0), sentinel("news", 0)}
	p2.publishAll(sents)
	p2.close()

	c := newCollector()
	sub := e.Subscriber(t, "roundtrip", "")
	consume(t, sub, func(m *fleet.Message) (bool, error) {
		r := parse(t, m)
		if m.Subject == "" {
			t.Errorf("%s: no subject", r.MsgID())
		}
		c.add(r)
		return c.hasAll(ids(recs)) && c.hasAll(ids(sents)), nil
	})
	sub.Close()
	checkExactlyOnce(t, c, recs, sents)
}

// testOrder: a project's records (one session's) are consumed in the
// order they were published, interleaved with other projects'.
func testOrder(t *testing.T, newEngine func(*testing.T, Config) Engine) {
	e := newEngine(t, Config{MaxInFlight: 64})
	p := newPublisher(t, e)
	projects := []string{"shop", "blog.eu", "news"}
	var lists [][]fleet.Record
	for _, pr := range projects {
		lists = append(lists, records(pr, 0, 300))
	}
	recs := interleave(lists...)
	p.publishAll(recs)
	p.close()

	c := newCollector()
	sub := e.Subscriber(t, "order", "")
	consume(t, sub, func(m *fleet.Message) (bool, error) {
		c.add(parse(t, m))
		return c.hasAll(ids(recs)), nil
	})
	sub.Close()
	next := map[string]uint64{}
	for _, r := range c.got {
		if r.Seq != next[r.Project] {
			t.Fatalf("%s consumed after %s:%d: out of order", r.MsgID(), r.Project, next[r.Project]-1)
		}
		next[r.Project]++
	}
}

// testInFlightBound: however many goroutines publish, at most
// MaxInFlight records are published and not acknowledged at once.
func testInFlightBound(t *testing.T, newEngine func(*testing.T, Config) Engine) {
	const bound = 4
	e := newEngine(t, Config{MaxInFlight: bound})
	p := newPublisher(t, e)
	var wg sync.WaitGroup
	var all []fleet.Record
	for g := range 8 {
		recs := records(fmt.Sprintf("p%d", g), 0, 60)
		all = append(all, recs...)
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			for i := range recs {
				p.publish(ctx, &recs[i])
			}
		})
	}
	wg.Wait()
	if failed := p.settled(); len(failed) > 0 {
		t.Fatalf("%d records acknowledged with an error, first %s: %v", len(failed), failed[0], p.err(failed[0]))
	}
	p.close()
	if m := p.maxInflight.Load(); m > bound {
		t.Fatalf("%d records in flight at once, bound %d", m, bound)
	}
	t.Logf("at most %d of %d in flight", p.maxInflight.Load(), bound)

	c := newCollector()
	sub := e.Subscriber(t, "bound", "")
	consume(t, sub, func(m *fleet.Message) (bool, error) {
		c.add(parse(t, m))
		return c.hasAll(ids(all)), nil
	})
	sub.Close()
}

// testDedup: the same record published twice in a row is consumed once
// where the engine deduplicates (Caps.Dedup), else at most twice; either
// way once by its MsgID, as the hub counts.
func testDedup(t *testing.T, newEngine func(*testing.T, Config) Engine) {
	e := newEngine(t, Config{})
	p := newPublisher(t, e)
	r := NewRecord(node, "shop", 7)
	p.publishAll([]fleet.Record{r})
	p.publishAll([]fleet.Record{r})
	s := sentinel("shop", 0)
	p.publishAll([]fleet.Record{s})
	p.close()

	c := newCollector()
	sub := e.Subscriber(t, "dedup", "")
	consume(t, sub, func(m *fleet.Message) (bool, error) {
		got := parse(t, m)
		if got.MsgID() == r.MsgID() {
			if err := sameRecord(got, r); err != nil {
				t.Error(err)
			}
		}
		c.add(got)
		return c.has(s.MsgID()), nil
	})
	sub.Close()
	n := c.seen[r.MsgID()]
	switch {
	case e.Caps().Dedup && n != 1:
		t.Fatalf("a record published twice was consumed %d times; the engine deduplicates, want once", n)
	case !e.Caps().Dedup && (n < 1 || n > 2):
		t.Fatalf("a record published twice was consumed %d times, want once or twice", n)
	case !e.Caps().Dedup:
		t.Logf("a record published twice was consumed %d times: the engine does not deduplicate a second publish; the hub drops it by (node, project, seq)", n)
	}
	if len(c.got) != n+1 {
		t.Fatalf("consumed %d messages, want %d copies of the record and the sentinel", len(c.got), n+1)
	}
}

// testRedeliver: a message whose callback fails is delivered again
// (after twice failing, a third time), and the records are handled, in
// the end, each once and in order.
func testRedeliver(t *testing.T, newEngine func(*testing.T, Config) Engine) {
	e := newEngine(t, Config{})
	p := newPublisher(t, e)
	recs := records("shop", 0, 12)
	p.publishAll(recs)
	p.close()

	failures := map[uint64]int{3: 1, 6: 2} // seq → how many times its callback fails
	deliveries := map[uint64]int{}
	var handled []uint64
	sub := e.Subscriber(t, "redeliver", "")
	consume(t, sub, func(m *fleet.Message) (bool, error) {
		r := parse(t, m)
		deliveries[r.Seq]++
		if failures[r.Seq] > 0 {
			failures[r.Seq]--
			return false, fmt.Errorf("hub store unavailable (seq %d)", r.Seq)
		}
		handled = append(handled, r.Seq)
		return r.Seq == uint64(len(recs)-1), nil
	})
	sub.Close()
	want := make([]uint64, len(recs))
	for i := range want {
		want[i] = uint64(i)
	}
	if !slices.Equal(handled, want) {
		t.Fatalf("handled %v, want %v: every record once, in order", handled, want)
	}
	if deliveries[3] != 2 || deliveries[6] != 3 {
		t.Fatalf("seq 3 delivered %d times (want 2), seq 6 %d times (want 3)", deliveries[3], deliveries[6])
	}
}

// testDeadLetter: a message the callback dead-letters leaves the stream
// (it is not delivered again, to this consumer or to the next with its
// name) and is found among the dead letters with its headers, body and
// reason.
func testDeadLetter(t *testing.T, newEngine func(*testing.T, Config) Engine) {
	e := newEngine(t, Config{})
	p := newPublisher(t, e)
	recs := records("shop", 0, 10)
	p.publishAll(recs)
	const reason = "schema: not an event"
	c := newCollector()
	sub := e.Subscriber(t, "hub", "")
	consume(t, sub, func(m *fleet.Message) (bool, error) {
		r := parse(t, m)
		c.add(r)
		if r.Seq == 4 {
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			if err := sub.DeadLetter(ctx, m, errors.New(reason)); err != nil {
				t.Fatalf("DeadLetter: %v", err)
			}
		}
		return r.Seq == 9, nil
	})
	sub.Close()
	checkExactlyOnce(t, c, recs, nil)

	// The consumer's next incarnation goes on after the sentinel's
	// predecessors without the dead letter.
	s := sentinel("shop", 0)
	p.publishAll([]fleet.Record{s})
	p.close()
	c2 := newCollector()
	sub2 := e.Subscriber(t, "hub", "")
	consume(t, sub2, func(m *fleet.Message) (bool, error) {
		r := parse(t, m)
		c2.add(r)
		return r.MsgID() == s.MsgID(), nil
	})
	sub2.Close()
	checkExactlyOnce(t, c2, nil, []fleet.Record{s})
	if len(c2.got) != 1 {
		t.Fatalf("after the dead letter the consumer got %d messages, want only the sentinel", len(c2.got))
	}

	dl := e.DeadLetters(t, "inspect")
	var dead []fleet.Record
	consume(t, dl, func(m *fleet.Message) (bool, error) {
		if got := m.Header(fleet.HeaderDeadReason); got != reason {
			t.Errorf("dead letter's %s = %q, want %q", fleet.HeaderDeadReason, got, reason)
		}
		dead = append(dead, parse(t, m))
		return true, nil
	})
	dl.Close()
	if err := sameRecord(dead[0], recs[4]); err != nil {
		t.Fatalf("dead letter: %v", err)
	}
}

// testDurablePosition: a consumer's position outlives it: half the
// records, the callback stops (its message not acknowledged), the
// subscriber closes; a new one of the same name gets the rest (the
// stopped message included), none of the first half.
func testDurablePosition(t *testing.T, newEngine func(*testing.T, Config) Engine) {
	e := newEngine(t, Config{})
	p := newPublisher(t, e)
	recs := interleave(records("shop", 0, 60), records("blog.eu", 0, 60))
	p.publishAll(recs)

	first := newCollector()
	sub := e.Subscriber(t, "durable", "")
	stopped := ""
	err := consume(t, sub, func(m *fleet.Message) (bool, error) {
		r := parse(t, m)
		if len(first.got) == len(recs)/2 {
			stopped = r.MsgID()
			return true, fmt.Errorf("%w: half done", fleet.ErrStop)
		}
		first.add(r)
		return false, nil
	})
	if !errors.Is(err, fleet.ErrStop) && !errors.Is(err, context.Canceled) {
		t.Fatalf("Consume after ErrStop: %v", err)
	}
	sub.Close()

	sents := []fleet.Record{sentinel("shop", 0), sentinel("blog.eu", 0)}
	p.publishAll(sents)
	p.close()
	second := newCollector()
	sub2 := e.Subscriber(t, "durable", "")
	consume(t, sub2, func(m *fleet.Message) (bool, error) {
		second.add(parse(t, m))
		return second.hasAll(ids(sents)), nil
	})
	sub2.Close()

	if !second.has(stopped) {
		t.Errorf("%s, whose callback stopped Consume, was not delivered again", stopped)
	}
	var rest []fleet.Record
	for _, r := range recs {
		if first.has(r.MsgID()) {
			if second.has(r.MsgID()) {
				t.Errorf("%s, handled by the first consumer, delivered again to the second", r.MsgID())
			}
			continue
		}
		rest = append(rest, r)
	}
	for id, n := range first.seen {
		if n != 1 {
			t.Errorf("%s consumed %d times by the first consumer", id, n)
		}
	}
	checkExactlyOnce(t, second, rest, sents)
}

// testFilter: a subscriber filtered to one project's subject gets that
// project's records, in order, and no other's.
func testFilter(t *testing.T, newEngine func(*testing.T, Config) Engine) {
	e := newEngine(t, Config{})
	p := newPublisher(t, e)
	shop := records("shop", 0, 30)
	recs := interleave(shop, records("blog.eu", 0, 30))
	s := sentinel("shop", 0)
	p.publishAll(append(recs, s))
	p.close()

	c := newCollector()
	sub := e.Subscriber(t, "only-shop", fleet.Subject("shop"))
	consume(t, sub, func(m *fleet.Message) (bool, error) {
		r := parse(t, m)
		if r.Project != "shop" {
			t.Errorf("filtered to shop, got %s", r.MsgID())
		}
		c.add(r)
		return r.MsgID() == s.MsgID(), nil
	})
	sub.Close()
	checkExactlyOnce(t, c, shop, []fleet.Record{s})
	for i, r := range c.got[:len(shop)] {
		if r.Seq != uint64(i) {
			t.Fatalf("filtered delivery %d is %s: out of order", i, r.MsgID())
		}
	}
}

// testOutage: with the engine down, Publish neither blocks (below its
// bound) nor loses a record silently: each is acknowledged later or with
// an error; a consumer running through the outage goes on after it; and
// every record acknowledged without error is consumed.
func testOutage(t *testing.T, newEngine func(*testing.T, Config) Engine) {
	e := newEngine(t, Config{MaxInFlight: 64})
	if !e.Caps().Restart {
		t.Skip("the engine's servers cannot be stopped and started in-process with their data")
	}
	p := newPublisher(t, e)
	before := records("shop", 0, 40)
	p.publishAll(before)

	c := newCollector()
	sub := e.Subscriber(t, "outage", "")
	consumed := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		consumed <- sub.Consume(ctx, func(m *fleet.Message) error {
			r, err := tryParse(m)
			if err != nil {
				t.Error(err)
				return nil
			}
			c.add(r)
			return nil
		})
	}()
	waitFor(t, "the records before the outage consumed", func() bool { return c.hasAll(ids(before)) })

	e.Stop(t)
	during := records("shop", 40, 80)
	published := make(chan struct{})
	go func() {
		defer close(published)
		pctx, pcancel := context.WithTimeout(context.Background(), deadline)
		defer pcancel()
		for i := range during {
			p.publish(pctx, &during[i])
		}
	}()
	select {
	case <-published:
	case <-time.After(deadline):
		t.Fatalf("Publish blocked with the engine down and fewer than MaxInFlight records in flight")
	}
	e.Start(t)
	failed := p.settled()
	t.Logf("%d of %d records published during the outage acknowledged with an error", len(failed), len(during))
	var ok []string
	for _, r := range during {
		if !slices.Contains(failed, r.MsgID()) {
			ok = append(ok, r.MsgID())
		}
	}
	waitFor(t, "every record acknowledged consumed", func() bool { return c.hasAll(ok) })

	// As the forwarder does, send again what failed until the engine
	// takes it: then all is there.
	again := failed
	for try := 0; len(again) > 0; try++ {
		if try == 1000 {
			t.Fatalf("%d records still acknowledged with an error after %d tries, first %s", len(again), try, again[0])
		}
		p2 := newPublisher(t, e)
		var recs []fleet.Record
		for _, r := range during {
			if slices.Contains(again, r.MsgID()) {
				recs = append(recs, r)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		for i := range recs {
			p2.publish(ctx, &recs[i])
		}
		again = p2.settled()
		cancel()
		p2.close()
		if len(again) > 0 {
			time.Sleep(10 * time.Millisecond) // the forwarder's backoff
		}
	}
	p.close()
	waitFor(t, "every record consumed after the outage", func() bool { return c.hasAll(ids(during)) })
	cancel()
	if err := <-consumed; !errors.Is(err, context.Canceled) {
		t.Errorf("Consume through the outage returned %v", err)
	}
	sub.Close()
}

// testForwarder: fleet.Forwarder over a Source, publishing to the engine,
// the engine stopped and started in the middle where it can be: every
// record is consumed at least once and, by MsgID, exactly the Source's.
func testForwarder(t *testing.T, newEngine func(*testing.T, Config) Engine) {
	e := newEngine(t, Config{MaxInFlight: 32})
	src := NewMemSource(node)
	src.Add("shop", 300)
	src.Add("blog.eu", 300)
	pub := e.Publisher(t)
	f := fleet.NewForwarder(src, pub, fleet.ForwarderOptions{CommitEvery: 20 * time.Millisecond,
		Backoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, ReadMax: 64})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- f.Run(ctx) }()
	acked := func() uint64 { return src.Acked("shop") + src.Acked("blog.eu") }
	total := uint64(600)
	if e.Caps().Restart {
		waitFor(t, "a third forwarded", func() bool { return acked() >= 200 })
		e.Stop(t)
		st := f.Stats()
		src.Add("shop", 200)
		src.Add("blog.eu", 200)
		total += 400
		// Let the forwarder meet the outage (a failed publish, or
		// records buffered); the outcome below holds either way.
		waitSoft(func() bool {
			s := f.Stats()
			return s.Errors > st.Errors || s.Published > st.Published || s.InFlight >= 32
		})
		e.Start(t)
	} else {
		src.Add("shop", 200)
		src.Add("blog.eu", 200)
		total += 400
	}
	waitFor(t, "every record forwarded", func() bool { return acked() == total })
	cancel()
	if err := <-ran; !errors.Is(err, context.Canceled) {
		t.Fatalf("Forwarder.Run: %v", err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), deadline)
	defer scancel()
	if err := f.Shutdown(sctx); err != nil {
		t.Fatalf("Forwarder.Shutdown: %v", err)
	}
	st := f.Stats()
	t.Logf("forwarder: %+v", st)

	want := src.Records()
	c := newCollector()
	sub := e.Subscriber(t, "forwarded", "")
	consume(t, sub, func(m *fleet.Message) (bool, error) {
		r := parse(t, m)
		w, ok := want[r.MsgID()]
		if !ok {
			t.Fatalf("consumed %s, which the source does not have", r.MsgID())
		}
		if err := sameRecord(r, w); err != nil {
			t.Fatal(err)
		}
		c.add(r)
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.seen) == len(want), nil
	})
	sub.Close()
	dups := len(c.got) - len(c.seen)
	t.Logf("%d records consumed, %d of them again (sent again after a failure; the hub drops them by MsgID)", len(c.got), dups)
}

// waitFor waits until cond holds, failing the test after the deadline.
// testPending: a consumer's Pending is the stream's records before it has
// consumed any, what it has not acknowledged after it stopped halfway, and
// zero once it has them all.
func testPending(t *testing.T, newEngine func(*testing.T, Config) Engine) {
	e := newEngine(t, Config{})
	p := newPublisher(t, e)
	recs := interleave(records("shop", 0, 40), records("blog.eu", 0, 40))
	p.publishAll(recs)
	p.close()
	ctx := context.Background()
	pending := func(sub fleet.Subscriber) uint64 {
		t.Helper()
		n, err := sub.Pending(ctx)
		if err != nil {
			t.Fatalf("Pending: %v", err)
		}
		return n
	}
	sub := e.Subscriber(t, "lag", "")
	if n := pending(sub); n != uint64(len(recs)) {
		t.Fatalf("Pending before consuming: %d, want %d", n, len(recs))
	}
	got := 0
	err := consume(t, sub, func(m *fleet.Message) (bool, error) {
		parse(t, m)
		if got == len(recs)/2 {
			return true, fmt.Errorf("%w: half done", fleet.ErrStop)
		}
		got++
		return false, nil
	})
	if !errors.Is(err, fleet.ErrStop) && !errors.Is(err, context.Canceled) {
		t.Fatalf("Consume after ErrStop: %v", err)
	}
	sub.Close()
	sub = e.Subscriber(t, "lag", "")
	want := uint64(len(recs) - got)
	var n uint64
	waitFor(t, "Pending to count what is not acknowledged", func() bool { n = pending(sub); return n == want })
	seen := newCollector()
	consume(t, sub, func(m *fleet.Message) (bool, error) {
		seen.add(parse(t, m))
		return len(seen.seen) == int(want), nil
	})
	sub.Close()
	waitFor(t, "Pending to be zero once every record is acknowledged", func() bool { n = pending(sub); return n == 0 })
	// Another consumer of the same stream has its own position.
	if n := pending(e.Subscriber(t, "other", "")); n != uint64(len(recs)) {
		t.Errorf("Pending of a new consumer: %d, want %d", n, len(recs))
	}
}

// testSharedConsumer: two subscribers of one durable consumer (consumer
// group), consuming at once, share the stream: each gets records, and
// together they get every one.
func testSharedConsumer(t *testing.T, newEngine func(*testing.T, Config) Engine) {
	e := newEngine(t, Config{})
	p := newPublisher(t, e)
	defer p.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	got := [2]map[string]bool{{}, {}}
	both := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got[0]) > 0 && len(got[1]) > 0
	}
	var wg sync.WaitGroup
	for i := range 2 {
		sub := e.Subscriber(t, "shared", "")
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sub.Close()
			sub.Consume(ctx, func(m *fleet.Message) error {
				r, err := tryParse(m)
				if err != nil {
					t.Errorf("consumer %d: %v", i, err)
					return nil
				}
				mu.Lock()
				got[i][r.MsgID()] = true
				mu.Unlock()
				return nil
			})
		}()
	}
	// Records of many projects (sessions: Kafka's keys, spread over the
	// partitions), until both consumers have had some.
	var sent []fleet.Record
	start := time.Now()
	for seq := uint64(0); !both(); seq++ {
		if time.Since(start) > deadline {
			t.Fatalf("after %d records, one consumer had none: %d and %d", len(sent), len(got[0]), len(got[1]))
		}
		for k := range 24 {
			r := NewRecord(node, fmt.Sprintf("p%d", k), seq)
			p.publish(ctx, &r)
			sent = append(sent, r)
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitFor(t, "every record consumed by one of the two", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range sent {
			if !got[0][r.MsgID()] && !got[1][r.MsgID()] {
				return false
			}
		}
		return true
	})
	cancel()
	wg.Wait()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > deadline {
			t.Fatalf("not done after %v: %s", deadline, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitSoft waits until cond holds or a few seconds have passed.
func waitSoft(cond func() bool) {
	start := time.Now()
	for !cond() && time.Since(start) < 5*time.Second {
		time.Sleep(5 * time.Millisecond)
	}
}

// testCompression: with either Compression, records whose bodies are
// NDJSON or a Snappy block arrive with the same events; a message's body
// is a Snappy block, and says so, exactly when the engine compresses
// bodies (Caps.SnappyBodies) and Compression is snappy; else it is the
// NDJSON itself, readable without a decompressor.
func testCompression(t *testing.T, newEngine func(*testing.T, Config) Engine) {
	for _, comp := range []string{fleet.CompressionSnappy, fleet.CompressionNone} {
		t.Run(comp, func(t *testing.T) {
			e := newEngine(t, Config{Compression: comp})
			snappy := comp == fleet.CompressionSnappy && e.Caps().SnappyBodies
			p := newPublisher(t, e)
			recs := records("shop", 0, 10)
			p.publishAll(recs)
			p.close()
			if failed := p.settled(); len(failed) > 0 {
				t.Fatalf("%d records acknowledged with an error, first %s: %v", len(failed), failed[0], p.err(failed[0]))
			}
			c := newCollector()
			sub := e.Subscriber(t, "compression", "")
			consume(t, sub, func(m *fleet.Message) (bool, error) {
				r := parse(t, m)
				enc := m.Header(fleet.HeaderEncoding)
				plain := string(fleet.AppendNDJSON(nil, r.Events))
				switch {
				case snappy && enc != fleet.EncodingSnappy:
					t.Errorf("%s: encoding %q, want %q", r.MsgID(), enc, fleet.EncodingSnappy)
				case !snappy && (enc != "" || string(m.Body) != plain):
					t.Errorf("%s: encoding %q, body %q; want the NDJSON as it is", r.MsgID(), enc, m.Body)
				}
				c.add(r)
				return c.hasAll(ids(recs)), nil
			})
			sub.Close()
			checkExactlyOnce(t, c, recs, nil)
		})
	}
}
