package edge_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/edge"
)

// liveBatch is a batch of n custom events of one session in one scene.
func liveBatch(session, scene string, n int) []byte {
	var b strings.Builder
	b.WriteString(`{"schemaVersion":"1.0","events":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"custom","projectId":"ignored","sessionId":%q,"ts":%d,"sdkVersion":"1.0.0","sceneId":%q,"name":"tick","props":{"i":%d}}`,
			session, 1_700_000_000_000+i, scene, i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func mustIngest(t *testing.T, h *harness, key string, body []byte) {
	t.Helper()
	if r := h.collect(key, body, nil); r.status != 200 {
		t.Fatalf("collect: %d %s", r.status, r.body)
	}
}

// sseFrame is one Server-Sent Event, or a comment.
type sseFrame struct {
	event, data, comment string
}

// sseClient reads a live stream on loopback.
type sseClient struct {
	t      *testing.T
	res    *http.Response
	frames chan sseFrame
	cancel context.CancelFunc
}

// openSSE opens a live stream and waits for its status line.
func openSSE(t *testing.T, h *harness, path string, hdr map[string]string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", h.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{DisableKeepAlives: true}
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	c := &sseClient{t: t, res: res, frames: make(chan sseFrame, 1024), cancel: cancel}
	t.Cleanup(c.close)
	if res.StatusCode != 200 {
		return c
	}
	go func() {
		defer close(c.frames)
		r := bufio.NewReader(res.Body)
		var f sseFrame
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "":
				c.frames <- f
				f = sseFrame{}
			case strings.HasPrefix(line, ":"):
				f.comment = strings.TrimSpace(line[1:])
			case strings.HasPrefix(line, "event: "):
				f.event = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				f.data = line[len("data: "):]
			}
		}
	}()
	return c
}

func (c *sseClient) close() {
	c.cancel()
	c.res.Body.Close()
}

// next returns the next frame; ok is false when the stream ended.
func (c *sseClient) next(wait time.Duration) (f sseFrame, ok bool) {
	c.t.Helper()
	select {
	case f, ok = <-c.frames:
		return f, ok
	case <-time.After(wait):
		c.t.Fatalf("no frame from the live stream within %s", wait)
		return f, false
	}
}

// nextEvent skips comments and returns the next event of that name.
func (c *sseClient) nextEvent(name string, wait time.Duration) map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		f, ok := c.next(time.Until(deadline))
		if !ok {
			c.t.Fatalf("the live stream ended while waiting for a %q event", name)
		}
		if f.event != name {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(f.data), &m); err != nil {
			c.t.Fatalf("%s data is not a JSON object: %v: %s", name, err, f.data)
		}
		return m
	}
}

// waitFor polls cond until it holds or the wait is over.
func waitFor(t *testing.T, wait time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after %s", what, wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// liveGoroutines counts goroutines running a live stream.
func liveGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	n := 0
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("edge.(*liveAPI).run")) || bytes.Contains(g, []byte("fasthttp.NewStreamReader")) {
			n++
		}
	}
	return n
}

// presenceJSON is one presence snapshot of key's project.
func presenceJSON(t *testing.T, h *harness, key, query string) map[string]any {
	t.Helper()
	r := h.do("GET", "/api/v1/live/presence"+query, nil, map[string]string{"x-api-key": key, "Accept": "application/json"})
	if r.status != 200 {
		t.Fatalf("presence: %d %s", r.status, r.body)
	}
	return r.json(t)
}

func rosterOf(m map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, s := range m["sessions"].([]any) {
		e := s.(map[string]any)
		out[e["sessionId"].(string)] = e
	}
	return out
}

// TestLiveStreamDeliversAndLeavesNothing subscribes with a real client on
// loopback, ingests, sees the batch on the stream (and nothing of the other
// project), disconnects, and finds the subscriber and its goroutines gone.
func TestLiveStreamDeliversAndLeavesNothing(t *testing.T) {
	h := newHarness(t, nil)
	edge.SetLiveIntervals(h.srv, time.Minute, time.Minute, 20*time.Millisecond)
	// A first stream, opened and closed, leaves the server's worker and the
	// clients' connections as the one under test will find them.
	mustIngest(t, h, h.a.Ingest, liveBatch("warm", "lobby", 1))
	warm := openSSE(t, h, "/api/v1/live/stream", map[string]string{"x-api-key": h.a.Query})
	warm.next(5 * time.Second)
	warm.close()
	waitFor(t, 10*time.Second, "rid of the first stream", func() bool { return edge.LiveStreams(h.srv) == 0 && liveGoroutines() == 0 })
	time.Sleep(100 * time.Millisecond)
	baseGoroutines := runtime.NumGoroutine()

	c := openSSE(t, h, "/api/v1/live/stream", map[string]string{"x-api-key": h.a.Query})
	if c.res.StatusCode != 200 {
		t.Fatalf("stream: %d", c.res.StatusCode)
	}
	if ct := c.res.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if f, _ := c.next(5 * time.Second); f.comment != "connected" {
		t.Fatalf("first frame %+v, want the connected comment", f)
	}
	if n := edge.LiveStreams(h.srv); n != 1 {
		t.Fatalf("%d streams open, want 1", n)
	}

	mustIngest(t, h, h.b.Ingest, liveBatch("other-project", "lobby", 1))
	mustIngest(t, h, h.a.Ingest, liveBatch("live-s1", "atrium", 2))
	for i := range 2 {
		ev := c.nextEvent("event", 5*time.Second)
		if ev["sessionId"] != "live-s1" || ev["type"] != "custom" || ev["sceneId"] != "atrium" || ev["projectId"] != "a" {
			t.Fatalf("event %d: %v", i, ev)
		}
		if ev["ts"] != float64(1_700_000_000_000+i) {
			t.Errorf("event %d ts %v", i, ev["ts"])
		}
		// Retention is off: the envelope only, never the visitor or the payload.
		for _, k := range []string{"visitorId", "name", "props", "sdkVersion"} {
			if _, has := ev[k]; has {
				t.Errorf("event %d carries %s with raw retention off: %v", i, k, ev)
			}
		}
	}

	c.close()
	waitFor(t, 10*time.Second, "unsubscribed", func() bool { return edge.LiveStreams(h.srv) == 0 })
	waitFor(t, 10*time.Second, "rid of the stream's goroutines", func() bool { return liveGoroutines() == 0 })
	waitFor(t, 15*time.Second, "back to the goroutines from before", func() bool { return runtime.NumGoroutine() <= baseGoroutines })
}

// TestLiveStreamFullEventsWithRetention: with raw retention on, the stream
// carries each event as stored; ?types= and ?scene= filter it.
func TestLiveStreamFullEventsWithRetention(t *testing.T) {
	h := newHarness(t, func(c *core.Config) { c.RawRetention = true })
	all := openSSE(t, h, "/api/v1/live/stream", map[string]string{"x-api-key": h.a.Query})
	filtered := openSSE(t, h, "/api/v1/live/stream?types=session_start,viewport_resize&scene=hall", map[string]string{"x-api-key": h.a.Query})
	all.next(5 * time.Second)
	filtered.next(5 * time.Second)

	body := `{"events":[
		{"type":"session_start","projectId":"a","sessionId":"full-1","ts":10,"sdkVersion":"1","sceneId":"lobby","connector":{"name":"babylon"}},
		{"type":"viewport_resize","projectId":"a","sessionId":"full-1","ts":11,"sdkVersion":"1","sceneId":"hall","width":800,"height":600},
		{"type":"custom","projectId":"a","sessionId":"full-1","ts":12,"sdkVersion":"1","sceneId":"hall","name":"x"}]}`
	mustIngest(t, h, h.a.Ingest, []byte(body))
	stored := h.storedEvents("a")
	if len(stored) != 3 {
		t.Fatalf("%d stored", len(stored))
	}
	for i := range 3 {
		f := all.nextFrameOf("event")
		if f.data != stored[i].Raw {
			t.Errorf("event %d on the stream:\n%s\nstored:\n%s", i, f.data, stored[i].Raw)
		}
	}
	ev := filtered.nextEvent("event", 5*time.Second)
	if ev["type"] != "viewport_resize" || ev["sceneId"] != "hall" || ev["visitorId"] == nil {
		t.Errorf("filtered stream: %v", ev)
	}
	// Nothing else passes the filter: the next batch's first matching
	// event comes next.
	mustIngest(t, h, h.a.Ingest, []byte(`{"events":[{"type":"session_start","projectId":"a","sessionId":"full-2","ts":20,"sdkVersion":"1","sceneId":"hall"}]}`))
	if ev := filtered.nextEvent("event", 5*time.Second); ev["sessionId"] != "full-2" {
		t.Errorf("filtered stream let through %v", ev)
	}
}

func (c *sseClient) nextFrameOf(name string) sseFrame {
	c.t.Helper()
	for {
		f, ok := c.next(5 * time.Second)
		if !ok {
			c.t.Fatalf("stream ended waiting for %q", name)
		}
		if f.event == name {
			return f
		}
	}
}

// TestLiveToken: a token reaches its own project only, until it expires or
// its key is revoked; a tampered one is refused.
func TestLiveToken(t *testing.T) {
	h := newHarness(t, func(c *core.Config) { c.RawRetention = true })
	mustIngest(t, h, h.a.Ingest, liveBatch("a-sess", "lobby", 1))
	mustIngest(t, h, h.b.Ingest, liveBatch("b-sess", "garden", 1))

	mint := func(key string) (string, int64) {
		t.Helper()
		r := h.do("POST", "/api/v1/live/token", nil, map[string]string{"x-api-key": key})
		if r.status != 200 {
			t.Fatalf("mint: %d %s", r.status, r.body)
		}
		m := r.json(t)
		return m["token"].(string), int64(m["expiresAt"].(float64))
	}
	presence := func(tok, extra string) resp {
		return h.do("GET", "/api/v1/live/presence?token="+url.QueryEscape(tok)+extra, nil, map[string]string{"Accept": "application/json"})
	}

	before := time.Now()
	tokA, exp := mint(h.a.Query)
	if d := time.UnixMilli(exp).Sub(before); d < 14*time.Minute || d > 16*time.Minute {
		t.Errorf("expiresAt is %s away, want the 15m of COLLECTOR_LIVE_TOKEN_TTL", d)
	}
	t.Run("valid", func(t *testing.T) {
		r := presence(tokA, "")
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if roster := rosterOf(r.json(t)); len(roster) != 1 || roster["a-sess"] == nil {
			t.Errorf("roster %v, want a-sess only", roster)
		}
		c := openSSE(t, h, "/api/v1/live/presence?token="+url.QueryEscape(tokA), nil)
		if c.res.StatusCode != 200 {
			t.Fatalf("presence stream by token: %d", c.res.StatusCode)
		}
		if snap := c.nextEvent("presence", 5*time.Second); snap["activeSessions"] != float64(1) {
			t.Errorf("presence event %v", snap)
		}
	})
	t.Run("expired", func(t *testing.T) {
		old := edge.LiveTokenAt(h.srv, h.a.Query, time.Now().Add(-time.Second))
		if r := presence(old, ""); r.status != 401 || !strings.Contains(string(r.body), "expired") {
			t.Errorf("expired token: %d %s", r.status, r.body)
		}
		if r := presence(edge.LiveTokenAt(h.srv, h.a.Query, time.Now().Add(time.Minute)), ""); r.status != 200 {
			t.Errorf("the same token unexpired: %d %s", r.status, r.body)
		}
	})
	t.Run("tampered", func(t *testing.T) {
		flip := func(tok string, i int) string {
			b := []byte(tok)
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			return string(b)
		}
		for _, tok := range []string{
			flip(tokA, 2),           // the project number
			flip(tokA, 10),          // the expiry
			flip(tokA, len(tokA)-5), // the signature
			tokA[:len(tokA)-1],      // short
			tokA + "A",              // long
			"garbage", "", "a.b.c",
		} {
			if r := presence(tok, ""); r.status != 401 {
				t.Errorf("token %q: %d %s", tok, r.status, r.body)
			}
		}
	})
	t.Run("other project's", func(t *testing.T) {
		tokB, _ := mint(h.b.Query)
		r := presence(tokB, "&projectId=a")
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if roster := rosterOf(r.json(t)); len(roster) != 1 || roster["b-sess"] == nil {
			t.Errorf("b's token, roster %v: want b's session only", roster)
		}
		if r := h.do("GET", "/api/v1/live/sessions/a-sess?token="+url.QueryEscape(tokB), nil, nil); r.status != 404 {
			t.Errorf("b's token following a's session: %d %s", r.status, r.body)
		}
		c := openSSE(t, h, "/api/v1/live/stream?token="+url.QueryEscape(tokB)+"&projectId=a", nil)
		c.next(5 * time.Second)
		mustIngest(t, h, h.a.Ingest, liveBatch("a-later", "lobby", 1))
		mustIngest(t, h, h.b.Ingest, liveBatch("b-later", "lobby", 1))
		if ev := c.nextEvent("event", 5*time.Second); ev["sessionId"] != "b-later" {
			t.Errorf("b's stream got %v", ev)
		}
	})
	t.Run("revoked key", func(t *testing.T) {
		_, err := h.store.Registry().RevokeKey("a", h.a.Query)
		if err != nil {
			t.Fatal(err)
		}
		if r := presence(tokA, ""); r.status != 401 || !strings.Contains(string(r.body), "revoked") {
			t.Errorf("token of a revoked key: %d %s", r.status, r.body)
		}
	})
}

// TestLivePresence: a session appears in its scene, follows it, and
// expires; session_end removes it at once; the roster carries no visitor.
func TestLivePresence(t *testing.T) {
	h := newHarness(t, func(c *core.Config) { c.LiveWindow = time.Second })
	mustIngest(t, h, h.a.Ingest, liveBatch("p-1", "lobby", 3))
	mustIngest(t, h, h.a.Ingest, liveBatch("p-2", "lobby", 1))
	mustIngest(t, h, h.b.Ingest, liveBatch("p-b", "lobby", 1))

	m := presenceJSON(t, h, h.a.Query, "")
	if m["activeSessions"] != float64(2) || m["activeVisitors"] != float64(1) {
		t.Errorf("counts %v: want 2 sessions of 1 visitor (one client)", m)
	}
	roster := rosterOf(m)
	e := roster["p-1"]
	if len(roster) != 2 || e == nil || e["sceneId"] != "lobby" || e["activity"] != "active" {
		t.Fatalf("roster %v", roster)
	}
	keys := []string{}
	for k := range e {
		keys = append(keys, k)
	}
	if len(keys) != 5 || e["startedAt"] == nil || e["lastSeen"] == nil {
		t.Errorf("roster entry has %v, want sessionId, sceneId, startedAt, lastSeen, activity", keys)
	}
	for _, bad := range []string{"visitor", "ip", "userAgent", "127.0.0.1", "Go-http-client"} {
		if strings.Contains(fmt.Sprint(m), bad) {
			t.Errorf("presence mentions %q: %v", bad, m)
		}
	}
	if sc := m["scenes"].([]any); len(sc) != 1 || sc[0].(map[string]any)["sceneId"] != "lobby" || sc[0].(map[string]any)["sessions"] != float64(2) {
		t.Errorf("scenes %v", sc)
	}

	// The session moves to another scene; another ends.
	mustIngest(t, h, h.a.Ingest, liveBatch("p-1", "hall", 1))
	mustIngest(t, h, h.a.Ingest, []byte(`{"events":[{"type":"session_end","projectId":"a","sessionId":"p-2","ts":5,"sdkVersion":"1","durationMs":10}]}`))
	roster = rosterOf(presenceJSON(t, h, h.a.Query, ""))
	if len(roster) != 1 || roster["p-1"]["sceneId"] != "hall" {
		t.Errorf("after the move and the end: %v", roster)
	}
	if got := rosterOf(presenceJSON(t, h, h.a.Query, "?scene=lobby")); len(got) != 0 {
		t.Errorf("scene=lobby: %v", got)
	}

	// It expires once the window has passed without a batch.
	waitFor(t, 10*time.Second, "expired", func() bool {
		return len(rosterOf(presenceJSON(t, h, h.a.Query, ""))) == 0
	})
	if m := presenceJSON(t, h, h.b.Query, ""); m["activeSessions"] != float64(0) {
		t.Errorf("b's session outlived the window: %v", m)
	}
}

// TestLiveHubFeed: a batch committed elsewhere (the fleet hub's) and handed
// to ObserveBatch shows in presence and on the stream.
func TestLiveHubFeed(t *testing.T) {
	h := newHarness(t, nil)
	c := openSSE(t, h, "/api/v1/live/stream", map[string]string{"x-api-key": h.a.Query})
	c.next(5 * time.Second)
	var b core.Batch
	b.ProjectID, b.ProjectNum = "a", h.store.Registry().Project("a").Num
	ev := `{"type":"custom","projectId":"a","sessionId":"hub-s","visitorId":"0123456789abcdef0123456789abcdef","ts":7,"sdkVersion":"1","sceneId":"atrium","name":"n"}`
	b.AppendEvent(core.TypeCustom, 7, []byte("hub-s"), []byte(ev))
	h.srv.ObserveBatch(&b)
	b.Reset() // the batch is reused at once: the live copy must not see it

	if got := c.nextEvent("event", 5*time.Second); got["sessionId"] != "hub-s" || got["sceneId"] != "atrium" {
		t.Errorf("stream: %v", got)
	}
	if roster := rosterOf(presenceJSON(t, h, h.a.Query, "")); roster["hub-s"]["sceneId"] != "atrium" {
		t.Errorf("presence: %v", roster)
	}
}

// TestLiveSlowReaderDropped: a client that stops reading is dropped once
// it is COLLECTOR_LIVE_BUFFER behind; every ingest meanwhile answers 200,
// and a reader that keeps up is not dropped.
func TestLiveSlowReaderDropped(t *testing.T) {
	h := newHarness(t, func(c *core.Config) { c.LiveBuffer = 256 << 10 })
	fast := openSSE(t, h, "/api/v1/live/stream", map[string]string{"x-api-key": h.a.Query})
	fast.next(5 * time.Second)

	// The slow client reads the answer's head, then nothing; its receive
	// buffer is small so that the kernel does not read for it for long.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	slow, err := d.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET /api/v1/live/stream HTTP/1.1\r\nHost: x\r\nx-api-key: %s\r\n\r\n", h.a.Query)
	head := make([]byte, 64)
	if _, err := io.ReadFull(slow, head); err != nil || !bytes.HasPrefix(head, []byte("HTTP/1.1 200")) {
		t.Fatalf("slow stream: %q %v", head, err)
	}
	waitFor(t, 5*time.Second, "two streams", func() bool { return edge.LiveStreams(h.srv) == 2 })

	// The fast reader drains in the background.
	var got atomic.Int64
	go func() {
		for f := range fast.frames {
			if f.event == "event" {
				got.Add(1)
			}
		}
	}()

	body := liveBatch("firehose", "lobby", 200)
	batches := 0
	for edge.LiveStreams(h.srv) == 2 {
		if batches == 3000 {
			t.Fatal("the reader that stopped reading was never dropped")
		}
		mustIngest(t, h, h.a.Ingest, body)
		batches++
	}
	mustIngest(t, h, h.a.Ingest, body) // and ingest goes on
	if n := edge.LiveStreams(h.srv); n != 1 {
		t.Fatalf("%d streams after the drop, want the fast one", n)
	}
	if !strings.Contains(h.metrics(), "uptimizr_live_dropped_total 1\n") {
		t.Error("uptimizr_live_dropped_total is not 1")
	}
	// The dropped connection was cut: reading it ends (what the kernel
	// still held comes first).
	slow.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, slow); err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the dropped stream was not closed: %v", err)
	}
	// The reader that kept up was offered every event.
	want := int64(200 * (batches + 1))
	waitFor(t, 20*time.Second, "all events at the fast reader", func() bool { return got.Load() >= want })
}

// TestLiveSessionTail: with retention on, a session's tail starts with its
// recent events and then follows it alone.
func TestLiveSessionTail(t *testing.T) {
	h := newHarness(t, func(c *core.Config) { c.RawRetention = true })
	mustIngest(t, h, h.a.Ingest, liveBatch("follow/me", "lobby", 2))
	c := openSSE(t, h, "/api/v1/live/sessions/follow%2Fme", map[string]string{"x-api-key": h.a.Query})
	if c.res.StatusCode != 200 {
		t.Fatalf("tail: %d", c.res.StatusCode)
	}
	for i := range 2 {
		if ev := c.nextEvent("event", 5*time.Second); ev["sessionId"] != "follow/me" || ev["ts"] != float64(1_700_000_000_000+i) || ev["visitorId"] == nil {
			t.Fatalf("backfill %d: %v", i, ev)
		}
	}
	mustIngest(t, h, h.a.Ingest, liveBatch("someone-else", "lobby", 1))
	mustIngest(t, h, h.a.Ingest, []byte(`{"events":[{"type":"custom","projectId":"a","sessionId":"follow/me","ts":1800000000000,"sdkVersion":"1","name":"later"}]}`))
	if ev := c.nextEvent("event", 5*time.Second); ev["sessionId"] != "follow/me" || ev["name"] != "later" {
		t.Errorf("tail: %v", ev)
	}
}

// TestLiveRoutesRefuse walks the live routes for 401, 403, 404, 405 and
// 400 answers.
func TestLiveRoutesRefuse(t *testing.T) {
	h := newHarness(t, func(c *core.Config) { c.RawRetention = true })
	mustIngest(t, h, h.b.Ingest, liveBatch("b-only", "lobby", 1))
	long := strings.Repeat("s", 129)
	cases := []struct {
		name, method, path string
		key                string // "" = none
		status             int
		want               string // in the error
	}{
		{"token no key", "POST", "/api/v1/live/token", "", 401, "missing API key"},
		{"token bad key", "POST", "/api/v1/live/token", "uzq_nope", 401, "unknown"},
		{"token ingest key", "POST", "/api/v1/live/token", "ingest", 403, "query"},
		{"token admin key", "POST", "/api/v1/live/token", "admin", 403, "query"},
		{"token GET", "GET", "/api/v1/live/token", "query", 405, "POST"},
		{"presence no key", "GET", "/api/v1/live/presence", "", 401, "x-api-key"},
		{"presence bad key", "GET", "/api/v1/live/presence", "uzq_nope", 401, "unknown"},
		{"presence bad token", "GET", "/api/v1/live/presence?token=xyz", "", 401, "live token"},
		{"presence ingest key", "GET", "/api/v1/live/presence", "ingest", 403, "query"},
		{"presence limit 0", "GET", "/api/v1/live/presence?limit=0", "query", 400, "limit"},
		{"presence limit 1001", "GET", "/api/v1/live/presence?limit=1001", "query", 400, "limit"},
		{"presence bad scene", "GET", "/api/v1/live/presence?scene=no%20spaces", "query", 400, "scene"},
		{"presence POST", "POST", "/api/v1/live/presence", "query", 405, "GET"},
		{"stream no key", "GET", "/api/v1/live/stream", "", 401, "x-api-key"},
		{"stream bad key", "GET", "/api/v1/live/stream", "uzq_nope", 401, "unknown"},
		{"stream bad token", "GET", "/api/v1/live/stream?token=", "", 401, "live token"},
		{"stream ingest key", "GET", "/api/v1/live/stream", "ingest", 403, "query"},
		{"stream admin key", "GET", "/api/v1/live/stream", "admin", 403, "query"},
		{"stream unknown type", "GET", "/api/v1/live/stream?types=custom,nope", "query", 400, "types"},
		{"stream types too long", "GET", "/api/v1/live/stream?types=" + strings.Repeat("custom,", 80), "query", 400, "types"},
		{"stream bad scene", "GET", "/api/v1/live/stream?scene=" + strings.Repeat("x", 65), "query", 400, "scene"},
		{"stream DELETE", "DELETE", "/api/v1/live/stream", "query", 405, "GET"},
		{"session no key", "GET", "/api/v1/live/sessions/b-only", "", 401, "x-api-key"},
		{"session bad key", "GET", "/api/v1/live/sessions/b-only", "uzq_nope", 401, "unknown"},
		{"session ingest key", "GET", "/api/v1/live/sessions/b-only", "ingest", 403, "query"},
		{"session of another project", "GET", "/api/v1/live/sessions/b-only", "query", 404, "session not found"},
		{"session unknown", "GET", "/api/v1/live/sessions/never-seen", "query", 404, "session not found"},
		{"session id too long", "GET", "/api/v1/live/sessions/" + long, "query", 400, "session id"},
		{"session empty id", "GET", "/api/v1/live/sessions/", "query", 404, "not found"},
		{"session with a tail", "GET", "/api/v1/live/sessions/b-only/x", "query", 404, "not found"},
		{"unknown live route", "GET", "/api/v1/live/other", "query", 404, "not found"},
	}
	keys := map[string]string{"query": h.a.Query, "ingest": h.a.Ingest, "admin": h.a.Admin}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := map[string]string{}
			if k, ok := keys[c.key]; ok {
				hdr["x-api-key"] = k
			} else if c.key != "" {
				hdr["x-api-key"] = c.key
			}
			r := h.do(c.method, c.path, nil, hdr)
			if r.status != c.status {
				t.Fatalf("%d %s, want %d", r.status, r.body, c.status)
			}
			if msg, _ := r.json(t)["error"].(string); !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not name %q", msg, c.want)
			}
		})
	}
	// The same session is b's own.
	c := openSSE(t, h, "/api/v1/live/sessions/b-only", map[string]string{"x-api-key": h.b.Query})
	if c.res.StatusCode != 200 {
		t.Errorf("b following its own session: %d", c.res.StatusCode)
	}

	off := newHarness(t, nil)
	if r := off.do("GET", "/api/v1/live/sessions/s", nil, map[string]string{"x-api-key": off.a.Query}); r.status != 403 ||
		!strings.Contains(string(r.body), "raw session retention is disabled") {
		t.Errorf("session tail with retention off: %d %s", r.status, r.body)
	}
}

// TestLiveSubscriberLimit: a project holds at most
// COLLECTOR_LIVE_MAX_SUBSCRIBERS streams; another project is not affected.
func TestLiveSubscriberLimit(t *testing.T) {
	h := newHarness(t, func(c *core.Config) { c.LiveMaxSubscribers = 2 })
	edge.SetLiveIntervals(h.srv, time.Minute, time.Minute, 20*time.Millisecond)
	first := openSSE(t, h, "/api/v1/live/presence", map[string]string{"x-api-key": h.a.Query})
	openSSE(t, h, "/api/v1/live/stream", map[string]string{"x-api-key": h.a.Query})
	r := h.do("GET", "/api/v1/live/stream", nil, map[string]string{"x-api-key": h.a.Query})
	if r.status != 429 || !strings.Contains(string(r.body), "COLLECTOR_LIVE_MAX_SUBSCRIBERS") {
		t.Fatalf("third stream: %d %s", r.status, r.body)
	}
	if b := openSSE(t, h, "/api/v1/live/stream", map[string]string{"x-api-key": h.b.Query}); b.res.StatusCode != 200 {
		t.Errorf("b's stream: %d", b.res.StatusCode)
	}
	first.close()
	waitFor(t, 10*time.Second, "a place given back", func() bool { return edge.LiveStreams(h.srv) == 2 })
	if c := openSSE(t, h, "/api/v1/live/stream", map[string]string{"x-api-key": h.a.Query}); c.res.StatusCode != 200 {
		t.Errorf("after one closed: %d", c.res.StatusCode)
	}
}

// TestLiveStreamEndsOnRevocation: an open stream ends at its next heartbeat
// once its key is revoked.
func TestLiveStreamEndsOnRevocation(t *testing.T) {
	h := newHarness(t, nil)
	edge.SetLiveIntervals(h.srv, 50*time.Millisecond, time.Minute, time.Minute)
	c := openSSE(t, h, "/api/v1/live/stream", map[string]string{"x-api-key": h.a.Query})
	if f, _ := c.next(5 * time.Second); f.comment != "connected" {
		t.Fatalf("first frame %+v", f)
	}
	if f, _ := c.next(5 * time.Second); f.comment != "ping" {
		t.Fatalf("no heartbeat: %+v", f)
	}
	if _, err := h.store.Registry().RevokeKey("a", h.a.Query); err != nil {
		t.Fatal(err)
	}
	c.nextEvent("error", 5*time.Second)
	if _, ok := <-c.frames; ok {
		t.Error("the stream went on after its key was revoked")
	}
	waitFor(t, 10*time.Second, "unsubscribed", func() bool { return edge.LiveStreams(h.srv) == 0 })
}

// TestLiveShutdownEndsStreams: the drain ends open streams, so shutdown
// completes instead of waiting for them until its deadline.
func TestLiveShutdownEndsStreams(t *testing.T) {
	h := newHarness(t, nil)
	ev := openSSE(t, h, "/api/v1/live/stream", map[string]string{"x-api-key": h.a.Query})
	pr := openSSE(t, h, "/api/v1/live/presence", map[string]string{"x-api-key": h.a.Query})
	ev.next(5 * time.Second)
	pr.nextEvent("presence", 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with live streams open: %v", err)
	}
	for _, c := range []*sseClient{ev, pr} {
		for f := range c.frames {
			if f.event == "event" {
				t.Errorf("unexpected frame %+v", f)
			}
		}
	}
	if n := edge.LiveStreams(h.srv); n != 0 {
		t.Errorf("%d streams open after shutdown", n)
	}
}

// TestLiveStreamEnvelopeOfFixtures: with raw retention off, the stream
// carries the envelope of each event of the fixtures (every channel on),
// read from the canonical JSON as stored.
func TestLiveStreamEnvelopeOfFixtures(t *testing.T) {
	h := newHarness(t, nil)
	r := h.do("PUT", "/api/v1/channels", []byte(`{"meshVisibility":true,"boundingBox":true,"hoverDwell":true,"resourceSample":true,"gaze":true,"captureErrors":true}`),
		map[string]string{"x-api-key": h.a.Admin, "content-type": "application/json"})
	if r.status != 200 {
		t.Fatalf("channels: %d %s", r.status, r.body)
	}
	c := openSSE(t, h, "/api/v1/live/stream", map[string]string{"x-api-key": h.a.Query})
	c.next(5 * time.Second)
	for _, fx := range loadFixtures(t) {
		mustIngest(t, h, h.a.Ingest, fx.body)
	}
	stored := h.storedEvents("a")
	types := map[string]bool{}
	for _, st := range stored {
		ev := c.nextEvent("event", 5*time.Second)
		want := map[string]any{"type": st.JSON["type"], "projectId": "a", "sessionId": st.Session, "ts": float64(st.TS), "sceneId": st.JSON["sceneId"]}
		if fmt.Sprint(ev) != fmt.Sprint(want) {
			t.Fatalf("on the stream %v, stored %v", ev, want)
		}
		types[ev["type"].(string)] = true
	}
	t.Logf("%d events of %d types", len(stored), len(types))
}
