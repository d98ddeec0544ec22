// Package load drives POST /api/v1/collect of an Uptimizr Edge collector
// with pre-encoded batches and measures throughput and latency.
//
// Two ways of loading are offered:
//
//   - Closed loop (Options.Rate == 0): Concurrency workers each send one
//     request, wait for the full response, and send the next. Latency is the
//     time from sending a request to reading its whole response. Throughput
//     is whatever the server sustains at that concurrency.
//
//   - Open loop (Options.Rate > 0): request i is due at start + i/Rate,
//     whatever happened to earlier ones. A pool of up to Concurrency workers
//     (256 by default) takes due requests in order; when all are busy the
//     schedule does not pause, due requests wait, and the wait is part of
//     their latency, which is measured from the scheduled time rather than
//     from the moment the request left. A server that falls behind therefore
//     shows the delay its clients would see instead of hiding it
//     (coordinated omission). The schedule is kept by a pacer on a thread of
//     its own with high-resolution sleeps (on Linux), so requests leave
//     within tens of microseconds of their due time; the millisecond
//     granularity of ordinary timers would otherwise count as latency.
//     Options.Timeout counts from the scheduled time
//     too. A request started late gets what remains of it; if the answer
//     does not come in time the request is a transport error (status 0)
//     with a latency of about Timeout. A request that could not even be
//     started within Timeout of its due time is not sent and is counted in
//     Result.Dropped; it is not in the latency histogram, so with
//     Dropped > 0 the percentiles are a lower bound (each dropped request
//     would have taken longer than Timeout). Requests due inside the
//     measured window may thus still start, late, after it closes.
//
// A run only contacts the host of Target.URL.
package load

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"
)

// Target is the collector endpoint under load.
type Target struct {
	// URL of the collect endpoint, e.g. http://127.0.0.1:8080/api/v1/collect.
	URL string
	// Keys are ingest API keys, typically one per project. Requests rotate
	// through them round-robin.
	Keys []string
	// UserAgent is sent with every request; empty means "uptimizr-bench".
	UserAgent string
}

// Options shape a run.
type Options struct {
	// Concurrency is the number of workers. Closed loop: each sends requests
	// back to back (default 1). Open loop: the most requests in flight at
	// once (default 256).
	Concurrency int
	// Rate, when > 0, selects the open loop: requests per second on a fixed
	// schedule.
	Rate float64
	// Duration of the measured window, after Warmup. Closed loop: no request
	// starts after the window closes. Open loop: no request is scheduled
	// after it (late ones due inside it may still start, see the package
	// documentation).
	Duration time.Duration
	// Requests, when > 0, ends the run after this many measured requests.
	// At least one of Duration and Requests must be set; with both, the run
	// ends at whichever comes first.
	Requests int
	// Warmup is a period before the measured window whose requests are sent
	// but not counted.
	Warmup time.Duration
	// Timeout per request (default 10 s). In the open loop it counts from
	// the scheduled time.
	Timeout time.Duration
	// Window, when > 0, splits the measured run into consecutive windows
	// of this length from its start, and OnWindow is called with each
	// window's figures as it closes (the last one, partial, after the last
	// request ended). A request counts in the window during which it
	// completed, give or take the few microseconds it takes to close one.
	// OnWindow runs on a goroutine of its own, never concurrently with
	// itself; the WindowStats is valid only during the call.
	Window   time.Duration
	OnWindow func(*WindowStats)
}

// DefaultTimeout is the per-request timeout when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// DefaultOpenConcurrency is the in-flight limit of the open loop when
// Options.Concurrency is zero.
const DefaultOpenConcurrency = 256

// Result holds the measured part of a run; warmup requests are left out.
type Result struct {
	// Requests is the number of measured requests that completed, whatever
	// the outcome; OK those answered 2xx.
	Requests, OK int64
	// Errors counts the other outcomes by HTTP status; 0 stands for
	// transport errors (connection refused or reset, timeout).
	Errors map[int]int64
	// Dropped counts open-loop requests that were due but could not be
	// started within Timeout of their scheduled time; they were not sent.
	Dropped int64
	// BadReplies counts 2xx answers whose body was not a JSON object.
	BadReplies int64
	// WarmupRequests counts requests sent during Warmup.
	WarmupRequests int64

	// Events, WireBytes and RawBytes add up the bodies answered 2xx:
	// events in them, bytes on the wire and bytes after decompression.
	Events, WireBytes, RawBytes int64
	// Accepted, Rejected, Filtered and Quarantined add up the counts of
	// the 2xx answers.
	Accepted, Rejected, Filtered, Quarantined int64

	// Elapsed runs from the start of the measured window to the end of the
	// last measured request.
	Elapsed time.Duration
	// Latency of every measured request that completed (any outcome).
	Latency Histogram

	// Workers is the number of workers used; Rate the open-loop rate (0 for
	// the closed loop).
	Workers int
	Rate    float64
}

func (r *Result) perSec(n float64) float64 {
	s := r.Elapsed.Seconds()
	if s <= 0 {
		return 0
	}
	return n / s
}

// EventsPerSec is the rate of events in batches answered 2xx.
func (r *Result) EventsPerSec() float64 { return r.perSec(float64(r.Events)) }

// RequestsPerSec is the rate of completed requests, whatever their outcome.
func (r *Result) RequestsPerSec() float64 { return r.perSec(float64(r.Requests)) }

// WireMBps is megabytes (10^6 bytes) per second on the wire, of bodies
// answered 2xx.
func (r *Result) WireMBps() float64 { return r.perSec(float64(r.WireBytes)) / 1e6 }

// RawMBps is megabytes (10^6 bytes) per second after decompression, of
// bodies answered 2xx.
func (r *Result) RawMBps() float64 { return r.perSec(float64(r.RawBytes)) / 1e6 }

// Percentile is the latency within which the fraction q of the measured
// requests completed, q in [0, 1]: Percentile(0.99) is p99.
func (r *Result) Percentile(q float64) time.Duration { return r.Latency.Percentile(q) }

// ErrorCount is the number of measured requests not answered 2xx.
func (r *Result) ErrorCount() int64 {
	var n int64
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// String summarises the result on one line.
func (r *Result) String() string {
	return fmt.Sprintf("%d req (%d ok, %d err, %d dropped) in %v: %.0f events/s, %.0f req/s, %.2f MB/s wire, %.2f MB/s raw, p50 %v p90 %v p99 %v p99.9 %v",
		r.Requests, r.OK, r.ErrorCount(), r.Dropped, r.Elapsed.Round(time.Millisecond),
		r.EventsPerSec(), r.RequestsPerSec(), r.WireMBps(), r.RawMBps(),
		r.Percentile(0.50), r.Percentile(0.90), r.Percentile(0.99), r.Percentile(0.999))
}

// Run loads t with bodies until the options say stop or ctx is done. Bodies
// and keys rotate round-robin; in the closed loop worker i starts at offset
// i of each, in the open loop request i uses body i and key i (modulo their
// counts). When ctx ends the run early, the result so far is returned with
// ctx's error.
func Run(ctx context.Context, t Target, bodies []Body, o Options) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := newRunner(t, bodies, o)
	if err != nil {
		return nil, err
	}
	defer r.hc.CloseIdleConnections()
	return r.run(ctx)
}

const headerKey = "X-Api-Key"

type runner struct {
	hc      *fasthttp.HostClient
	url     string
	bodies  []Body
	keys    []string
	open    bool
	workers int
	timeout time.Duration
	limit   int64 // measured requests, 0 = no limit

	warmup   time.Duration
	duration time.Duration // 0 = no window end
	hasEnd   bool          // closed loop: Duration set

	start        time.Time
	measureStart time.Time
	windowEnd    time.Time // closed loop

	interval  float64 // open loop: nanoseconds between requests
	warmItems int64   // open loop: schedule slots before the window
	endItem   int64   // open loop: first slot after the window, -1 = none

	window   time.Duration // 0 = no windows
	onWindow func(*WindowStats)

	tickets atomic.Int64 // closed loop: measured requests claimed
	stop    atomic.Bool
	done    chan struct{}
}

func newRunner(t Target, bodies []Body, o Options) (*runner, error) {
	if len(bodies) == 0 {
		return nil, errors.New("load: no bodies")
	}
	if len(t.Keys) == 0 {
		return nil, errors.New("load: no API keys")
	}
	if o.Duration < 0 || o.Requests < 0 || o.Warmup < 0 || o.Timeout < 0 || o.Concurrency < 0 {
		return nil, errors.New("load: negative option")
	}
	if o.Rate < 0 || math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0) {
		return nil, fmt.Errorf("load: bad rate %v", o.Rate)
	}
	if o.Duration == 0 && o.Requests == 0 {
		return nil, errors.New("load: set Duration or Requests")
	}
	if o.Window < 0 || (o.Window > 0) != (o.OnWindow != nil) {
		return nil, errors.New("load: set Window and OnWindow together")
	}
	addr, tls, err := hostAddr(t.URL)
	if err != nil {
		return nil, err
	}
	r := &runner{
		url:      t.URL,
		bodies:   slices.Clone(bodies),
		keys:     t.Keys,
		open:     o.Rate > 0,
		workers:  o.Concurrency,
		timeout:  o.Timeout,
		limit:    int64(o.Requests),
		warmup:   o.Warmup,
		duration: o.Duration,
		window:   o.Window,
		onWindow: o.OnWindow,
		done:     make(chan struct{}),
	}
	if r.timeout == 0 {
		r.timeout = DefaultTimeout
	}
	if r.workers == 0 {
		r.workers = 1
		if r.open {
			r.workers = DefaultOpenConcurrency
		}
	}
	for i := range r.bodies {
		if r.bodies[i].Encoding == "" {
			r.bodies[i].Encoding = "identity"
		}
	}
	r.hc = &fasthttp.HostClient{
		Addr:                      addr,
		IsTLS:                     tls,
		Name:                      cmp.Or(t.UserAgent, "uptimizr-bench"),
		MaxConns:                  r.workers,
		MaxIdemponentCallAttempts: 1,
		RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		MaxIdleConnDuration:       time.Minute,
		MaxResponseBodySize:       4 << 20,
	}
	if r.open {
		r.interval = 1e9 / o.Rate
		r.warmItems = slots(float64(o.Warmup), r.interval)
		r.endItem = -1
		if o.Duration > 0 {
			r.endItem = r.warmItems + slots(float64(o.Duration), r.interval)
		}
		if r.limit > 0 && (r.endItem < 0 || r.warmItems+r.limit < r.endItem) {
			r.endItem = r.warmItems + r.limit
		}
	} else {
		r.hasEnd = o.Duration > 0
	}
	return r, nil
}

// slots is the number of schedule slots i ≥ 0 with i·interval < span.
func slots(span, interval float64) int64 {
	if span <= 0 {
		return 0
	}
	return int64(math.Ceil(span/interval - 1e-9))
}

// hostAddr returns the host:port to dial for an http or https URL.
func hostAddr(raw string) (addr string, tls bool, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", false, fmt.Errorf("load: target URL: %w", err)
	}
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		tls = true
		if port == "" {
			port = "443"
		}
	default:
		return "", false, fmt.Errorf("load: target URL %q: scheme must be http or https", raw)
	}
	if u.Hostname() == "" {
		return "", false, fmt.Errorf("load: target URL %q has no host", raw)
	}
	return net.JoinHostPort(u.Hostname(), port), tls, nil
}

func (r *runner) run(ctx context.Context) (*Result, error) {
	ws := make([]*worker, r.workers)
	for i := range ws {
		ws[i] = newWorker(i, r.url)
		if r.window > 0 {
			ws[i].win = &windowStats{}
		}
	}
	defer func() {
		for _, w := range ws {
			w.release()
		}
	}()

	go func() {
		select {
		case <-ctx.Done():
			r.stop.Store(true)
		case <-r.done:
		}
	}()

	r.start = time.Now()
	if r.open {
		r.measureStart = r.at(r.warmItems)
	} else {
		r.measureStart = r.start.Add(r.warmup)
		r.windowEnd = r.measureStart.Add(r.duration)
	}
	var (
		wg       sync.WaitGroup
		slots    chan int64
		paced    = make(chan bool, 1)
		pacerCut bool
	)
	if r.open {
		slots = make(chan int64, max(4*r.workers, 1024))
		go func() { paced <- r.pace(ctx, slots) }()
	}
	var stopWindows, windowsDone chan struct{}
	if r.window > 0 {
		stopWindows, windowsDone = make(chan struct{}), make(chan struct{})
		go r.windows(ws, stopWindows, windowsDone)
	}
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r.open {
				r.openLoop(w, slots)
			} else {
				r.closedLoop(w)
			}
		}()
	}
	wg.Wait()
	if r.open {
		pacerCut = !<-paced
	}
	if stopWindows != nil {
		close(stopWindows)
		<-windowsDone
	}
	close(r.done)

	res := &Result{Errors: map[int]int64{}, Workers: r.workers}
	if r.open {
		res.Rate = 1e9 / r.interval
	}
	var last time.Time
	interrupted := pacerCut
	for _, w := range ws {
		w.mergeInto(res)
		if w.last.After(last) {
			last = w.last
		}
		interrupted = interrupted || w.interrupted
	}
	if !last.IsZero() && last.After(r.measureStart) {
		res.Elapsed = last.Sub(r.measureStart)
	}
	if interrupted {
		return res, ctx.Err()
	}
	return res, nil
}

// at is the scheduled time of open-loop slot i.
func (r *runner) at(i int64) time.Time {
	return r.start.Add(time.Duration(float64(i) * r.interval))
}

// closedLoop sends back to back until the window closes, the request limit
// is reached or the run is stopped.
func (r *runner) closedLoop(w *worker) {
	nb, nk := len(r.bodies), len(r.keys)
	bi, ki := w.id%nb, w.id%nk
	for {
		if r.stop.Load() {
			w.interrupted = true
			return
		}
		sent := time.Now()
		measured := !sent.Before(r.measureStart)
		if measured {
			if r.hasEnd && !sent.Before(r.windowEnd) {
				return
			}
			if r.limit > 0 && r.tickets.Add(1) > r.limit {
				return
			}
		}
		b := &r.bodies[bi]
		status := w.exchange(r.hc, b, r.keys[ki], r.timeout)
		end := time.Now()
		w.account(measured, b, status, end.Sub(sent), end)
		if bi++; bi == nb {
			bi = 0
		}
		if ki++; ki == nk {
			ki = 0
		}
	}
}

// pace hands out the open-loop schedule: slot i at its due time
// start + i/Rate, never early. It runs on a thread of its own that sleeps
// with high-resolution timers (see sleepUntil), so slots leave on time to
// within tens of microseconds rather than the millisecond of ordinary
// timers, which would otherwise be counted as latency. When every worker
// is busy the slots queue up, their due times unchanged. pace returns
// false when ctx ended the schedule early.
func (r *runner) pace(ctx context.Context, slots chan<- int64) bool {
	defer close(slots)
	runtime.LockOSThread() // never unlocked: the thread ends with the pacer
	precise := preciseTimers()
	for i := int64(0); r.endItem < 0 || i < r.endItem; i++ {
		due := r.at(i)
		for {
			if r.stop.Load() {
				return false
			}
			wait := time.Until(due)
			if wait <= 0 {
				break
			}
			// Sleep in steps so that a cancelled run stops promptly.
			sleepFor(min(wait, 50*time.Millisecond), precise)
		}
		select {
		case slots <- i:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// openLoop sends the slots pace hands out; latency counts from each slot's
// scheduled time.
func (r *runner) openLoop(w *worker, slots <-chan int64) {
	nb, nk := int64(len(r.bodies)), int64(len(r.keys))
	for i := range slots {
		if r.stop.Load() {
			w.interrupted = true
			return
		}
		due := r.at(i)
		measured := i >= r.warmItems
		late := time.Since(due)
		if late >= r.timeout {
			if measured {
				w.dropped++
				if w.win != nil {
					w.win.drop()
				}
			}
			continue
		}
		timeout := r.timeout
		if late > 0 {
			timeout -= late
		}
		b := &r.bodies[i%nb]
		status := w.exchange(r.hc, b, r.keys[i%nk], timeout)
		end := time.Now()
		w.account(measured, b, status, end.Sub(due), end)
	}
}

// statusSlots covers every three-digit HTTP status; 0 is a transport error.
const statusSlots = 1000

type worker struct {
	id          int
	req         *fasthttp.Request
	res         *fasthttp.Response
	parser      fastjson.Parser
	hist        Histogram
	status      [statusSlots]int64
	odd         map[int]int64 // statuses outside statusSlots
	interrupted bool
	last        time.Time
	win         *windowStats // the open window's share, nil without windows

	requests, ok, bad, dropped, warm          int64
	events, wire, raw                         int64
	accepted, rejected, filtered, quarantined int64
}

func newWorker(id int, uri string) *worker {
	w := &worker{id: id, req: fasthttp.AcquireRequest(), res: fasthttp.AcquireResponse()}
	w.req.SetRequestURI(uri)
	w.req.Header.SetMethod(fasthttp.MethodPost)
	w.req.Header.SetContentType("application/json")
	return w
}

func (w *worker) release() {
	fasthttp.ReleaseRequest(w.req)
	fasthttp.ReleaseResponse(w.res)
}

// exchange sends one request and returns the response status, 0 on a
// transport error.
func (w *worker) exchange(hc *fasthttp.HostClient, b *Body, key string, timeout time.Duration) int {
	req := w.req
	req.Header.Set(headerKey, key)
	if b.Encoding == "identity" {
		req.Header.Del(fasthttp.HeaderContentEncoding)
	} else {
		req.Header.SetContentEncoding(b.Encoding)
	}
	req.SetBodyRaw(b.Data)
	if err := hc.DoTimeout(req, w.res, timeout); err != nil {
		return 0
	}
	return w.res.StatusCode()
}

// account records one finished request.
func (w *worker) account(measured bool, b *Body, status int, latency time.Duration, end time.Time) {
	if !measured {
		w.warm++
		return
	}
	w.requests++
	w.last = end
	w.hist.Record(latency)
	if status >= 0 && status < statusSlots {
		w.status[status]++
	} else {
		if w.odd == nil {
			w.odd = map[int]int64{}
		}
		w.odd[status]++
	}
	if status < 200 || status > 299 {
		if w.win != nil {
			w.win.add(status, latency, 0, 0)
		}
		return
	}
	w.ok++
	w.events += int64(b.Events)
	w.wire += int64(len(b.Data))
	w.raw += int64(b.Raw)
	v, err := w.parser.ParseBytes(w.res.Body())
	if err != nil || v.Type() != fastjson.TypeObject {
		w.bad++
		if w.win != nil {
			w.win.add(status, latency, int64(b.Events), 0)
		}
		return
	}
	accepted := v.GetInt64("accepted")
	if w.win != nil {
		w.win.add(status, latency, int64(b.Events), accepted)
	}
	w.accepted += accepted
	w.rejected += v.GetInt64("rejected")
	w.filtered += v.GetInt64("filtered")
	w.quarantined += v.GetInt64("quarantined")
}

func (w *worker) mergeInto(r *Result) {
	r.Requests += w.requests
	r.OK += w.ok
	r.BadReplies += w.bad
	r.Dropped += w.dropped
	r.WarmupRequests += w.warm
	r.Events += w.events
	r.WireBytes += w.wire
	r.RawBytes += w.raw
	r.Accepted += w.accepted
	r.Rejected += w.rejected
	r.Filtered += w.filtered
	r.Quarantined += w.quarantined
	r.Latency.Merge(&w.hist)
	for s, c := range w.status {
		if c != 0 && (s < 200 || s > 299) {
			r.Errors[s] += c
		}
	}
	for s, c := range w.odd {
		r.Errors[s] += c
	}
}
