package edge_test

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/edge"
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
			if r := h.upload("spinner", `{"mode":"spin-on-marker"}`, "drop", testGuest(t)); r.status != 201 && r.status != 200 {
				t.Fatalf("upload: %d %s", r.status, r.body)
			}
			spin := []byte(`{"events":[{"type":"custom","projectId":"a","sessionId":"s","ts":1,"sdkVersion":"1","name":"spin-now"}]}`)
			calm := []byte(`{"events":[{"type":"custom","projectId":"b","sessionId":"s","ts":1,"sdkVersion":"1","name":"calm"}]}`)
			hdr := func(key string) map[string]string {
				return map[string]string{"x-api-key": key, "content-type": "application/json"}
			}
			var stop atomic.Bool
			var aSent, aOK atomic.Int64
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for !stop.Load() {
						r := h.do("POST", "/api/v1/collect", spin, hdr(h.a.Ingest))
						aSent.Add(1)
						if r.status == 200 {
							aOK.Add(1)
						} else if r.status != 503 {
							t.Errorf("a: %d %s", r.status, r.body)
						}
					}
				}()
			}
			aNum, bNum := projectNum(t, h, "a"), projectNum(t, h, "b")
			for edge.AdmissionWaits(h.srv, aNum) == 0 { // a saturates its share
				if t.Failed() {
					return
				}
			}
			n := c.n
			for i := 0; i < n; i++ {
				r := h.do("POST", "/api/v1/collect", calm, hdr(h.b.Ingest))
				var out struct{ Accepted int }
				if r.status != 200 || json.Unmarshal(r.body, &out) != nil || out.Accepted != 1 {
					t.Fatalf("b's request %d beside the spinner: %d %s", i, r.status, r.body)
				}
			}
			bWaits := edge.AdmissionWaits(h.srv, bNum)
			stop.Store(true)
			wg.Wait()
			t.Logf("b: %d requests, %d waited for a slot; a: %d sent, %d answered 200, %d admissions waited",
				n, bWaits, aSent.Load(), aOK.Load(), edge.AdmissionWaits(h.srv, aNum))
			if (bWaits > 0) != c.bWaits {
				t.Fatalf("%d of b's %d admissions waited", bWaits, n)
			}
		})
	}
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
