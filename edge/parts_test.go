package edge_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/edge"
	"github.com/uptimizr/edge/storage"
)

// TestRoutesWithoutStores: each part answers 501 on a route whose store it
// was not given, after authenticating the request, and ingest still works.
func TestRoutesWithoutStores(t *testing.T) {
	cfg := core.DefaultConfig()
	cfg.VisitorHashSecret = "test-secret-0123456789abcdef"
	cfg.DataDir = t.TempDir()
	cfg.RawRetention = true
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
	hasher, err := core.NewVisitorHasher([]byte(cfg.VisitorHashSecret))
	if err != nil {
		t.Fatal(err)
	}
	base := serveLoopback(t, &cfg, st, edge.Deps{Keys: st.Registry(), Sink: st.Sink(), Hasher: hasher})
	hc := &http.Client{Timeout: 20 * time.Second}
	do := func(method, path, key string, body []byte) int {
		t.Helper()
		req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			req.Header.Set("x-api-key", key)
		}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	for _, c := range []struct {
		method, path, key string
		want              int
	}{
		{"GET", "/api/v1/event-counts", keys.Query, 501},
		{"GET", "/api/v1/event-counts", "", 401},
		{"GET", "/api/v1/sessions/s1/meta", keys.Query, 501},
		{"GET", "/api/v1/sessions/s1/events", keys.Query, 501},
		{"GET", "/api/v1/scenes/s1/representation", keys.Query, 501},
		{"PUT", "/api/v1/scenes/s1/representation", keys.Query, 501},
		{"DELETE", "/api/v1/scenes/s1/representation", keys.Query, 501},
		{"GET", "/api/v1/scene-representations", keys.Query, 501},
		{"GET", "/api/v1/plugins", keys.Admin, 501},
		{"GET", "/api/v1/plugins", keys.Query, 403},
		{"GET", "/api/v1/quarantine", keys.Admin, 501},
		{"GET", "/api/v1/keys", keys.Admin, 200},
		{"GET", "/api/v1/channels", keys.Query, 200},
	} {
		if got := do(c.method, c.path, c.key, nil); got != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, got, c.want)
		}
	}
	ev := `{"events":[{"type":"scene_change","projectId":"a","sessionId":"s1","ts":1700000000000,"sdkVersion":"1.0.0"}]}`
	if got := do("POST", "/api/v1/collect", keys.Ingest, []byte(ev)); got != 200 {
		t.Errorf("collect: %d", got)
	}
}
