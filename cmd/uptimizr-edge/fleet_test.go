package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/fleet/fleettest"
)

// getJSON reads a read-API route of a node with a query key into v.
func getJSON(t *testing.T, base, query, route string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/v1/"+route, nil)
	req.Header.Set("x-api-key", query)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("%s: %d %s", route, res.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s %s: %v", route, b, err)
	}
}

// streamMsgs returns how many records the fleet's stream on the NATS
// server at addr holds (0 before it exists).
func streamMsgs(t *testing.T, addr string) uint64 {
	t.Helper()
	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(t.Context(), "UPTIMIZR_EVENTS")
	if err != nil {
		return 0
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// waitEngineUp waits until the node at base has reached its stream engine.
func waitEngineUp(t *testing.T, base string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); gaugeValue(t, base, "uptimizr_forward_engine_down") != 0; {
		if time.Now().After(deadline) {
			t.Fatal("the node did not reach the stream engine")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// eventCount returns the project's event count on a node, by the read API.
func eventCount(t *testing.T, base, query string) int {
	t.Helper()
	var rows []struct{ Count int }
	getJSON(t, base, query, "event-counts", &rows)
	n := 0
	for _, r := range rows {
		n += r.Count
	}
	return n
}

// tsBatch is a batch of n events of session sess, from ts from on, a
// millisecond apart.
func tsBatch(sess string, n int, from int64) string {
	var ev []string
	for i := range n {
		ev = append(ev, fmt.Sprintf(`{"type":"custom","projectId":"x","sessionId":%q,"ts":%d,"sdkVersion":"1","name":"e%d"}`, sess, from+int64(i), i))
	}
	return `{"events":[` + strings.Join(ev, ",") + `]}`
}

// sessionRows returns the sessions/:id rows of a node's read API.
func sessionRows(t *testing.T, base, query, session string) []core.SessionRow {
	t.Helper()
	var rows []core.SessionRow
	getJSON(t, base, query, "sessions?session="+session, &rows)
	var out []core.SessionRow
	for _, r := range rows {
		if r.SessionID == session {
			out = append(out, r)
		}
	}
	return out
}

func fleetBatch(sess string, n int) string { return tsBatch(sess, n, 1795892750000) }

// TestTwoEdgesAndAHub: two nodes forward what they commit to a real
// nats-server (embedded); the hub, which consumes the stream, counts the
// sum of what the nodes acknowledged, once, with the NATS server stopped
// for a while in the middle (the nodes keep answering 200 and send the
// records kept once it is back) and a node restarted.
func TestTwoEdgesAndAHub(t *testing.T) {
	if testing.Short() {
		t.Skip("fleet test skipped in -short mode")
	}
	t.Run("jetstream", func(t *testing.T) {
		ns := fleettest.StartNATS(t)
		twoEdgesAndAHub(t, "nats://"+ns.Addr(), ns)
	})
	t.Run("kafka", func(t *testing.T) {
		k := fleettest.StartKafka(t)
		twoEdgesAndAHub(t, "kafka://"+k.Addr(), k)
	})
}

// engineServer is an engine's server the test stops and starts.
type engineServer interface {
	Stop()
	Start()
}

func twoEdgesAndAHub(t *testing.T, url string, ns engineServer) {
	common := []string{"VISITOR_HASH_SECRET=fleet-test-secret-0123456789", "COLLECTOR_INGEST_RATE_LIMIT_MAX=0", "COLLECTOR_RATE_LIMIT_MAX=0"}
	var edges []*server
	var keys, queries []string
	var dirs []string
	for i := range 2 {
		dir := t.TempDir()
		k := createProject(t, nil, dir, "shop").Keys
		ingest := k.Ingest
		queries = append(queries, k.Query)
		env := append(common, "COLLECTOR_FORWARD_URL="+url, fmt.Sprintf("COLLECTOR_NODE_ID=edge-%d", i))
		edges = append(edges, start(t, env, "serve", "--data-dir", dir))
		keys = append(keys, ingest)
		dirs = append(dirs, dir)
	}
	hubDir := t.TempDir()
	hubQuery := createProject(t, nil, hubDir, "shop").Keys.Query
	hub := start(t, append(common, "COLLECTOR_HUB_SOURCE="+url), "hub", "--data-dir", hubDir)

	acked := 0
	send := func(e int, sess string, n int) {
		t.Helper()
		code, body := post(t, edges[e].base+"/api/v1/collect", keys[e], fleetBatch(sess, n))
		if code != 200 || !strings.Contains(body, fmt.Sprintf(`"accepted":%d`, n)) {
			t.Fatalf("edge %d: %d %s", e, code, body)
		}
		acked += n
	}
	waitHub := func(want int) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		got := 0
		for time.Now().Before(deadline) {
			if got = eventCount(t, hub.base, hubQuery); got == want {
				return
			}
			if got > want {
				t.Fatalf("the hub counts %d events, more than the %d the edges acknowledged", got, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("the hub counts %d events after 60 s, want %d", got, want)
	}
	for i := range 20 {
		send(i%2, fmt.Sprintf("s-%d", i), 10+i)
	}
	waitHub(acked)

	// One session whose batches land on both nodes: the hub has it once,
	// with every event, from its first event to its last, and the same
	// visitor id each node gave it (the same VISITOR_HASH_SECRET).
	now := time.Now().UnixMilli()
	for e, from := range []int64{now - 60_000, now - 30_000} {
		code, body := post(t, edges[e].base+"/api/v1/collect", keys[e], tsBatch("split", 5+e, from))
		if code != 200 {
			t.Fatalf("edge %d: %d %s", e, code, body)
		}
		acked += 5 + e
	}
	waitHub(acked)
	var nodeVisitor []string
	for e := range edges {
		rows := sessionRows(t, edges[e].base, queries[e], "split")
		if len(rows) != 1 || rows[0].Events != int64(5+e) {
			t.Fatalf("edge %d: sessions %+v", e, rows)
		}
		nodeVisitor = append(nodeVisitor, rows[0].VisitorID)
	}
	if nodeVisitor[0] != nodeVisitor[1] || nodeVisitor[0] == "" {
		t.Fatalf("the nodes gave one visitor the ids %q and %q", nodeVisitor[0], nodeVisitor[1])
	}
	rows := sessionRows(t, hub.base, hubQuery, "split")
	wantStart := time.UnixMilli(now - 60_000).UTC().Format(time.RFC3339Nano)
	wantEnd := time.UnixMilli(now - 30_000 + 5).UTC().Format(time.RFC3339Nano)
	if len(rows) != 1 || rows[0].Events != 11 || rows[0].VisitorID != nodeVisitor[0] {
		t.Fatalf("the hub's sessions %+v, want one of 11 events by visitor %s", rows, nodeVisitor[0])
	}
	if st, _ := time.Parse(time.RFC3339Nano, rows[0].StartedAt); !st.Equal(time.UnixMilli(now - 60_000)) {
		t.Errorf("the hub's session starts at %s, want %s", rows[0].StartedAt, wantStart)
	}
	if en, _ := time.Parse(time.RFC3339Nano, rows[0].EndedAt); !en.Equal(time.UnixMilli(now - 30_000 + 5)) {
		t.Errorf("the hub's session ends at %s, want %s", rows[0].EndedAt, wantEnd)
	}

	// NATS down: the edges still answer 200, and keep the records.
	ns.Stop()
	for i := range 10 {
		send(i%2, fmt.Sprintf("down-%d", i), 25)
	}
	ns.Start()
	waitHub(acked)

	// A node restarted (SIGTERM) goes on from its committed position.
	edges[1].cmd.Process.Signal(syscall.SIGTERM)
	edges[1].cmd.Wait()
	edges[1] = start(t, append(common, "COLLECTOR_FORWARD_URL="+url, "COLLECTOR_NODE_ID=edge-1"), "serve", "--data-dir", dirs[1])
	for i := range 6 {
		send(1, fmt.Sprintf("after-%d", i), 7)
	}
	waitHub(acked)

	// kill -9 of a node while it holds a backlog (NATS down): after its
	// restart, with NATS back, its records reach the hub once.
	ns.Stop()
	for i := range 8 {
		send(0, fmt.Sprintf("backlog-%d", i), 30)
	}
	edges[0].cmd.Process.Signal(syscall.SIGKILL)
	edges[0].cmd.Wait()
	ns.Start()
	edges[0] = start(t, append(common, "COLLECTOR_FORWARD_URL="+url, "COLLECTOR_NODE_ID=edge-0"), "serve", "--data-dir", dirs[0])
	waitHub(acked)

	// kill -9 of the hub while records come in: after its restart it
	// counts each once.
	for i := range 10 {
		send(i%2, fmt.Sprintf("hubkill-%d", i), 40)
		if i == 4 {
			hub.cmd.Process.Signal(syscall.SIGKILL)
			hub.cmd.Wait()
		}
	}
	hub = start(t, append(common, "COLLECTOR_HUB_SOURCE="+url), "hub", "--data-dir", hubDir)
	waitHub(acked)
	// And nothing more comes.
	time.Sleep(time.Second)
	if got := eventCount(t, hub.base, hubQuery); got != acked {
		t.Fatalf("the hub counts %d events, want %d", got, acked)
	}
	// The consumer's lag, on /metrics, is down to nothing.
	deadline := time.Now().Add(30 * time.Second)
	for {
		v := gaugeValue(t, hub.base, "uptimizr_hub_consumer_pending_messages")
		if v == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("uptimizr_hub_consumer_pending_messages is %v 30 s after the hub had every record", v)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// gaugeValue reads an unlabelled sample from a node's /metrics.
func gaugeValue(t *testing.T, base, name string) float64 {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %q", name, v)
			}
			return f
		}
	}
	t.Fatalf("%s not on /metrics", name)
	return 0
}

// TestForwardBacklogFull: with the engine unreachable, a node takes
// batches until its forward backlog reaches COLLECTOR_FORWARD_MAX_BACKLOG,
// then answers 503 with Retry-After; once the engine is back every batch
// it acknowledged reaches the engine, and it takes batches again.
func TestForwardBacklogFull(t *testing.T) {
	if testing.Short() {
		t.Skip("fleet test skipped in -short mode")
	}
	ns := fleettest.StartNATS(t)
	ns.Stop()
	url := "nats://" + ns.Addr()
	dir := t.TempDir()
	ingest := createProject(t, nil, dir, "shop").Keys.Ingest
	env := []string{"VISITOR_HASH_SECRET=fleet-test-secret-0123456789", "COLLECTOR_INGEST_RATE_LIMIT_MAX=0", "COLLECTOR_RATE_LIMIT_MAX=0",
		"COLLECTOR_FORWARD_URL=" + url, "COLLECTOR_NODE_ID=edge-full", "COLLECTOR_FORWARD_MAX_BACKLOG=1MiB"}
	s := start(t, env, "serve", "--data-dir", dir)
	acked, refused := 0, 0
	for i := 0; i < 2000 && refused == 0; i++ {
		req, _ := http.NewRequest("POST", s.base+"/api/v1/collect", strings.NewReader(fleetBatch(fmt.Sprintf("full-%d", i), 200)))
		req.Header.Set("x-api-key", ingest)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		switch res.StatusCode {
		case 200:
			acked += 200
		case 503:
			if res.Header.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			refused++
		default:
			t.Fatalf("status %d", res.StatusCode)
		}
	}
	if refused == 0 || acked == 0 {
		t.Fatalf("acked %d events, %d refusals: want the bound reached", acked, refused)
	}
	res, err := http.Get(s.base + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), "degraded") {
		t.Fatalf("/ready with the engine down: %d %s", res.StatusCode, b)
	}
	ns.Start()
	// Everything acknowledged reaches the stream, once: one message per
	// accepted batch.
	deadline := time.Now().Add(60 * time.Second)
	for {
		msgs := streamMsgs(t, ns.Addr())
		if msgs == uint64(acked/200) {
			break
		}
		if msgs > uint64(acked/200) || time.Now().After(deadline) {
			t.Fatalf("the stream holds %d records, the node acknowledged %d batches", msgs, acked/200)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The forwarder commits its position within a fraction of a second of
	// the acknowledgements; then the node takes batches again.
	for deadline := time.Now().Add(10 * time.Second); ; {
		code, body := post(t, s.base+"/api/v1/collect", ingest, fleetBatch("after", 5))
		if code == 200 {
			break
		}
		if code != 503 || time.Now().After(deadline) {
			t.Fatalf("after the engine came back: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStopForwardsTheBacklog: a node stopped with SIGTERM while it still
// forwards a backlog (built while the engine was down) first sends what its
// log holds: once it has exited, the stream has every batch it accepted.
func TestStopForwardsTheBacklog(t *testing.T) {
	if testing.Short() {
		t.Skip("fleet test skipped in -short mode")
	}
	ns := fleettest.StartNATS(t)
	dir := t.TempDir()
	ingest := createProject(t, nil, dir, "shop").Keys.Ingest
	env := []string{"VISITOR_HASH_SECRET=fleet-test-secret-0123456789", "COLLECTOR_INGEST_RATE_LIMIT_MAX=0", "COLLECTOR_RATE_LIMIT_MAX=0",
		"COLLECTOR_FORWARD_URL=nats://" + ns.Addr(), "COLLECTOR_NODE_ID=edge-stop", "COLLECTOR_SHUTDOWN_TIMEOUT=30s"}
	s := start(t, env, "serve", "--data-dir", dir)
	// The node makes the stream once the engine answers.
	waitEngineUp(t, s.base)
	ns.Stop()
	const batches = 2000
	for i := range batches {
		if code, body := post(t, s.base+"/api/v1/collect", ingest, fleetBatch(fmt.Sprintf("stop-%d", i), 200)); code != 200 {
			t.Fatalf("batch %d: %d %s", i, code, body)
		}
	}
	ns.Start()
	waitEngineUp(t, s.base)
	left := gaugeValue(t, s.base, "uptimizr_forward_backlog_records")
	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("the node's exit: %v", err)
	}
	if msgs := streamMsgs(t, ns.Addr()); msgs != batches {
		t.Fatalf("after the node stopped the stream holds %d records of its %d (%v were left to send at the SIGTERM)", msgs, batches, left)
	}
	t.Logf("%v records were left to send at the SIGTERM", left)
}

// TestBatchOverTheEnginesMessageSize: with a NATS server whose max_payload
// is 64 KiB, a batch whose record would not fit in one message is refused
// with 413 (not accepted and then never sent); a smaller one is taken and
// reaches the stream.
func TestBatchOverTheEnginesMessageSize(t *testing.T) {
	if testing.Short() {
		t.Skip("fleet test skipped in -short mode")
	}
	ns := fleettest.StartNATSWith(t, func(o *natsserver.Options) { o.MaxPayload = 64 << 10 })
	dir := t.TempDir()
	ingest := createProject(t, nil, dir, "shop").Keys.Ingest
	env := []string{"VISITOR_HASH_SECRET=fleet-test-secret-0123456789", "COLLECTOR_INGEST_RATE_LIMIT_MAX=0", "COLLECTOR_RATE_LIMIT_MAX=0",
		"COLLECTOR_FORWARD_URL=nats://" + ns.Addr(), "COLLECTOR_NODE_ID=edge-size"}
	s := start(t, env, "serve", "--data-dir", dir)
	waitEngineUp(t, s.base)
	// 400 events of about 200 bytes each in their stored form: over 64 KiB.
	code, body := post(t, s.base+"/api/v1/collect", ingest, fleetBatch("big", 400))
	if code != 413 || !strings.Contains(body, "send smaller batches") {
		t.Fatalf("a batch over the engine's message size: %d %s", code, body)
	}
	code, body = post(t, s.base+"/api/v1/collect", ingest, fleetBatch("small", 20))
	if code != 200 {
		t.Fatalf("a small batch: %d %s", code, body)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		msgs := streamMsgs(t, ns.Addr())
		if msgs == 1 {
			break
		}
		if msgs > 1 || time.Now().After(deadline) {
			t.Fatalf("the stream holds %d records, want the small batch's one", msgs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
