package edge_test

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/dgraph-io/badger/v4"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/edge"
	"github.com/uptimizr/edge/plugins"
	"github.com/uptimizr/edge/storage"
)

const fixturesDir = "../testdata/fixtures"

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness runs the real server on loopback over a real Badger store, with two
// projects "a" and "b".
type harness struct {
	t     testing.TB
	cfg   core.Config
	dir   string
	store *storage.Store
	srv   *edge.Server
	base  string
	a, b  storage.NewKeys
	logs  *syncBuffer

	host    *plugins.Host
	plugins *plugins.Manager
	sink    *recordingSink
	hc      *http.Client
	// degraded, when set, is what Deps.Degraded says besides the store's.
	degraded atomic.Pointer[string]
}

// newHarness runs the server with the aggregator off, so that tests of the
// write path see the ingest log as the requests left it.
func newHarness(t *testing.T, mutate func(*core.Config)) *harness {
	h := startHarness(t, mutate, false)
	t.Cleanup(h.close)
	return h
}

// newReadHarness runs the server with the aggregator on, for the read API.
func newReadHarness(t *testing.T, mutate func(*core.Config)) *harness {
	h := startHarness(t, mutate, true)
	t.Cleanup(h.close)
	return h
}

// close stops the server and the store.
func (h *harness) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h.srv.Shutdown(ctx)
	h.store.Close()
	h.host.Close(ctx)
}

// testQuarantine joins the quarantine store and the plugin manager, as main
// does.
type testQuarantine struct {
	q    *storage.QuarantineStore
	mgr  *plugins.Manager
	sink core.Sink
}

func (a testQuarantine) List(pnum uint32, limit int) ([]core.QuarantineEntry, int, error) {
	return a.q.List(pnum, limit)
}
func (a testQuarantine) Delete(pnum uint32, id string) error { return a.q.Delete(pnum, id) }
func (a testQuarantine) Replay(ctx context.Context, p core.Project, id string) (any, error) {
	return a.mgr.Replay(ctx, a.q, a.sink, p, id)
}

func startHarness(t testing.TB, mutate func(*core.Config), aggregate bool) *harness {
	t.Helper()
	cfg := core.DefaultConfig()
	cfg.VisitorHashSecret = "test-secret-0123456789abcdef"
	cfg.DataDir = t.TempDir()
	cfg.RateLimitMax, cfg.IngestRateLimitMax = 0, 0
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, cfg: cfg, dir: cfg.DataDir, logs: &syncBuffer{}, hc: &http.Client{Timeout: 20 * time.Second}}
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st, err := storage.Open(storage.Options{Dir: cfg.DataDir, Retention: cfg.RawRetention, DisableAggregation: !aggregate,
		RetentionTTL: time.Duration(cfg.RawRetentionDays) * 24 * time.Hour, MinFreeDisk: cfg.MinFreeDisk, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	h.store = st
	if h.a, err = st.Registry().CreateProject("a"); err != nil {
		t.Fatal(err)
	}
	if h.b, err = st.Registry().CreateProject("b"); err != nil {
		t.Fatal(err)
	}
	hasher, err := core.NewVisitorHasher([]byte(cfg.VisitorHashSecret))
	if err != nil {
		t.Fatal(err)
	}
	h.host, err = plugins.NewHost(context.Background(), plugins.Options{CacheDir: filepath.Join(os.TempDir(), "uptimizr-edge-test-wasm-cache"),
		CallTimeout: 500 * time.Millisecond, MemoryLimitPages: 512, MaxModuleSize: cfg.PluginModuleMiB << 20})
	if err != nil {
		t.Fatal(err)
	}
	filter := plugins.NewFilter(st.Quarantine(), log)
	filter.SetCapture(storage.Capture())
	filter.SetProjectConcurrency(plugins.DefaultProjectConcurrency(), 10*time.Second)
	h.plugins = plugins.NewManager(h.host, st.Plugins(), filter, log)
	h.sink = &recordingSink{inner: st.Sink(), byNum: map[uint32][]storedEvent{}}
	h.srv, err = edge.New(&cfg, edge.Deps{Keys: st.Registry(), Sink: h.sink, Capture: storage.Capture(), Ready: st.Writable, Hasher: hasher, Logger: log,
		Raw:        st.Raw(),
		Scenes:     st.Scenes(),
		Aggregates: st.Reader(),
		Filter:     h.plugins.Filter(),
		Plugins:    h.plugins,
		Quarantine: testQuarantine{st.Quarantine(), h.plugins, h.sink},
		Degraded: func() string {
			if why := h.degraded.Load(); why != nil {
				return *why
			}
			return st.Degraded()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	st.Committer().OnCommit = h.srv.ObserveGroupCommit
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.base = "http://" + ln.Addr().String()
	go h.srv.Serve(ln)
	return h
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

func (h *harness) do(method, path string, body []byte, hdr map[string]string) resp {
	h.t.Helper()
	req, err := http.NewRequest(method, h.base+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range hdr {
		if strings.EqualFold(k, "host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	res, err := h.hc.Do(req)
	if err != nil && (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)) {
		// The server answered before the body was all sent (a refusal as
		// soon as the request is known to be too large) and closed the
		// connection while net/http was still writing: send it again on a
		// connection of its own, reading the answer while writing.
		return h.doRaw(req, body)
	}
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

// doRaw sends req with body on a new connection, writing in the background,
// and reads the answer, however early it comes.
func (h *harness) doRaw(req *http.Request, body []byte) resp {
	h.t.Helper()
	c, err := net.Dial("tcp", req.URL.Host)
	if err != nil {
		h.t.Fatal(err)
	}
	defer c.Close()
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	go req.Write(c) // its error is the early close itself
	res, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

func (h *harness) collect(key string, body []byte, hdr map[string]string) resp {
	h.t.Helper()
	m := map[string]string{"x-api-key": key, "content-type": "application/json"}
	for k, v := range hdr {
		m[k] = v
	}
	if key == "" {
		delete(m, "x-api-key")
	}
	return h.do("POST", "/api/v1/collect", body, m)
}

// storedEvent is an event committed to the store.
type storedEvent struct {
	Type    core.EventType
	TS      int64
	Session string
	JSON    map[string]any
	Raw     string
}

// recordingSink commits through the store's sink and, once a commit has
// succeeded, keeps a copy of every event it committed: what the server
// handed to storage, read back by storedEvents. (The ingest log holds only
// what the aggregator reads; storage's own tests check it.)
type recordingSink struct {
	inner core.Sink
	mu    sync.Mutex
	byNum map[uint32][]storedEvent
	errs  []string
}

func (r *recordingSink) Commit(ctx context.Context, b *core.Batch) error {
	if err := r.inner.Commit(ctx, b); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range b.Events {
		var m map[string]any
		if err := json.Unmarshal(b.JSON(i), &m); err != nil {
			r.errs = append(r.errs, err.Error()+": "+string(b.JSON(i)))
		}
		e := &b.Events[i]
		r.byNum[b.ProjectNum] = append(r.byNum[b.ProjectNum], storedEvent{e.Type, e.TS, string(b.Session(i)), m, string(b.JSON(i))})
	}
	return nil
}

// storedEvents returns every event committed for the project, in commit
// order.
func (h *harness) storedEvents(project string) []storedEvent {
	h.t.Helper()
	p := h.store.Registry().Project(project)
	h.sink.mu.Lock()
	defer h.sink.mu.Unlock()
	for _, e := range h.sink.errs {
		h.t.Errorf("stored event is not JSON: %s", e)
	}
	return append([]storedEvent(nil), h.sink.byNum[p.Num]...)
}

// logRecords counts the project's records in the ingest log.
func (h *harness) logRecords(project string) int {
	p := h.store.Registry().Project(project)
	return len(h.store.ProjectLog(p.Num))
}

func (h *harness) rawChunkCount(project string) int {
	p := h.store.Registry().Project(project)
	n := 0
	h.store.DB().View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: binary.BigEndian.AppendUint32([]byte{'r'}, p.Num)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	return n
}

func (h *harness) metrics() string {
	return string(h.do("GET", "/metrics", nil, nil).body)
}

type fixture struct {
	name   string
	body   []byte
	events []map[string]any
}

func loadFixtures(t testing.TB) []fixture {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(fixturesDir, "*.json"))
	if len(paths) == 0 {
		t.Fatal("fixtures not found at " + fixturesDir)
	}
	var out []fixture
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Events []map[string]any `json:"events"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		out = append(out, fixture{filepath.Base(p), b, doc.Events})
	}
	return out
}

// expectDefault counts what default channels do to a fixture.
func expectDefault(events []map[string]any) (accepted, filtered int) {
	for _, e := range events {
		switch e["type"] {
		case "mesh_visibility", "hover_dwell", "resource_sample", "runtime_error":
			filtered++
		default:
			accepted++
		}
	}
	return
}

func compress(t testing.TB, enc string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch enc {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "deflate":
		w = zlib.NewWriter(&buf)
	case "deflate-raw":
		w, _ = flate.NewWriter(&buf, 5)
	case "zstd":
		w, _ = zstd.NewWriter(&buf)
	case "br":
		w = brotli.NewWriterLevel(&buf, 5)
	case "identity", "":
		return b
	default:
		t.Fatalf("unknown encoding %s", enc)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
