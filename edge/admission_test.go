package edge_test

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/edge"
	"github.com/uptimizr/edge/storage"
)

// slowFilter holds every batch for a while and records how many it held at
// once.
type slowFilter struct {
	now, most atomic.Int32
	hold      time.Duration
}

func (f *slowFilter) Apply(_ context.Context, _ *core.Batch) error {
	n := f.now.Add(1)
	for {
		m := f.most.Load()
		if n <= m || f.most.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(f.hold)
	f.now.Add(-1)
	return nil
}

// TestIngestAdmission: with COLLECTOR_MAX_CONCURRENT_INGEST=2, twelve
// requests sent at once are processed (here: held by the filter) two at a
// time, and every one of them is answered 200 and committed.
func TestIngestAdmission(t *testing.T) {
	cfg := core.DefaultConfig()
	cfg.VisitorHashSecret = "test-secret-0123456789abcdef"
	cfg.DataDir = t.TempDir()
	cfg.RateLimitMax, cfg.IngestRateLimitMax = 0, 0
	cfg.MaxConcurrentIngest = 2
	cfg.MaxProjectIngest = 2 // one project may take both
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := storage.Open(storage.Options{Dir: cfg.DataDir, MinFreeDisk: -1})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := st.Registry().CreateProject("a")
	if err != nil {
		t.Fatal(err)
	}
	hasher, _ := core.NewVisitorHasher([]byte(cfg.VisitorHashSecret))
	filter := &slowFilter{hold: 30 * time.Millisecond}
	base := serveLoopback(t, &cfg, st, edge.Deps{Keys: st.Registry(), Sink: st.Sink(), Hasher: hasher, Filter: filter})
	body := []byte(`{"events":[{"type":"scene_change","projectId":"a","sessionId":"s","ts":1,"sdkVersion":"1","to":"x"}]}`)
	const n = 12
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, _ := http.NewRequest("POST", base+"/api/v1/collect", bytes.NewReader(body))
			req.Header.Set("x-api-key", keys.Ingest)
			req.Header.Set("content-type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			codes[i] = res.StatusCode
		}(i)
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("request %d: %d", i, c)
		}
	}
	if most := filter.most.Load(); most != 2 {
		t.Fatalf("%d requests decoded at once, want 2 (the limit, reached with 12 sent together)", most)
	}
	if err := st.Aggregator().Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := st.Aggregator().Stats(); st.Events != n {
		t.Fatalf("%d events folded, want %d", st.Events, n)
	}
}
