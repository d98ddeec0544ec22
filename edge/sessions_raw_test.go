package edge_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/edge"
	"github.com/uptimizr/edge/storage"
)

const (
	retentionOffBody = `{"error":"raw session retention is disabled"}`
	notFoundBody     = `{"error":"session not found"}`
)

func (h *harness) replay(key, session, query string, hdr map[string]string) resp {
	h.t.Helper()
	m := map[string]string{}
	if key != "" {
		m["x-api-key"] = key
	}
	for k, v := range hdr {
		m[k] = v
	}
	path := "/api/v1/sessions/" + session + "/events"
	if query != "" {
		path += "?" + query
	}
	return h.do("GET", path, nil, m)
}

// splitSession turns one fixture session into two requests whose ts ranges
// interleave: even events go to the first, odd ones to the second (in
// reverse order, so the server has to sort them), and a few events of the
// second take the ts of one in the first, so ties cross requests.
func splitSession(t *testing.T, f fixture) (session string, reqs [2][]map[string]any) {
	t.Helper()
	session, _ = f.events[0]["sessionId"].(string)
	for i, e := range f.events {
		if e["sessionId"] != session {
			t.Fatalf("%s: more than one session", f.name)
		}
		reqs[i%2] = append(reqs[i%2], e)
	}
	slices.Reverse(reqs[1])
	for i := 0; i < len(reqs[1]) && i < 5; i++ {
		reqs[1][i*3%len(reqs[1])]["ts"] = reqs[0][i*4%len(reqs[0])]["ts"]
	}
	return session, reqs
}

func body(t *testing.T, events []map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"schemaVersion": "1.0", "events": events})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// storedOrder is the contract computed from what the store acknowledged: the
// session's events in the ingest log (arrival order), stably sorted by ts.
func storedOrder(h *harness, project, session string) []string {
	var evs []storedEvent
	for _, e := range h.storedEvents(project) {
		if e.Session == session {
			evs = append(evs, e)
		}
	}
	slices.SortStableFunc(evs, func(a, b storedEvent) int { return cmp.Compare(a.TS, b.TS) })
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Raw
	}
	return out
}

func ndjsonLines(t *testing.T, b []byte) []string {
	t.Helper()
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("NDJSON body does not end with a newline: %q", b[max(0, len(b)-40):])
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(b) == 0 {
		lines = nil
	}
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Fatalf("NDJSON line is not JSON: %s", l)
		}
	}
	return lines
}

func jsonArray(t *testing.T, b []byte) []string {
	t.Helper()
	var arr []json.RawMessage
	if err := json.Unmarshal(b, &arr); err != nil {
		t.Fatalf("not a JSON array: %v: %.200s", err, b)
	}
	out := make([]string, len(arr))
	for i, r := range arr {
		out[i] = string(r)
	}
	return out
}

func equalStreams(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: event %d:\n got %s\nwant %s", what, i, got[i], want[i])
		}
	}
}

func TestRawReplayOrderAndFormats(t *testing.T) {
	h := newHarness(t, func(c *core.Config) { c.RawRetention = true })
	f := loadFixtures(t)[0]
	session, reqs := splitSession(t, f)
	for _, r := range reqs {
		if res := h.collect(h.a.Ingest, body(t, r), nil); res.status != 200 {
			t.Fatalf("%d %s", res.status, res.body)
		}
	}
	want := storedOrder(h, "a", session)
	if len(want) < 20 {
		t.Fatalf("only %d events stored", len(want))
	}
	var arrival []string
	for _, e := range h.storedEvents("a") {
		arrival = append(arrival, e.Raw)
	}
	if slices.Equal(arrival, want) {
		t.Fatal("the two requests do not interleave: nothing to merge")
	}

	r := h.replay(h.a.Query, session, "", nil)
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s: %.200s", r.status, r.header.Get("Content-Type"), r.body)
	}
	equalStreams(t, "JSON array", jsonArray(t, r.body), want)

	for _, c := range []struct {
		query string
		hdr   map[string]string
	}{
		{"", map[string]string{"accept": "application/x-ndjson"}},
		{"format=ndjson", nil},
		{"format=ndjson", map[string]string{"accept": "application/json"}},
	} {
		r := h.replay(h.a.Query, session, c.query, c.hdr)
		if r.status != 200 || r.header.Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("%v: %d %s", c, r.status, r.header.Get("Content-Type"))
		}
		equalStreams(t, "NDJSON", ndjsonLines(t, r.body), want)
	}
	// ?format=json wins over Accept.
	r = h.replay(h.a.Query, session, "format=json", map[string]string{"accept": "application/x-ndjson"})
	if r.header.Get("Content-Type") != "application/json" {
		t.Fatal(r.header.Get("Content-Type"))
	}
	equalStreams(t, "format=json", jsonArray(t, r.body), want)

	// limit, since, until (inclusive) select from the same order.
	r = h.replay(h.a.Query, session, "limit=7", nil)
	equalStreams(t, "limit", jsonArray(t, r.body), want[:7])
	tsOf := func(s string) int64 {
		var e struct{ TS int64 }
		json.Unmarshal([]byte(s), &e)
		return e.TS
	}
	since, until := tsOf(want[5]), tsOf(want[len(want)-6])
	var window []string
	for _, w := range want {
		if ts := tsOf(w); ts >= since && ts <= until {
			window = append(window, w)
		}
	}
	r = h.replay(h.a.Query, session, fmt.Sprintf("since=%d&until=%d&format=ndjson", since, until), nil)
	equalStreams(t, "since/until", ndjsonLines(t, r.body), window)
	r = h.replay(h.a.Query, session, fmt.Sprintf("since=%d&limit=3", until+1_000_000), nil)
	if r.status != 200 || string(r.body) != "[]" {
		t.Fatalf("empty window: %d %s", r.status, r.body)
	}
	r = h.replay(h.a.Query, session, fmt.Sprintf("until=%d&format=ndjson", since-1_000_000), nil)
	if r.status != 200 || len(r.body) != 0 {
		t.Fatalf("empty NDJSON window: %d %q", r.status, r.body)
	}

	// HEAD answers the headers only.
	r = h.do("HEAD", "/api/v1/sessions/"+session+"/events", nil, map[string]string{"x-api-key": h.a.Query})
	if r.status != 200 || len(r.body) != 0 {
		t.Fatalf("HEAD: %d %q", r.status, r.body)
	}
	r = h.do("POST", "/api/v1/sessions/"+session+"/events", nil, map[string]string{"x-api-key": h.a.Query})
	if r.status != 405 {
		t.Fatalf("POST: %d", r.status)
	}

	for _, q := range []string{
		"limit=0", "limit=100001", "limit=abc", "limit=", "limit=-1", "limit=1.5",
		"since=-1", "since=1.5", "since=1e3", "since=x", "until=9007199254740993", "until=",
		"since=10&until=9", "format=xml", "format=",
	} {
		r := h.replay(h.a.Query, session, q, nil)
		if r.status != 400 || !strings.Contains(r.json(t)["error"].(string), strings.Split(strings.Split(q, "=")[0], "&")[0]) {
			t.Errorf("%s: %d %s", q, r.status, r.body)
		}
	}
	for _, q := range []string{"limit=100000", "limit=1", "since=0&until=9007199254740992"} {
		if r := h.replay(h.a.Query, session, q, nil); r.status != 200 {
			t.Errorf("%s: %d %s", q, r.status, r.body)
		}
	}
	met := h.metrics()
	for _, want := range []string{`route="session_events",status="200"`, `route="session_events",status="400"`} {
		if !strings.Contains(met, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestRawReplayRetentionOff(t *testing.T) {
	h := newHarness(t, nil)
	f := loadFixtures(t)[0]
	if r := h.collect(h.a.Ingest, f.body, nil); r.status != 200 {
		t.Fatal(r.status)
	}
	session := f.events[0]["sessionId"].(string)
	for _, q := range []string{"", "format=ndjson", "limit=0"} {
		r := h.replay(h.a.Query, session, q, nil)
		if r.status != 403 || string(r.body) != retentionOffBody {
			t.Fatalf("%q: %d %s", q, r.status, r.body)
		}
	}
}

func TestRawReplayAuthAndNotFound(t *testing.T) {
	h := newHarness(t, func(c *core.Config) { c.RawRetention = true })
	f := loadFixtures(t)[0]
	if r := h.collect(h.a.Ingest, f.body, nil); r.status != 200 {
		t.Fatal(r.status)
	}
	session := f.events[0]["sessionId"].(string)
	if r := h.replay("", session, "", nil); r.status != 401 {
		t.Fatalf("no key: %d", r.status)
	}
	if r := h.replay("uzq_nope", session, "", nil); r.status != 401 {
		t.Fatalf("unknown key: %d", r.status)
	}
	for _, k := range []string{h.a.Ingest, h.a.Admin} {
		r := h.replay(k, session, "", nil)
		if r.status != 403 || !strings.Contains(string(r.body), "query") {
			t.Fatalf("key without query: %d %s", r.status, r.body)
		}
	}
	// Keys are read from the header only on read endpoints.
	r := h.do("GET", "/api/v1/sessions/"+session+"/events?key="+h.a.Query, nil, nil)
	if r.status != 401 {
		t.Fatalf("?key=: %d", r.status)
	}
	for _, s := range []string{"no-such-session", strings.Repeat("x", 2000), session[:len(session)-1]} {
		r := h.replay(h.a.Query, s, "", nil)
		if r.status != 404 || string(r.body) != notFoundBody {
			t.Fatalf("%.20s: %d %s", s, r.status, r.body)
		}
	}
	if r := h.replay(h.a.Query, session, "", nil); r.status != 200 {
		t.Fatal(r.status)
	}
}

// TestRawReplayTenantIsolation: the same session id in two projects is two
// sessions; a key reads only its own project's.
func TestRawReplayTenantIsolation(t *testing.T) {
	h := newHarness(t, func(c *core.Config) { c.RawRetention = true })
	fx := loadFixtures(t)
	session := fx[0].events[0]["sessionId"].(string)
	if r := h.collect(h.b.Ingest, fx[0].body, nil); r.status != 200 {
		t.Fatal(r.status)
	}
	r := h.replay(h.a.Query, session, "", nil)
	if r.status != 404 || string(r.body) != notFoundBody {
		t.Fatalf("a reads b's session: %d %.200s", r.status, r.body)
	}
	// Project a now gets a (smaller) session under the same id.
	evs := fx[0].events[:10]
	if r := h.collect(h.a.Ingest, body(t, evs), nil); r.status != 200 {
		t.Fatal(r.status)
	}
	for _, c := range []struct{ key, project string }{{h.a.Query, "a"}, {h.b.Query, "b"}} {
		r := h.replay(c.key, session, "format=ndjson", nil)
		got := ndjsonLines(t, r.body)
		equalStreams(t, c.project, got, storedOrder(h, c.project, session))
		for _, l := range got {
			if !strings.Contains(l, `"projectId":"`+c.project+`"`) {
				t.Fatalf("%s's key read %s", c.project, l)
			}
		}
	}
}

// rawServer runs the server over a store with a given raw-retention TTL.
func rawServer(t *testing.T, ttl time.Duration) (base string, keys storage.NewKeys, hc *http.Client) {
	t.Helper()
	cfg := core.DefaultConfig()
	cfg.VisitorHashSecret = "test-secret-0123456789abcdef"
	cfg.DataDir = t.TempDir()
	cfg.RawRetention = true
	cfg.RateLimitMax, cfg.IngestRateLimitMax = 0, 0
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := storage.Open(storage.Options{Dir: cfg.DataDir, Retention: true, RetentionTTL: ttl, MinFreeDisk: -1})
	if err != nil {
		t.Fatal(err)
	}
	if keys, err = st.Registry().CreateProject("a"); err != nil {
		t.Fatal(err)
	}
	hasher, err := core.NewVisitorHasher([]byte(cfg.VisitorHashSecret))
	if err != nil {
		t.Fatal(err)
	}
	base = serveLoopback(t, &cfg, st, edge.Deps{Keys: st.Registry(), Sink: st.Sink(), Hasher: hasher, Raw: st.Raw()})
	return base, keys, &http.Client{Timeout: 20 * time.Second}
}

// serveLoopback starts a server with deps on a loopback port and returns
// its base URL; cleanup shuts it down, then closes st.
func serveLoopback(t *testing.T, cfg *core.Config, st *storage.Store, deps edge.Deps) string {
	t.Helper()
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	srv, err := edge.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		st.Close()
	})
	return "http://" + ln.Addr().String()
}

func TestRawReplayExpires(t *testing.T) {
	base, keys, hc := rawServer(t, time.Second)
	f := loadFixtures(t)[0]
	session := f.events[0]["sessionId"].(string)
	get := func(method, path, key string, b []byte) (int, string) {
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(b))
		req.Header.Set("x-api-key", key)
		req.Header.Set("content-type", "application/json")
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		out, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(out)
	}
	if st, b := get("POST", "/api/v1/collect", keys.Ingest, f.body); st != 200 {
		t.Fatalf("%d %s", st, b)
	}
	path := "/api/v1/sessions/" + session + "/events"
	if st, b := get("GET", path, keys.Query, nil); st != 200 || len(jsonArray(t, []byte(b))) == 0 {
		t.Fatalf("before expiry: %d %.100s", st, b)
	}
	// Badger's TTL has a resolution of a second.
	time.Sleep(2100 * time.Millisecond)
	if st, b := get("GET", path, keys.Query, nil); st != 404 || b != notFoundBody {
		t.Fatalf("after expiry: %d %s", st, b)
	}
}

// TestRawReplayAbortsOnStorageError: a chunk that cannot be decoded, met
// after part of the stream is sent, must not end in a short but well-formed
// answer: the connection is aborted and the client sees a read error.
func TestRawReplayAbortsOnStorageError(t *testing.T) {
	h := newHarness(t, func(c *core.Config) { c.RawRetention = true })
	pnum := h.store.Registry().Project("a").Num
	b := &core.Batch{ProjectID: "a", ProjectNum: pnum, ReceivedAt: 1}
	for i := 0; i < 1000; i++ {
		js := fmt.Sprintf(`{"type":"custom","projectId":"a","sessionId":"s","ts":%d,"name":"n"}`, i)
		b.AppendEvent(core.TypeCustom, int64(i), []byte("s"), []byte(js))
	}
	if err := h.store.Sink().Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	key := storage.RawPrefix(pnum, []byte("s"))
	key = append(key, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 99, 0, 0) // minTs 768, seq 99
	if err := h.store.DB().Update(func(txn *badger.Txn) error { return txn.Set(key, []byte{1, 0, 0xff}) }); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"", "format=ndjson"} {
		req, _ := http.NewRequest("GET", h.base+"/api/v1/sessions/s/events?"+q, nil)
		req.Header.Set("x-api-key", h.a.Query)
		res, err := h.hc.Do(req)
		if err == nil {
			got, rerr := io.ReadAll(res.Body)
			res.Body.Close()
			if rerr == nil {
				t.Fatalf("%q: a failed stream read as complete (%d bytes)", q, len(got))
			}
		}
	}
	if !strings.Contains(h.logs.String(), "raw session stream failed") {
		t.Fatal("the failure was not logged")
	}
	// The server goes on serving.
	if r := h.replay(h.a.Query, "s", "limit=10", nil); r.status != 200 || len(jsonArray(t, r.body)) != 10 {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

// TestRawReplayBoundedMemory streams a 100,000-event session as NDJSON and
// checks that the live heap during the stream stays far below the session's
// size, and that every event arrives, in order.
func TestRawReplayBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("commits and streams 100,000 events")
	}
	h := newHarness(t, func(c *core.Config) { c.RawRetention = true })
	pnum := h.store.Registry().Project("a").Num
	const requests, perRequest = 100, 1000
	rng := rand.New(rand.NewPCG(1, 2))
	pad := make([]byte, 96)
	const hexd = "0123456789abcdef"
	total := 0
	b := &core.Batch{}
	for k := 0; k < requests; k++ {
		b.Reset()
		b.ProjectID, b.ProjectNum, b.ReceivedAt = "a", pnum, 1_700_000_000_000
		// Request k covers ts [500k, 500k+999]: each overlaps the next by
		// half, with ties across requests. Events are sent newest first.
		for p := 0; p < perRequest; p++ {
			j := perRequest - 1 - p
			ts := int64(1_700_000_000_000 + 500*k + j)
			for i := range pad {
				pad[i] = hexd[rng.IntN(16)]
			}
			js := fmt.Sprintf(`{"type":"custom","projectId":"a","sessionId":"big","visitorId":"0123456789abcdef0123456789abcdef","ts":%d,"sdkVersion":"1.0.0","sceneId":"default","name":"tick","props":{"i":%d,"pad":"%s"}}`,
				ts, k*perRequest+p, pad)
			total += len(js) + 1
			b.AppendEvent(core.TypeCustom, ts, []byte("big"), []byte(js))
		}
		if err := h.store.Sink().Commit(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	b = nil

	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	baseline := ms.HeapAlloc

	req, _ := http.NewRequest("GET", h.base+"/api/v1/sessions/big/events", nil)
	req.Header.Set("x-api-key", h.a.Query)
	req.Header.Set("accept", "application/x-ndjson")
	res, err := h.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("%d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if res.ContentLength >= 0 {
		t.Fatalf("response has a Content-Length (%d): it was buffered", res.ContentLength)
	}
	br := bufio.NewReaderSize(res.Body, 64<<10)
	var (
		n, bytesRead int
		lastTS       int64 = -1
		lastI              = -1
		peak         uint64
	)
	field := func(line []byte, name string) int64 {
		i := bytes.Index(line, []byte(name))
		if i < 0 {
			t.Fatalf("no %s in %s", name, line)
		}
		rest := line[i+len(name):]
		j := bytes.IndexAny(rest, ",}")
		v, err := strconv.ParseInt(string(rest[:j]), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for {
		line, err := br.ReadSlice('\n')
		if err == io.EOF && len(line) == 0 {
			break
		}
		if err != nil {
			t.Fatalf("after %d events: %v", n, err)
		}
		bytesRead += len(line)
		ts, i := field(line, `"ts":`), int(field(line, `"i":`))
		// (ts, arrival index) strictly increasing: ordered by ts, ties in
		// arrival order, no event twice.
		if ts < lastTS || ts == lastTS && i <= lastI {
			t.Fatalf("event %d: (ts %d, i %d) after (ts %d, i %d)", n, ts, i, lastTS, lastI)
		}
		lastTS, lastI = ts, i
		n++
		if n%10_000 == 0 {
			if !json.Valid(line) {
				t.Fatalf("line %d is not JSON", n)
			}
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
	if n != requests*perRequest || bytesRead != total {
		t.Fatalf("streamed %d events (%d bytes), want %d (%d bytes)", n, bytesRead, requests*perRequest, total)
	}
	growth := int64(peak) - int64(baseline)
	t.Logf("session %d bytes; live heap %d before, peak %d during the stream (growth %d)", total, baseline, peak, growth)
	if growth > int64(total/4) {
		t.Fatalf("live heap grew by %d bytes during the stream of a %d-byte session", growth, total)
	}
}
