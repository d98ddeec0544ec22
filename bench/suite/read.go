package suite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"

	"github.com/uptimizr/edge/bench/gen"
	"github.com/uptimizr/edge/bench/load"
	"github.com/uptimizr/edge/bench/report"
	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/storage"
)

// The read scenario: one collector loaded with Events events through the
// real ingest endpoint, spread over sessions of about SessionEvents events
// each (several batches apiece) and over a week of timestamps ending now;
// once its aggregator has caught up, every GET read route of the API is
// requested Requests times in a row with the project's query key, one
// request at a time, and each route's p50, p99, max and answer size are
// reported against a p99 target. It is its own command (uptimizr-bench
// read), not a row of the suite: it measures the read API over a store of
// a given size, not a rate.

// ReadOptions configure the read scenario.
type ReadOptions struct {
	Collector string // the uptimizr-edge binary
	// Events to load (default 10,000,000), rounded to whole sessions of
	// whole batches.
	Events int64
	// SessionEvents is about how many events each session gets (default
	// 1,000), in batches of BatchSize (default 200) events.
	SessionEvents int
	BatchSize     int
	// Concurrency is the load's connections, each sending back to back
	// (default 16).
	Concurrency int
	// Bodies is the number of distinct generated batches the sessions'
	// batches are made from (default 64), Seed the generator's seed
	// (default 1).
	Bodies int
	Seed   int64
	// Requests per route (default 50).
	Requests int
	// Target is the p99 a route must meet (default 50 ms).
	Target time.Duration
	// Retention runs the collector with ENABLE_RAW_SESSION_RETENTION=true:
	// the raw routes (funnel, session replay) then answer 200 instead of
	// their documented 403.
	Retention bool
	// CatchUpTimeout bounds the wait for the aggregator (default 10 min).
	CatchUpTimeout time.Duration
	// Keep leaves the data dir (with the keys and the plan's week, for
	// Reuse) instead of removing it.
	Keep bool
	// Reuse is a directory Keep left: its collector is started on it and
	// the routes timed without loading anything.
	Reuse string
	// Profile, when set, is a file the collector's CPU profile over the
	// reads is written to.
	Profile string
	// ProfileSeconds is how long the profile lasts from the first read
	// (default 120).
	ProfileSeconds int
	// Now is the end of the week of event timestamps (default: the time
	// the run starts).
	Now time.Time
	// Progress, if set, receives a line every few seconds of the load and
	// one per route.
	Progress io.Writer
}

func (o *ReadOptions) defaults() {
	if o.Events <= 0 {
		o.Events = 10_000_000
	}
	if o.SessionEvents <= 0 {
		o.SessionEvents = 1000
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 200
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.Bodies <= 0 {
		o.Bodies = 64
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.ProfileSeconds <= 0 {
		o.ProfileSeconds = 120
	}
	if o.Requests <= 0 {
		o.Requests = 50
	}
	if o.Target <= 0 {
		o.Target = 50 * time.Millisecond
	}
	if o.CatchUpTimeout <= 0 {
		o.CatchUpTimeout = 10 * time.Minute
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
}

const week = 7 * 24 * time.Hour

// RunRead runs the read scenario. On an error after the load started, the
// result so far is returned with it.
func RunRead(ctx context.Context, o ReadOptions) (*report.Read, error) {
	o.defaults()
	plan, err := newReadPlan(o)
	if err != nil {
		return nil, err
	}
	run := &report.Read{
		Machine: report.DetectMachine(), Started: time.Now().UTC(), Retention: o.Retention,
		BatchSize: o.BatchSize, Sessions: plan.sessions, BatchesPerSession: plan.perSession, Concurrency: o.Concurrency,
		From: time.UnixMilli(plan.from).UTC(), To: time.UnixMilli(plan.to).UTC(),
		Requests: o.Requests, Target: o.Target,
	}
	dir := o.Reuse
	var keys storage.NewKeys
	if dir == "" {
		if dir, err = os.MkdirTemp("", "uptimizr-read-"); err != nil {
			return nil, err
		}
		if o.Keep {
			defer fmt.Fprintf(progress(o), "data dir kept: %s (-reuse %s reads it again without loading)\n", dir, dir)
		} else {
			defer os.RemoveAll(dir)
		}
		if keys, err = provisionRead(filepath.Join(dir, "data")); err != nil {
			return nil, fmt.Errorf("provision: %w", err)
		}
		if err := saveReadState(dir, keys, plan); err != nil {
			return nil, err
		}
	} else if keys, err = loadReadState(dir, plan); err != nil {
		return nil, fmt.Errorf("reuse %s: %w", dir, err)
	}
	dataDir := filepath.Join(dir, "data")
	pprofAddr := ""
	if o.Profile != "" {
		if pprofAddr, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	c, err := startSoakCollector(ctx, o.Collector, Scenario{Name: "read", Retention: o.Retention}, dataDir, filepath.Join(dir, "server.log"), pprofAddr)
	if err != nil {
		return nil, err
	}
	defer c.stop()
	fail := func(err error) (*report.Read, error) {
		c.stop()
		return run, fmt.Errorf("%w\nserver log:\n%s", err, tail(c.logPath, 2000))
	}
	if err := waitReady(ctx, c.base+"/ready", 30*time.Second); err != nil {
		return fail(err)
	}

	if o.Reuse != "" {
		return readPhase(ctx, o, run, plan, c, keys, dataDir, pprofAddr, fail)
	}
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "loading %s events: %d sessions × %d batches of %d, %d connections\n",
			report.Thousands(float64(plan.batches*int64(o.BatchSize))), plan.sessions, plan.perSession, o.BatchSize, o.Concurrency)
	}
	smp, err := startSampler(c.cmd.Process.Pid, 200*time.Millisecond)
	if err != nil {
		return fail(err)
	}
	lr, err := plan.load(ctx, c.base, keys.Ingest, o.Concurrency, o.Progress)
	st := smp.finish()
	run.LoadCPU, run.LoadPeakRSS = st.Cores, st.PeakRSS
	if lr != nil {
		run.Events, run.Batches, run.LoadTime, run.Retries = lr.events, lr.batches, lr.elapsed, lr.retries
		run.Accepted, run.Rejected, run.Filtered = lr.accepted, lr.rejected, lr.filtered
		run.IngestP50, run.IngestP99 = lr.hist.Percentile(0.50), lr.hist.Percentile(0.99)
	}
	if err != nil {
		return fail(fmt.Errorf("load: %w", err))
	}
	loaded := time.Now()
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "loaded %s events in %.1f s: %s events/s, p99 %.2f ms; %s accepted\n",
			report.Thousands(float64(run.Events)), run.LoadTime.Seconds(), report.Thousands(run.EventsPerSec()),
			float64(run.IngestP99)/1e6, report.Thousands(float64(run.Accepted)))
	}
	if run.Rejected > 0 {
		run.Notes = append(run.Notes, fmt.Sprintf("%d events were rejected by validation.", run.Rejected))
	}

	lag, folded, waited, err := waitCaughtUp(ctx, c.base+"/metrics", run.Accepted, o.CatchUpTimeout, loaded)
	run.LagAtLoadEnd, run.FoldedEvents, run.CatchUp = lag, folded, waited
	if err != nil {
		return fail(err)
	}
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "aggregator caught up %.1f s after the load (lag %d records at its end)\n", waited.Seconds(), lag)
	}
	return readPhase(ctx, o, run, plan, c, keys, dataDir, pprofAddr, fail)
}

// readPhase times the routes on a loaded collector, with a CPU profile of
// it saved to o.Profile when set.
func readPhase(ctx context.Context, o ReadOptions, run *report.Read, plan *readPlan, c *soakCollector, keys storage.NewKeys,
	dataDir, pprofAddr string, fail func(error) (*report.Read, error)) (*report.Read, error) {
	run.DataDirBytes, _ = dirUsage(dataDir)
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "data dir %s MiB\n", report.MiB(run.DataDirBytes))
	}
	scene, err := topScene(ctx, c.base, keys.Query, plan.from, plan.to)
	if err != nil {
		return fail(err)
	}
	if err := putRepresentation(ctx, c.base, keys.Query, scene, plan.from, plan.to); err != nil {
		return fail(err)
	}
	run.Scene, run.Session = scene, sessionID(plan.sessions/2)
	run.Week, run.Day = WeekQueries(plan.from, plan.to)
	routes := ReadRoutes(run.Session, run.Scene, plan.from, plan.to)
	start := time.Now()
	var prof *profileCapture
	if o.Profile != "" {
		prof = startProfile(ctx, "http://"+pprofAddr, o.Profile, o.ProfileSeconds)
	}
	smp, serr := startSampler(c.cmd.Process.Pid, time.Second)
	run.Routes, err = measureRoutes(ctx, c.base, keys.Query, routes, o.Requests, o.Retention, o.Target, o.Progress)
	run.ReadTime = time.Since(start)
	if serr == nil {
		run.ReadCPU = smp.finish().Cores
	}
	if prof != nil {
		if perr := prof.finish(); perr != nil && err == nil {
			err = perr
		}
	}
	if err != nil {
		return fail(err)
	}
	if err := c.stop(); err != nil {
		return fail(fmt.Errorf("stop: %w", err))
	}
	return run, nil
}

// provisionRead creates project bench-0000 with every channel on, and its
// keys.
func provisionRead(dataDir string) (keys storage.NewKeys, err error) {
	st, err := storage.Open(storage.Options{Dir: dataDir, DisableAggregation: true, MinFreeDisk: -1})
	if err != nil {
		return keys, err
	}
	defer func() {
		if cerr := st.Close(); err == nil {
			err = cerr
		}
	}()
	if keys, err = st.Registry().CreateProject("bench-0000"); err != nil {
		return keys, err
	}
	return keys, st.Registry().SetChannels("bench-0000", core.AllChannels())
}

// sessionID is the id of the plan's session s: 32 characters, as long as
// the generator's, so that a body's ids are rewritten in place.
func sessionID(s int) string { return fmt.Sprintf("bench-session-%018d", s) }

const sessionIDLen = 32

// bodyTemplate is a generated batch with the places of its events' session
// ids and timestamps, rewritten for each session that sends it.
type bodyTemplate struct {
	data []byte
	sid  []int   // offsets of the 32-byte session ids
	ts   []int   // offsets of the timestamps' digits
	rel  []int64 // each timestamp less the body's first
	span int64   // the last timestamp less the first
}

// tsDigits is the width of every timestamp written: epoch milliseconds
// from 2001 to 2286 have 13 digits.
const tsDigits = 13

var (
	sidKey = []byte(`"sessionId":"`)
	tsKey  = []byte(`","ts":`)
)

// parseTemplate finds the session id and ts of each of a generated body's
// events (bench/gen writes them in this order at the start of each event).
func parseTemplate(body []byte, events int) (*bodyTemplate, error) {
	t := &bodyTemplate{data: body}
	var first int64
	for off := 0; ; {
		i := bytes.Index(body[off:], sidKey)
		if i < 0 {
			break
		}
		sid := off + i + len(sidKey)
		if sid+sessionIDLen+len(tsKey) > len(body) || !bytes.Equal(body[sid+sessionIDLen:sid+sessionIDLen+len(tsKey)], tsKey) {
			return nil, fmt.Errorf("event %d: a session id of other than %d characters, or no ts after it", len(t.sid), sessionIDLen)
		}
		ts := sid + sessionIDLen + len(tsKey)
		end := ts
		for end < len(body) && body[end] >= '0' && body[end] <= '9' {
			end++
		}
		v, err := strconv.ParseInt(string(body[ts:end]), 10, 64)
		if err != nil || end-ts != tsDigits {
			return nil, fmt.Errorf("event %d: ts %q", len(t.sid), body[ts:end])
		}
		if len(t.sid) == 0 {
			first = v
		}
		if v < first {
			return nil, fmt.Errorf("event %d: ts %d before the body's first, %d", len(t.sid), v, first)
		}
		t.sid, t.ts, t.rel = append(t.sid, sid), append(t.ts, ts), append(t.rel, v-first)
		t.span = max(t.span, v-first)
		off = end
	}
	if len(t.sid) != events {
		return nil, fmt.Errorf("%d session ids in a batch of %d events", len(t.sid), events)
	}
	return t, nil
}

// render writes the body into dst with every event in session sid, and
// timestamps from base on (base must have tsDigits digits, as must base
// plus the span).
func (t *bodyTemplate) render(dst []byte, sid string, base int64) []byte {
	dst = append(dst[:0], t.data...)
	var digits [20]byte
	for i, off := range t.sid {
		copy(dst[off:off+sessionIDLen], sid)
		copy(dst[t.ts[i]:t.ts[i]+tsDigits], strconv.AppendInt(digits[:0], base+t.rel[i], 10))
	}
	return dst
}

// readPlan is what the load sends: sessions × perSession batches, a
// session's batches made of consecutive generated bodies (one simulated
// client's events), in windows of inFlight sessions sending their batches
// in turn, as that many clients would.
type readPlan struct {
	bodies     []*bodyTemplate
	sessions   int
	perSession int
	batches    int64
	batchSize  int
	inFlight   int
	from, to   int64 // epoch ms of the first session's start and the last one's end
	stride     int64 // ms between a session's batches
	visitors   int
}

func newReadPlan(o ReadOptions) (*readPlan, error) {
	p := &readPlan{batchSize: o.BatchSize, perSession: max(1, (o.SessionEvents+o.BatchSize/2)/o.BatchSize)}
	perSession := int64(p.perSession * o.BatchSize)
	p.sessions = int(max(1, (o.Events+perSession/2)/perSession))
	p.batches = int64(p.sessions) * int64(p.perSession)
	p.inFlight = min(p.sessions, max(64, 4*o.Concurrency))
	p.visitors = max(1, p.sessions/3)
	g := gen.New(gen.Config{Seed: o.Seed, BatchSize: o.BatchSize, ProjectID: "bench", SessionsInFlight: 1})
	var span int64
	for range o.Bodies {
		t, err := parseTemplate(g.Next(nil), o.BatchSize)
		if err != nil {
			return nil, fmt.Errorf("generated body: %w", err)
		}
		p.bodies = append(p.bodies, t)
		span = max(span, t.span)
	}
	p.stride = span + 1000 // the SDK's next flush
	p.to = o.Now.UnixMilli()
	p.from = p.to - week.Milliseconds()
	if p.from < 1e12 || p.to >= 1e13 {
		return nil, fmt.Errorf("the week ending %s has timestamps of other than %d digits", o.Now, tsDigits)
	}
	return p, nil
}

// sessionStart is the epoch ms of session s's first event: the sessions
// start evenly over the week, the last one ending at p.to.
func (p *readPlan) sessionStart(s int) int64 {
	length := int64(p.perSession) * p.stride
	room := max(0, p.to-p.from-length)
	if p.sessions == 1 {
		return p.from
	}
	return p.from + room*int64(s)/int64(p.sessions-1)
}

// at is the session and its batch number of the plan's batch k: windows of
// inFlight sessions, each sending batch 0, then batch 1, ….
func (p *readPlan) at(k int64) (session, batch int) {
	group := k / int64(p.inFlight*p.perSession)
	first := int(group) * p.inFlight
	n := min(p.inFlight, p.sessions-first) // the last window may be smaller
	r := int(k - group*int64(p.inFlight*p.perSession))
	return first + r%n, r / n
}

// body renders batch k into dst and returns it with its session.
func (p *readPlan) body(dst []byte, k int64) ([]byte, int) {
	s, j := p.at(k)
	t := p.bodies[(s*p.perSession+j)%len(p.bodies)]
	return t.render(dst, sessionID(s), p.sessionStart(s)+int64(j)*p.stride), s
}

var userAgents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
	"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
}

// userAgent is session s's visitor's: a visitor comes back for about three
// sessions over the week (the visitor id hashes the address and the
// User-Agent).
func (p *readPlan) userAgent(s int) string {
	v := (s * 7919) % p.visitors
	return userAgents[v%len(userAgents)] + " bench-visitor/" + strconv.Itoa(v)
}

// loadResult is what the load sent and the collector answered.
type loadResult struct {
	events, batches                      int64
	accepted, rejected, filtered, quaran int64
	retries                              int64
	elapsed                              time.Duration
	hist                                 load.Histogram
}

// load sends every batch of the plan to the collector at base on conc
// connections, each sending back to back; a batch answered 429 or 503 is
// sent again after its Retry-After (at most a second) for up to two
// minutes, and any other answer than 200 stops the load.
func (p *readPlan) load(parent context.Context, base, key string, conc int, progress io.Writer) (*loadResult, error) {
	addr := strings.TrimPrefix(base, "http://")
	hc := &fasthttp.HostClient{Addr: addr, Name: "uptimizr-bench", MaxConns: conc, MaxIdemponentCallAttempts: 1,
		RetryIfErr: func(*fasthttp.Request, int, error) (bool, bool) { return false, false }}
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var (
		next, sentEvents atomic.Int64
		mu               sync.Mutex
		res              = &loadResult{}
		firstErr         error
		wg               sync.WaitGroup
	)
	setErr := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	start := time.Now()
	if progress != nil {
		go func() {
			t := time.NewTicker(5 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				n := sentEvents.Load()
				lag := "?"
				if m, err := scrape(base + "/metrics"); err == nil {
					lag = strconv.FormatFloat(m["uptimizr_aggregator_lag_records"], 'f', 0, 64)
				}
				fmt.Fprintf(progress, "%6s  %s of %s events, %s events/s, aggregator lag %s records\n",
					time.Since(start).Round(time.Second), report.Thousands(float64(n)), report.Thousands(float64(p.batches*int64(p.batchSize))),
					report.Thousands(float64(n)/time.Since(start).Seconds()), lag)
			}
		}()
	}
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(base + "/api/v1/collect")
			req.Header.SetMethod(fasthttp.MethodPost)
			req.Header.SetContentType("application/json")
			req.Header.Set("X-Api-Key", key)
			var (
				buf                                  []byte
				parser                               fastjson.Parser
				hist                                 load.Histogram
				acc, rej, fil, qua, retries, batches int64
			)
			defer func() {
				mu.Lock()
				res.hist.Merge(&hist)
				res.accepted, res.rejected, res.filtered, res.quaran = res.accepted+acc, res.rejected+rej, res.filtered+fil, res.quaran+qua
				res.retries += retries
				res.batches += batches
				mu.Unlock()
			}()
			for ctx.Err() == nil {
				k := next.Add(1) - 1
				if k >= p.batches {
					return
				}
				var s int
				buf, s = p.body(buf, k)
				req.SetBodyRaw(buf)
				req.Header.SetUserAgent(p.userAgent(s))
				first := time.Now()
				for {
					t0 := time.Now()
					err := hc.DoTimeout(req, resp, time.Minute)
					hist.Record(time.Since(t0))
					if err != nil {
						setErr(fmt.Errorf("batch %d: %w", k, err))
						return
					}
					st := resp.StatusCode()
					if st == 200 {
						v, err := parser.ParseBytes(resp.Body())
						if err != nil {
							setErr(fmt.Errorf("batch %d: answer %q: %w", k, resp.Body(), err))
							return
						}
						acc += v.GetInt64("accepted")
						rej += v.GetInt64("rejected")
						fil += v.GetInt64("filtered")
						qua += v.GetInt64("quarantined")
						batches++
						sentEvents.Add(int64(p.batchSize))
						break
					}
					if (st != 429 && st != 503) || time.Since(first) > 2*time.Minute {
						setErr(fmt.Errorf("batch %d: %d %s", k, st, truncate(resp.Body(), 300)))
						return
					}
					retries++
					wait := 100 * time.Millisecond
					if s, err := strconv.Atoi(string(resp.Header.Peek("Retry-After"))); err == nil && s > 0 {
						wait = min(time.Duration(s)*time.Second, time.Second)
					}
					select {
					case <-ctx.Done():
						return
					case <-time.After(wait):
					}
				}
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.events = res.batches * int64(p.batchSize)
	if firstErr == nil && res.batches < p.batches {
		why := parent.Err()
		if why == nil {
			why = errors.New("stopped")
		}
		firstErr = fmt.Errorf("%d of %d batches sent: %w", res.batches, p.batches, why)
	}
	return res, firstErr
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// waitCaughtUp polls the collector's metrics until its aggregator's lag is
// 0 with at least accepted events folded, and has stayed so for a second.
// It returns the lag at its first look, the events folded and the time
// from since until the lag was first 0 for good.
func waitCaughtUp(ctx context.Context, metricsURL string, accepted int64, within time.Duration, since time.Time) (lag0, folded int64, took time.Duration, err error) {
	const settle = time.Second
	deadline := since.Add(within)
	var zeroSince time.Time
	first := true
	for {
		m, err := scrape(metricsURL)
		now := time.Now()
		if err == nil {
			l, ok := m["uptimizr_aggregator_lag_records"]
			if !ok {
				return 0, 0, 0, errors.New("the collector's /metrics has no uptimizr_aggregator_lag_records")
			}
			f, hasFolded := m["uptimizr_aggregator_folded_events"]
			if first {
				lag0, first = int64(l), false
			}
			folded = int64(f)
			if l == 0 && (!hasFolded || folded >= accepted) {
				if zeroSince.IsZero() {
					zeroSince = now
				}
				if now.Sub(zeroSince) >= settle {
					return lag0, folded, zeroSince.Sub(since), nil
				}
			} else {
				zeroSince = time.Time{}
			}
		}
		if now.After(deadline) {
			return lag0, folded, now.Sub(since), fmt.Errorf("the aggregator had not caught up %s after the load (last metrics: %v)", within, err)
		}
		select {
		case <-ctx.Done():
			return lag0, folded, now.Sub(since), ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// apiGet GETs a read route with the query key and decodes its JSON answer.
func apiGet(ctx context.Context, base, key, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/"+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("x-api-key", key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		return fmt.Errorf("GET %s: %d %s", path, res.StatusCode, truncate(b, 300))
	}
	return json.Unmarshal(b, v)
}

// topScene is the scene with the most events.
func topScene(ctx context.Context, base, key string, from, to int64) (string, error) {
	var rows []struct {
		SceneID string `json:"scene_id"`
		Events  int64  `json:"events"`
	}
	if err := apiGet(ctx, base, key, fmt.Sprintf("scenes?since=%d&until=%d&limit=1000", from, to), &rows); err != nil {
		return "", err
	}
	best := -1
	for i, r := range rows {
		if best < 0 || r.Events > rows[best].Events {
			best = i
		}
	}
	if best < 0 {
		return "", errors.New("no scene after the load")
	}
	return rows[best].SceneID, nil
}

// putRepresentation stores a scene representation for scene, made of its
// most picked meshes, so that the scene registry's routes and the scene
// scoped heatmaps have one to read, as an SDK uploads it.
func putRepresentation(ctx context.Context, base, key, scene string, from, to int64) error {
	var top []struct {
		Mesh string `json:"mesh"`
	}
	if err := apiGet(ctx, base, key, fmt.Sprintf("meshes/top?since=%d&until=%d&scene=%s&limit=200", from, to, url.QueryEscape(scene)), &top); err != nil {
		return err
	}
	type mesh struct {
		Name      string     `json:"name"`
		AABB      [6]float64 `json:"aabb"`
		Triangles int        `json:"triangles"`
	}
	doc := struct {
		Version     int        `json:"version"`
		Kind        string     `json:"kind"`
		SceneID     string     `json:"sceneId"`
		Bounds      [6]float64 `json:"bounds"`
		UpAxis      string     `json:"upAxis"`
		UnitScale   float64    `json:"unitScale"`
		MeshCount   int        `json:"meshCount"`
		ContentHash string     `json:"contentHash"`
		CapturedAt  int64      `json:"capturedAt"`
		SDKVersion  string     `json:"sdkVersion"`
		Meshes      []mesh     `json:"meshes"`
	}{Version: 1, Kind: "aabb", SceneID: scene, Bounds: [6]float64{-16, -1, -16, 16, 8, 16}, UpAxis: "y", UnitScale: 1,
		ContentHash: "uptimizr-bench-read-1", CapturedAt: from, SDKVersion: "uptimizr-bench", Meshes: []mesh{}}
	for i, m := range top {
		x, z := float64(i%16)*2-16, float64(i/16)*2-16
		doc.Meshes = append(doc.Meshes, mesh{Name: m.Mesh, AABB: [6]float64{x, 0, z, x + 1.5, 2, z + 1.5}, Triangles: 1000 + 37*i})
	}
	doc.MeshCount = len(doc.Meshes)
	body, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "PUT", base+"/api/v1/scenes/"+url.PathEscape(scene)+"/representation", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("x-api-key", key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 && res.StatusCode != 201 {
		return fmt.Errorf("PUT the representation of scene %s: %d %s", scene, res.StatusCode, truncate(b, 300))
	}
	return nil
}

// ReadRoutes is every GET read route of the API (docs/API.md; the table
// readRoutes of edge/read_interact_test.go lists the aggregate ones) with
// the parameters a dashboard sends: the week's range on every aggregate
// route, the session and scene given for the routes that need one, and a
// few variants (one day, one session, one scene). Left out: the live
// event and session streams (Server-Sent Events), the POST, PUT and DELETE
// routes, and the admin key's (keys, plugins, quarantine).
func ReadRoutes(session, scene string, from, to int64) []report.ReadRoute {
	week, day := WeekQueries(from, to)
	steps := `[{"type":"session_start"},{"type":"camera_sample"},{"type":"mesh_interaction"},{"type":"pointer_click"}]`
	expand := strings.NewReplacer("{week}", week, "{day}", day, "{session}", url.PathEscape(session),
		"{session-q}", url.QueryEscape(session), "{scene}", url.PathEscape(scene), "{scene-q}", url.QueryEscape(scene),
		"{steps}", url.QueryEscape(steps))
	show := strings.NewReplacer("{session}", session, "{session-q}", session, "{scene}", scene, "{scene-q}", scene, "{steps}", steps)
	var rs []report.ReadRoute
	add := func(name, path string) {
		rs = append(rs, report.ReadRoute{Name: name, Path: expand.Replace(path), Shown: show.Replace(path)})
	}
	agg := func(name, extra string) { add(name, name+"?{week}"+extra) }
	// Aggregates.
	agg("event-counts", "")
	add("event-counts (one day)", "event-counts?{day}")
	add("event-counts (one session)", "event-counts?{week}&session={session-q}")
	agg("timeseries", "&interval=3600")
	agg("sessions", "")
	add("sessions (one day)", "sessions?{day}")
	add("sessions/:id/meta", "sessions/{session}/meta")
	agg("scenes", "")
	agg("meshes/top", "")
	agg("meshes/dwell", "")
	agg("hover/dwell", "")
	agg("perf", "")
	agg("perf/resources", "")
	agg("heatmaps/pointer", "&bins=50")
	agg("heatmaps/gaze", "")
	agg("heatmaps/camera", "&bins=36")
	// Interaction.
	agg("interactions/sources", "")
	agg("xr/sources", "")
	agg("xr/abandonment", "")
	agg("xr/rotation", "")
	agg("camera/distance", "")
	agg("meshes/kinds", "")
	agg("meshes/sources", "")
	agg("meshes/trend", "&interval=3600&limit=2000") // the dashboard asks for 2000 rows
	agg("clicks/dead", "")
	agg("clicks/rage", "")
	agg("input-actions/top", "")
	agg("camera-gestures", "")
	// Spatial.
	agg("heatmaps/world", "")
	add("heatmaps/world (one scene)", "heatmaps/world?{week}&scene={scene-q}")
	agg("heatmaps/world/stats", "")
	agg("heatmaps/gaze/stats", "")
	agg("heatmaps/position", "")
	agg("coverage", "")
	agg("navigation", "")
	agg("capabilities", "")
	add("sessions/:id/trajectory", "sessions/{session}/trajectory?{week}")
	agg("heatmaps/click-rays", "")
	agg("heatmaps/flow", "")
	add("heatmaps/flow (by origin)", "heatmaps/flow?{week}&groupByOrigin=true")
	agg("paths", "")
	// Performance.
	agg("perf/distribution", "")
	add("perf/distribution (one scene)", "perf/distribution?{week}&scene={scene-q}")
	agg("perf/fps-histogram", "")
	agg("perf/frame-time", "")
	agg("perf/jank", "")
	agg("perf/by-device", "")
	agg("perf/by-scene", "")
	agg("perf/resource-percentiles", "")
	agg("perf/stability", "")
	agg("perf/render-scale", "")
	agg("perf/compile-stalls", "")
	agg("graphics-diagnostics", "")
	agg("rendering-technology", "")
	// Scene registry, channels, live presence (one JSON snapshot).
	add("scene-representations", "scene-representations")
	add("scenes/:id/representation", "scenes/{scene}/representation")
	add("channels", "channels")
	add("live/presence", "live/presence")
	// Raw session events: 403 unless raw retention is on.
	add("funnel", "funnel?{week}&steps={steps}")
	add("sessions/:id/events", "sessions/{session}/events")
	rs[len(rs)-2].Raw, rs[len(rs)-1].Raw = true, true
	return rs
}

// WeekQueries are the range parameters of the routes: the week of the
// events' timestamps, and its fourth day.
func WeekQueries(from, to int64) (week, day string) {
	day0 := from + 3*24*3600*1000
	return fmt.Sprintf("since=%d&until=%d", from, to), fmt.Sprintf("since=%d&until=%d", day0, day0+24*3600*1000-1)
}

// errRetentionOff is the body of a raw route's 403 without retention.
const errRetentionOff = "raw session retention is disabled"

// measureRoutes requests each route n times in a row on one connection and
// records every answer.
func measureRoutes(ctx context.Context, base, key string, routes []report.ReadRoute, n int, retention bool, target time.Duration, progress io.Writer) ([]report.ReadRoute, error) {
	hc := &fasthttp.HostClient{Addr: strings.TrimPrefix(base, "http://"), Name: "uptimizr-bench", MaxConns: 1,
		MaxIdemponentCallAttempts: 1, MaxResponseBodySize: 1 << 30,
		RetryIfErr: func(*fasthttp.Request, int, error) (bool, bool) { return false, false }}
	defer hc.CloseIdleConnections()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	out := make([]report.ReadRoute, 0, len(routes))
	for _, r := range routes {
		req.Reset()
		req.SetRequestURI(base + "/api/v1/" + r.Path)
		req.Header.SetMethod(fasthttp.MethodGet)
		req.Header.Set("X-Api-Key", key)
		req.Header.Set("Accept", "application/json") // live/presence: one snapshot, not a stream
		for range n {
			if err := ctx.Err(); err != nil {
				return out, err
			}
			t0 := time.Now()
			err := hc.DoTimeout(req, resp, 5*time.Minute)
			took := time.Since(t0)
			status, body := resp.StatusCode(), resp.Body()
			if err != nil {
				status, body = 0, []byte(err.Error())
			}
			r.Latencies, r.Statuses, r.Sizes = append(r.Latencies, took), append(r.Statuses, status), append(r.Sizes, len(body))
			expected := status == 200 || (r.Raw && !retention && status == 403 && bytes.Contains(body, []byte(errRetentionOff)))
			if !expected && r.FirstError == "" {
				r.FirstError = strconv.Itoa(status) + " " + truncate(body, 300)
			}
		}
		if progress != nil {
			fmt.Fprintf(progress, "%-30s p50 %8.2f ms  p99 %8.2f ms  max %8.2f ms  %9s bytes  %s\n", r.Name,
				float64(r.P50())/1e6, float64(r.P99())/1e6, float64(r.Max())/1e6, report.Thousands(float64(r.Bytes())), r.Verdict(retention, target))
		}
		out = append(out, r)
	}
	return out, nil
}
