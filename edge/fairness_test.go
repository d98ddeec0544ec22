package edge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/edge"
	"github.com/uptimizr/edge/plugins"
	"github.com/uptimizr/edge/storage"
)

// TestFairAdmissionBesideSpinningProject: project a's plugin spins on every
// batch until its deadline (500 ms here), and eight clients keep a's
// batches coming, more than the node's four ingest slots. Project b sends
// its batches one at a time meanwhile. b's requests never wait for a slot
// (a holds at most its share, half of them), and every one is answered
// 200 with its event kept; a's requests do wait, behind a's own. With the
// share set to every slot, as admission was before (arrival order only),
// b's requests wait behind a's spinning batches: the count the test reads
// is able to see it.
func TestFairAdmissionBesideSpinningProject(t *testing.T) {
	for _, c := range []struct {
		name       string
		perProject int
		bWaits     bool
		n          int // b's requests
	}{{"half the slots", 0, false, 20}, {"every slot (before)", 4, true, 2}} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, func(cfg *core.Config) {
				cfg.MaxConcurrentIngest = 4
				cfg.MaxProjectIngest = c.perProject
			})
			if r := h.upload("spinner", "", "drop", spinGuest(t)); r.status != 201 && r.status != 200 {
				t.Fatalf("upload: %d %s", r.status, r.body)
			}
			spin := spinBody("a")
			calm := []byte(`{"events":[{"type":"custom","projectId":"b","sessionId":"s","ts":1,"sdkVersion":"1","name":"calm"}]}`)
			var stop atomic.Bool
			var aSent, aOK atomic.Int64
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for !stop.Load() {
						// Not h.do: it ends the test, which a goroutine
						// other than the test's must not.
						code, body, err := postCollect(h.base, h.a.Ingest, spin)
						aSent.Add(1)
						switch {
						case err != nil:
							t.Errorf("a: %v", err)
							return
						case code == 200:
							aOK.Add(1)
						case code != 503:
							t.Errorf("a: %d %s", code, body)
						}
					}
				}()
			}
			aNum, bNum := projectNum(t, h, "a"), projectNum(t, h, "b")
			for edge.AdmissionWaits(h.srv, aNum) == 0 { // a saturates its share
				if t.Failed() {
					stop.Store(true)
					wg.Wait()
					return
				}
				time.Sleep(time.Millisecond)
			}
			n := c.n
			for i := 0; i < n; i++ {
				code, body, err := postCollect(h.base, h.b.Ingest, calm)
				var out struct{ Accepted int }
				if err != nil || code != 200 || json.Unmarshal(body, &out) != nil || out.Accepted != 1 {
					t.Errorf("b's request %d beside the spinner: %d %s %v", i, code, body, err)
					break
				}
			}
			bWaits := edge.AdmissionWaits(h.srv, bNum)
			stop.Store(true)
			wg.Wait()
			if t.Failed() {
				return
			}
			t.Logf("b: %d requests, %d waited for a slot; a: %d sent, %d answered 200, %d admissions waited",
				n, bWaits, aSent.Load(), aOK.Load(), edge.AdmissionWaits(h.srv, aNum))
			if (bWaits > 0) != c.bWaits {
				t.Fatalf("%d of b's %d admissions waited", bWaits, n)
			}
		})
	}
}

// postCollect sends one batch with an ingest key; it does not end the
// test, so goroutines may call it.
func postCollect(base, key string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest("POST", base+"/api/v1/collect", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("x-api-key", key)
	req.Header.Set("content-type", "application/json")
	res, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// spinGuest is the committed plugin that spins on any batch of more than
// 16 events (plugins/testdata/spin).
func spinGuest(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../plugins/testdata/spin/spin.wasm")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// spinBody is a batch of 20 events of project id: spin's plugin spins on it.
func spinBody(id string) []byte {
	var b strings.Builder
	b.WriteString(`{"events":[`)
	for i := 0; i < 20; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"custom","projectId":%q,"sessionId":"s","ts":%d,"sdkVersion":"1","name":"spin"}`, id, i+1)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func projectNum(t *testing.T, h *harness, id string) uint32 {
	t.Helper()
	for _, p := range h.store.Registry().Projects() {
		if p.ID == id {
			return p.Num
		}
	}
	t.Fatalf("no project %s", id)
	return 0
}

// TestPluginBusyIs503: a batch that cannot get its project's plugin turn
// in time (another batch of the project spins in its plugin) is answered
// 503 with Retry-After and a message of its own; it is neither stored nor
// quarantined, and the same batch sent again later is accepted.
func TestPluginBusyIs503(t *testing.T) {
	cfg := core.DefaultConfig()
	cfg.VisitorHashSecret = "test-secret-0123456789abcdef"
	cfg.DataDir = t.TempDir()
	cfg.RateLimitMax, cfg.IngestRateLimitMax = 0, 0
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := storage.Open(storage.Options{Dir: cfg.DataDir, MinFreeDisk: -1, DisableAggregation: true})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := st.Registry().CreateProject("a")
	if err != nil {
		t.Fatal(err)
	}
	pnum := st.Registry().Projects()[0].Num
	host, err := plugins.NewHost(context.Background(), plugins.Options{CallTimeout: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close(context.Background()) })
	filter := plugins.NewFilter(st.Quarantine(), nil)
	filter.SetProjectConcurrency(1, 20*time.Millisecond)
	mgr := plugins.NewManager(host, st.Plugins(), filter, nil)
	if _, err := mgr.Upload(context.Background(), pnum, "a", "spinner", spinGuest(t), nil, "drop"); err != nil {
		t.Fatal(err)
	}
	hasher, _ := core.NewVisitorHasher([]byte(cfg.VisitorHashSecret))
	sink := &recordingSink{inner: st.Sink(), byNum: map[uint32][]storedEvent{}}
	base := serveLoopback(t, &cfg, st, edge.Deps{Keys: st.Registry(), Sink: sink, Hasher: hasher, Filter: filter})
	post := func(name string) (int, string, string) {
		body := `{"events":[{"type":"custom","projectId":"a","sessionId":"s","ts":1,"sdkVersion":"1","name":"` + name + `"}]}`
		if name == "spin" {
			body = string(spinBody("a"))
		}
		req, _ := http.NewRequest("POST", base+"/api/v1/collect", strings.NewReader(body))
		req.Header.Set("x-api-key", keys.Ingest)
		req.Header.Set("content-type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Retry-After"), string(b)
	}
	spun := make(chan int)
	go func() { code, _, _ := post("spin"); spun <- code }()
	accepted := 0
	for filter.Stats().Refusals == 0 {
		code, retry, msg := post("calm")
		if code == 200 {
			accepted++ // before the spinner got its turn
			continue
		}
		if code != 503 || retry != "1" || !strings.Contains(msg, "plugin capacity busy") || !strings.Contains(msg, "nothing of this batch was stored or quarantined") {
			t.Fatalf("a batch behind its project's spinning plugin: %d, Retry-After %q, %s", code, retry, msg)
		}
	}
	if code := <-spun; code != 200 {
		t.Fatalf("the spinning batch (policy drop): %d", code)
	}
	if code, _, msg := post("calm"); code != 200 {
		t.Fatalf("sent again once the spinner is done: %d %s", code, msg)
	}
	sink.mu.Lock()
	got := len(sink.byNum[pnum])
	sink.mu.Unlock()
	if got != accepted+1 {
		t.Fatalf("%d events stored, want %d (the batches answered 200)", got, accepted+1)
	}
	if _, total, err := st.Quarantine().List(pnum, 10); err != nil || total != 0 {
		t.Fatalf("%d batches quarantined (%v)", total, err)
	}
}
