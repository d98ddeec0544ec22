package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/valyala/fasthttp"
)

// collector is a stand-in for the collect endpoint on loopback: it decodes
// each body by its Content-Encoding and tallies what it received.
type collector struct {
	url   string
	total atomic.Int64

	mu        sync.Mutex
	keys      map[string]int
	bodies    map[string]int // decoded body → count
	encodings map[string]int // Content-Encoding header ("" when absent)
	agents    map[string]int // User-Agent header
	failures  []string

	// reply, when set, decides status and body from the key.
	reply func(key string) (int, string)
	delay time.Duration
	gate  int64 // hold answers until this many requests arrived
	lean  bool  // count requests only, allocation-free
}

func startCollector(t testing.TB, c *collector) *collector {
	t.Helper()
	c.keys = map[string]int{}
	c.bodies = map[string]int{}
	c.encodings = map[string]int{}
	c.agents = map[string]int{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: c.handle, Concurrency: 4096}
	go srv.Serve(ln) //nolint:errcheck // ends when the listener closes
	t.Cleanup(func() { _ = srv.Shutdown() })
	c.url = "http://" + ln.Addr().String() + "/api/v1/collect"
	return c
}

func (c *collector) handle(ctx *fasthttp.RequestCtx) {
	n := c.total.Add(1)
	if c.lean {
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"accepted":5,"rejected":0,"filtered":0,"quarantined":0}`)
		return
	}
	for deadline := time.Now().Add(5 * time.Second); n < c.gate && c.total.Load() < c.gate && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if c.delay > 0 {
		time.Sleep(c.delay)
	}
	key := string(ctx.Request.Header.Peek("x-api-key"))
	enc := string(ctx.Request.Header.Peek("Content-Encoding"))
	raw, err := decode(enc, ctx.Request.Body())
	c.mu.Lock()
	c.keys[key]++
	c.encodings[enc]++
	c.agents[string(ctx.UserAgent())]++
	if err != nil {
		c.failures = append(c.failures, fmt.Sprintf("%s: %v", enc, err))
	} else {
		c.bodies[string(raw)]++
	}
	if ct := string(ctx.Request.Header.ContentType()); ct != "application/json" {
		c.failures = append(c.failures, "content type "+ct)
	}
	if !ctx.IsPost() || string(ctx.Path()) != "/api/v1/collect" {
		c.failures = append(c.failures, string(ctx.Method())+" "+string(ctx.Path()))
	}
	c.mu.Unlock()
	status, body := 200, `{"accepted":1,"rejected":0,"filtered":0,"quarantined":0}`
	if c.reply != nil {
		status, body = c.reply(key)
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBodyString(body)
}

func decode(enc string, b []byte) ([]byte, error) {
	switch enc {
	case "":
		return bytes.Clone(b), nil
	case "gzip":
		r, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(r)
	case "zstd":
		d, err := zstd.NewReader(nil)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		return d.DecodeAll(b, nil)
	case "br":
		return io.ReadAll(brotli.NewReader(bytes.NewReader(b)))
	}
	return nil, fmt.Errorf("unexpected Content-Encoding %q", enc)
}

func (c *collector) snapshot() (keys, bodies, encodings map[string]int, failures []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := func(m map[string]int) map[string]int {
		o := make(map[string]int, len(m))
		for k, v := range m {
			o[k] = v
		}
		return o
	}
	return cp(c.keys), cp(c.bodies), cp(c.encodings), append([]string(nil), c.failures...)
}

// batch is a JSON batch of n events, distinct per id.
func batch(id, n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"schemaVersion":"1.0","meta":{"id":%d},"events":[`, id)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"page_view","sessionId":"s-%d-%d","ts":%d,"sdkVersion":"1.2.3","url":"https://shop.example.com/p/%d"}`, id, i, 1700000000000+i, i%17)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func mustEncode(t testing.TB, raw []byte, enc string, events int) Body {
	t.Helper()
	b, err := Encode(raw, enc, events)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodeRoundTrip(t *testing.T) {
	raw := batch(1, 50)
	for _, enc := range Encodings {
		b := mustEncode(t, raw, enc, 50)
		if b.Encoding != enc || b.Raw != len(raw) || b.Events != 50 {
			t.Fatalf("%s: %+v", enc, b)
		}
		hdr := enc
		if enc == "identity" {
			hdr = ""
		}
		got, err := decode(hdr, b.Data)
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("%s: round trip failed: %v", enc, err)
		}
		if enc != "identity" && len(b.Data) >= len(raw) {
			t.Errorf("%s: %d bytes from %d", enc, len(b.Data), len(raw))
		}
	}
	if b := mustEncode(t, raw, "", 50); b.Encoding != "identity" {
		t.Errorf("empty encoding gave %q", b.Encoding)
	}
	if _, err := Encode(raw, "lz4", 50); err == nil {
		t.Error("unknown encoding accepted")
	}
}

func TestContentEncodingOnTheWire(t *testing.T) {
	for _, enc := range Encodings {
		t.Run(enc, func(t *testing.T) {
			c := startCollector(t, &collector{})
			raw := batch(7, 20)
			b := mustEncode(t, raw, enc, 20)
			res, err := Run(context.Background(), Target{URL: c.url, Keys: []string{"k"}}, []Body{b}, Options{Requests: 5, Concurrency: 2})
			if err != nil {
				t.Fatal(err)
			}
			_, bodies, encodings, failures := c.snapshot()
			if len(failures) > 0 {
				t.Fatalf("server: %v", failures)
			}
			want := enc
			if enc == "identity" {
				want = ""
			}
			if len(encodings) != 1 || encodings[want] != 5 {
				t.Errorf("Content-Encoding seen %v, want %q ×5", encodings, want)
			}
			if len(bodies) != 1 || bodies[string(raw)] != 5 {
				t.Errorf("server decoded %d distinct bodies, %d matching", len(bodies), bodies[string(raw)])
			}
			if res.Requests != 5 || res.OK != 5 || res.Events != 100 ||
				res.WireBytes != int64(5*len(b.Data)) || res.RawBytes != int64(5*len(raw)) {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	raws := [][]byte{batch(1, 3), batch(2, 3), batch(3, 3)}
	var bodies []Body
	for i, r := range raws {
		bodies = append(bodies, mustEncode(t, r, Encodings[i%len(Encodings)], 3))
	}
	keys := []string{"uzi_a", "uzi_b"}

	// rotate runs o against a fresh server and checks how many requests
	// each key and each body got.
	rotate := func(t *testing.T, c *collector, o Options, perKey, perBody int) {
		t.Helper()
		srv := startCollector(t, c)
		if _, err := Run(context.Background(), Target{URL: srv.url, Keys: keys}, bodies, o); err != nil {
			t.Fatal(err)
		}
		gotKeys, gotBodies, _, failures := srv.snapshot()
		if len(failures) > 0 {
			t.Fatal(failures)
		}
		for _, k := range keys {
			if gotKeys[k] != perKey {
				t.Errorf("key %s: %d requests, want %d", k, gotKeys[k], perKey)
			}
		}
		for i, r := range raws {
			if gotBodies[string(r)] != perBody {
				t.Errorf("body %d: %d requests, want %d", i, gotBodies[string(r)], perBody)
			}
		}
	}
	t.Run("one worker", func(t *testing.T) {
		rotate(t, &collector{}, Options{Requests: 60}, 30, 20)
	})
	t.Run("workers start at different offsets", func(t *testing.T) {
		// The server holds every answer until six requests are in flight,
		// so each of the six workers sends exactly one: worker i sends
		// body i%3 with key i%2.
		rotate(t, &collector{gate: 6}, Options{Requests: 6, Concurrency: 6}, 3, 2)
	})
	t.Run("open loop", func(t *testing.T) {
		rotate(t, &collector{}, Options{Rate: 2000, Requests: 60, Concurrency: 8}, 30, 20)
	})
}

func TestClosedLoopExactCount(t *testing.T) {
	c := startCollector(t, &collector{})
	b := mustEncode(t, batch(1, 10), "zstd", 10)
	res, err := Run(context.Background(), Target{URL: c.url, Keys: []string{"a", "b", "c"}}, []Body{b}, Options{Concurrency: 16, Requests: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 1000 || res.OK != 1000 || c.total.Load() != 1000 || res.WarmupRequests != 0 {
		t.Fatalf("result %d requests (%d ok), server saw %d", res.Requests, res.OK, c.total.Load())
	}
	if res.Latency.Count() != 1000 || res.Events != 10000 || res.Accepted != 1000 {
		t.Errorf("latency count %d, events %d, accepted %d", res.Latency.Count(), res.Events, res.Accepted)
	}
	if res.Elapsed <= 0 || res.RequestsPerSec() <= 0 || math.Abs(res.EventsPerSec()-10*res.RequestsPerSec()) > 1e-6*res.EventsPerSec() {
		t.Errorf("elapsed %v, %v req/s, %v events/s", res.Elapsed, res.RequestsPerSec(), res.EventsPerSec())
	}
	if p := res.Percentile(0.50); p <= 0 || p > res.Percentile(0.99) || res.Percentile(0.99) > res.Latency.Max() {
		t.Errorf("percentiles p50 %v p99 %v max %v", p, res.Percentile(0.99), res.Latency.Max())
	}

	// With a warmup the measured count stays exact; the server sees the
	// warmup requests on top.
	c2 := startCollector(t, &collector{})
	res, err = Run(context.Background(), Target{URL: c2.url, Keys: []string{"a"}}, []Body{b}, Options{Concurrency: 4, Requests: 300, Warmup: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 300 || res.WarmupRequests == 0 || c2.total.Load() != 300+res.WarmupRequests {
		t.Fatalf("%d measured + %d warmup, server saw %d", res.Requests, res.WarmupRequests, c2.total.Load())
	}
}

func TestClosedLoopDuration(t *testing.T) {
	c := startCollector(t, &collector{})
	b := mustEncode(t, batch(1, 5), "gzip", 5)
	res, err := Run(context.Background(), Target{URL: c.url, Keys: []string{"a"}}, []Body{b}, Options{Concurrency: 4, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Requests != c.total.Load() {
		t.Fatalf("%d measured, server saw %d", res.Requests, c.total.Load())
	}
	if res.Elapsed < 200*time.Millisecond || res.Elapsed > 2*time.Second {
		t.Errorf("elapsed %v for a 200ms window", res.Elapsed)
	}
}

func TestOpenLoopRate(t *testing.T) {
	c := startCollector(t, &collector{})
	b := mustEncode(t, batch(1, 5), "identity", 5)
	const rate, dur = 500.0, time.Second
	res, err := Run(context.Background(), Target{URL: c.url, Keys: []string{"a"}}, []Body{b}, Options{Rate: rate, Duration: dur, Concurrency: 32})
	if err != nil {
		t.Fatal(err)
	}
	want := rate * dur.Seconds()
	if n := float64(res.Requests); n < 0.7*want || n > 1.3*want {
		t.Errorf("%d requests, want about %.0f", res.Requests, want)
	}
	if n := float64(c.total.Load()); n < 0.7*want || n > 1.3*want {
		t.Errorf("server saw %d requests, want about %.0f", c.total.Load(), want)
	}
	if r := res.RequestsPerSec(); r < 0.7*rate || r > 1.3*rate {
		t.Errorf("%.0f req/s at a %v/s schedule", r, rate)
	}
	if res.Rate != rate || res.Dropped != 0 {
		t.Errorf("rate %v, dropped %d", res.Rate, res.Dropped)
	}
}

// A server that takes 20 ms per request, one request at a time, at a
// schedule of one every 5 ms: each request waits behind the previous ones,
// and latency counted from the schedule shows it.
func TestOpenLoopLatencyFromSchedule(t *testing.T) {
	c := startCollector(t, &collector{delay: 20 * time.Millisecond})
	b := mustEncode(t, batch(1, 5), "identity", 5)
	tgt := Target{URL: c.url, Keys: []string{"a"}}

	closed, err := Run(context.Background(), tgt, []Body{b}, Options{Concurrency: 1, Requests: 10})
	if err != nil {
		t.Fatal(err)
	}
	if p := closed.Percentile(0.50); p < 20*time.Millisecond || p > 200*time.Millisecond {
		t.Fatalf("closed loop p50 %v, want about 20ms", p)
	}

	open, err := Run(context.Background(), tgt, []Body{b}, Options{Rate: 200, Duration: time.Second, Concurrency: 1, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("open loop: %v", open)
	if p := open.Percentile(0.99); p < 200*time.Millisecond {
		t.Errorf("p99 %v from the schedule; the backlog must show (≫ 20ms)", p)
	}
	if p := open.Percentile(0.50); p < 100*time.Millisecond {
		t.Errorf("p50 %v from the schedule; half the requests wait behind others", p)
	}
	if got := open.Requests + open.Dropped; got < 180 || got > 220 {
		t.Errorf("%d sent + %d dropped, want the 200 scheduled", open.Requests, open.Dropped)
	}
	// The server keeps up with a quarter of the schedule: the backlog
	// outgrows the 2 s timeout, counted from the schedule, so some requests
	// time out or are not sent at all.
	if open.Errors[0]+open.Dropped == 0 {
		t.Errorf("every request answered within 2s of its schedule")
	}
	if r := open.RequestsPerSec(); r > 80 {
		t.Errorf("%.0f req/s from a server that can do 50", r)
	}
}

func TestErrorsByStatus(t *testing.T) {
	c := startCollector(t, &collector{reply: func(key string) (int, string) {
		switch key {
		case "limited":
			return 429, `{"error":"rate limit"}`
		case "down":
			return 503, `{"error":"storage cannot take writes"}`
		}
		return 200, `{"accepted":5}`
	}})
	b := mustEncode(t, batch(1, 5), "gzip", 5)
	res, err := Run(context.Background(), Target{URL: c.url, Keys: []string{"ok", "limited", "down"}}, []Body{b}, Options{Requests: 30})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 30 || res.OK != 10 || res.Errors[429] != 10 || res.Errors[503] != 10 || len(res.Errors) != 2 || res.ErrorCount() != 20 {
		t.Errorf("requests %d ok %d errors %v", res.Requests, res.OK, res.Errors)
	}
	if res.Events != 50 || res.Accepted != 50 || res.WireBytes != int64(10*len(b.Data)) {
		t.Errorf("events %d accepted %d wire %d: only 2xx answers count", res.Events, res.Accepted, res.WireBytes)
	}

	// Nothing listens: every request is a transport error, status 0.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/api/v1/collect"
	ln.Close()
	res, err = Run(context.Background(), Target{URL: dead, Keys: []string{"k"}}, []Body{b}, Options{Requests: 5, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 5 || res.OK != 0 || res.Errors[0] != 5 {
		t.Errorf("refused: requests %d ok %d errors %v", res.Requests, res.OK, res.Errors)
	}
}

func TestTimeoutIsTransportError(t *testing.T) {
	c := startCollector(t, &collector{delay: 300 * time.Millisecond})
	b := mustEncode(t, batch(1, 1), "identity", 1)
	res, err := Run(context.Background(), Target{URL: c.url, Keys: []string{"k"}}, []Body{b}, Options{Requests: 2, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors[0] != 2 || res.OK != 0 {
		t.Errorf("errors %v ok %d", res.Errors, res.OK)
	}
	if p := res.Latency.Max(); p < 50*time.Millisecond || p > 250*time.Millisecond {
		t.Errorf("timed-out request took %v", p)
	}
}

func TestResponseSums(t *testing.T) {
	c := startCollector(t, &collector{reply: func(key string) (int, string) {
		if key == "bad" {
			return 200, `not json`
		}
		return 200, `{"accepted":7,"rejected":2,"filtered":1,"quarantined":3,"errors":[{"index":0,"reason":"ts: required"},{"index":4,"reason":"x"}]}`
	}})
	b := mustEncode(t, batch(1, 13), "br", 13)
	res, err := Run(context.Background(), Target{URL: c.url, Keys: []string{"k1", "k2", "k3", "bad"}}, []Body{b}, Options{Requests: 40, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	// Each worker sends 10 requests in turn over the four keys, but which
	// worker sends how many is the scheduler's choice: count from BadReplies.
	good := res.OK - res.BadReplies
	if res.OK != 40 || res.BadReplies == 0 || good == 0 {
		t.Fatalf("ok %d bad replies %d", res.OK, res.BadReplies)
	}
	if res.Accepted != 7*good || res.Rejected != 2*good || res.Filtered != good || res.Quarantined != 3*good {
		t.Errorf("sums %d/%d/%d/%d for %d parsed replies", res.Accepted, res.Rejected, res.Filtered, res.Quarantined, good)
	}
	if res.Events != 40*13 {
		t.Errorf("events %d", res.Events)
	}
}

func TestCancel(t *testing.T) {
	c := startCollector(t, &collector{})
	b := mustEncode(t, batch(1, 1), "identity", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, Target{URL: c.url, Keys: []string{"k"}}, []Body{b}, Options{Rate: 100, Duration: 30 * time.Second})
	if err == nil || res == nil {
		t.Fatalf("err %v res %v", err, res)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %v", d)
	}
	if res.Requests == 0 || res.Requests > 100 {
		t.Errorf("%d requests before the cancel", res.Requests)
	}
}

func TestUserAgent(t *testing.T) {
	b := mustEncode(t, batch(1, 1), "identity", 1)
	for _, ua := range []string{"", "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"} {
		c := startCollector(t, &collector{})
		if _, err := Run(context.Background(), Target{URL: c.url, Keys: []string{"k"}, UserAgent: ua}, []Body{b}, Options{Requests: 3}); err != nil {
			t.Fatal(err)
		}
		want := ua
		if want == "" {
			want = "uptimizr-bench"
		}
		c.mu.Lock()
		if c.agents[want] != 3 {
			t.Errorf("User-Agent %v, want %q", c.agents, want)
		}
		c.mu.Unlock()
	}
}

func TestOptionErrors(t *testing.T) {
	b := mustEncode(t, batch(1, 1), "identity", 1)
	tgt := Target{URL: "http://127.0.0.1:1/api/v1/collect", Keys: []string{"k"}}
	cases := []struct {
		name   string
		t      Target
		bodies []Body
		o      Options
	}{
		{"no bodies", tgt, nil, Options{Requests: 1}},
		{"no keys", Target{URL: tgt.URL}, []Body{b}, Options{Requests: 1}},
		{"no end", tgt, []Body{b}, Options{}},
		{"negative rate", tgt, []Body{b}, Options{Requests: 1, Rate: -1}},
		{"scheme", Target{URL: "ftp://127.0.0.1/x", Keys: []string{"k"}}, []Body{b}, Options{Requests: 1}},
		{"no host", Target{URL: "http:///x", Keys: []string{"k"}}, []Body{b}, Options{Requests: 1}},
	}
	for _, tc := range cases {
		if _, err := Run(context.Background(), tc.t, tc.bodies, tc.o); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, tgt, []Body{b}, Options{Requests: 1}); err == nil {
		t.Error("cancelled context: no error")
	}
}

// The per-request path of a worker allocates nothing once warm; the server
// in the same process is fasthttp too, so the whole exchange is measured.
func TestExchangeAllocs(t *testing.T) {
	c := startCollector(t, &collector{lean: true})
	b := mustEncode(t, batch(1, 5), "zstd", 5)
	r, err := newRunner(Target{URL: c.url, Keys: []string{"k"}}, []Body{b}, Options{Requests: 1})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorker(0, r.url)
	defer w.release()
	now := time.Now()
	for range 10 {
		w.account(true, &b, w.exchange(r.hc, &b, "k", time.Second), time.Millisecond, now)
	}
	allocs := testing.AllocsPerRun(200, func() {
		w.account(true, &b, w.exchange(r.hc, &b, "k", time.Second), time.Millisecond, now)
	})
	t.Logf("%.2f allocations per request (client and server)", allocs)
	if allocs > 1 {
		t.Errorf("%.2f allocations per request", allocs)
	}
}

// The open-loop schedule leaves on time: were it paced by the runtime's
// ordinary timers, slots would leave up to a millisecond late and that
// lateness would be reported as server latency.
func TestPacerPunctuality(t *testing.T) {
	r, err := newRunner(Target{URL: "http://127.0.0.1:1/", Keys: []string{"k"}}, []Body{{Data: []byte("{}")}}, Options{Rate: 2000, Requests: 400})
	if err != nil {
		t.Fatal(err)
	}
	r.start = time.Now()
	slots := make(chan int64, 1024)
	late := make([]time.Duration, 0, 400)
	done := make(chan bool)
	go func() { done <- r.pace(context.Background(), slots) }()
	for i := range slots {
		late = append(late, time.Since(r.at(i)))
	}
	if !<-done || len(late) != 400 {
		t.Fatalf("%d slots", len(late))
	}
	for i, l := range late {
		if l < 0 {
			t.Fatalf("slot %d left %v early", i, -l)
		}
	}
	slices.Sort(late)
	t.Logf("lateness p50 %v p90 %v max %v", late[200], late[360], late[399])
	if runtime.GOOS == "linux" && late[200] > 400*time.Microsecond {
		t.Errorf("median slot leaves %v late", late[200])
	}
}
