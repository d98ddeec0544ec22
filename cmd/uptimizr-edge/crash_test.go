package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestKill9UnderLoadCountsEveryAcknowledgedEventOnce runs the real binary,
// loads it from several clients, kills it with SIGKILL at arbitrary moments
// (mid-commit, mid-aggregation), restarts it, and at the end compares the
// aggregates with what the clients saw acknowledged. Each request carries one
// fresh session of a fixed number of events, so "exactly once" is checked
// per request: an acknowledged session has exactly that many events, one
// whose answer was lost has either none or all of them.
func TestKill9UnderLoadCountsEveryAcknowledgedEventOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	dir := t.TempDir()
	env := []string{"VISITOR_HASH_SECRET=crash-test-secret-0123456789", "COLLECTOR_INGEST_RATE_LIMIT_MAX=0", "COLLECTOR_RATE_LIMIT_MAX=0"}
	out, stderr, code := run(t, env, "project", "create", "crash", "--data-dir", dir)
	if code != 0 {
		t.Fatal(stderr)
	}
	var created struct {
		Keys struct{ Ingest, Query string }
	}
	json.Unmarshal([]byte(out), &created)

	const perBatch, clients, perRound = 400, 4, 220
	type outcome struct{ acked, lost bool }
	var mu sync.Mutex
	results := map[string]*outcome{}
	next, roundEnd, ackedTotal := 0, 0, 0
	batch := func(sess string) string {
		var ev []string
		for i := 0; i < perBatch; i++ {
			ev = append(ev, fmt.Sprintf(`{"type":"custom","projectId":"x","sessionId":%q,"ts":%d,"sdkVersion":"1","name":"e%d"}`, sess, 1795892750000+int64(i), i))
		}
		return `{"events":[` + strings.Join(ev, ",") + `]}`
	}
	load := func(base string, stop <-chan struct{}, wg *sync.WaitGroup) {
		defer wg.Done()
		hc := &http.Client{Timeout: 5 * time.Second}
		for {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			if next >= roundEnd {
				mu.Unlock()
				return
			}
			sess := fmt.Sprintf("crash-%04d", next)
			next++
			o := &outcome{}
			results[sess] = o
			mu.Unlock()
			req, _ := http.NewRequest("POST", base+"/api/v1/collect", strings.NewReader(batch(sess)))
			req.Header.Set("x-api-key", created.Keys.Ingest)
			res, err := hc.Do(req)
			if err != nil {
				mu.Lock()
				o.lost = true
				mu.Unlock()
				return // the server is gone: this client stops until the restart
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			mu.Lock()
			if res.StatusCode == 200 && strings.Contains(string(body), fmt.Sprintf(`"accepted":%d`, perBatch)) {
				o.acked = true
				ackedTotal++
			} else {
				o.lost = true
			}
			mu.Unlock()
		}
	}
	kills := 0
	for round := 0; round < 4; round++ {
		s := start(t, env, "serve", "--data-dir", dir)
		mu.Lock()
		roundEnd += perRound
		killAt := ackedTotal + 40 + 50*round // mid-load, a different moment each round
		mu.Unlock()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go load(s.base, stop, &wg)
		}
		if round < 3 {
			for waited := 0; ; waited++ {
				mu.Lock()
				reached := ackedTotal >= killAt
				mu.Unlock()
				if reached || waited > 2000 {
					break
				}
				time.Sleep(time.Millisecond)
			}
			s.cmd.Process.Signal(syscall.SIGKILL)
			s.cmd.Wait()
			kills++
			close(stop)
			wg.Wait()
			continue
		}
		close(stop)
		wg.Wait()
		// Final round: let the aggregator catch up, then compare.
		var sessions []struct {
			SessionID string `json:"session_id"`
			Events    int64
		}
		// The aggregator folds within about half a second; wait until every
		// acknowledged session is listed (or the deadline passes).
		deadline := time.Now().Add(20 * time.Second)
		for {
			sessions = nil
			req, _ := http.NewRequest("GET", s.base+"/api/v1/sessions?limit=1000", nil)
			req.Header.Set("x-api-key", created.Keys.Query)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			json.NewDecoder(res.Body).Decode(&sessions)
			res.Body.Close()
			listed := map[string]bool{}
			for _, r := range sessions {
				listed[r.SessionID] = true
			}
			missing := 0
			for sess, o := range results {
				if o.acked && !listed[sess] {
					missing++
				}
			}
			if missing == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		got := map[string]int64{}
		for _, r := range sessions {
			got[r.SessionID] = r.Events
		}
		var ackedN, lostStored, lostAbsent int
		for sess, o := range results {
			n, ok := got[sess]
			switch {
			case o.acked:
				ackedN++
				if n != perBatch {
					t.Errorf("acknowledged session %s has %d events, want exactly %d", sess, n, perBatch)
				}
			case ok && n != perBatch:
				t.Errorf("unacknowledged session %s has %d events: a batch must be all or nothing", sess, n)
			case ok:
				lostStored++
			default:
				lostAbsent++
			}
			delete(got, sess)
		}
		for sess := range got {
			t.Errorf("session %s stored but never sent", sess)
		}
		t.Logf("%d kills; %d sessions acknowledged and counted once; of the unanswered, %d stored whole, %d absent",
			kills, ackedN, lostStored, lostAbsent)
		if ackedN == 0 || kills != 3 {
			t.Fatalf("the test did not exercise anything: acked %d kills %d", ackedN, kills)
		}
		s.cmd.Process.Signal(syscall.SIGTERM)
		s.cmd.Wait()
	}
}
