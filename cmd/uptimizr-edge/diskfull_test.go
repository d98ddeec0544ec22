package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestDiskFullServer runs the real binary, raw retention on, with its data
// dir on a 64 MiB tmpfs, under load from four clients, with the free-space
// floor at 8 MiB and with it off. The disk is filled at once by another
// file, then freed; then filled by the server's own growth, then given room.
// The process must never die (Badger maps its files: a store into a page
// the filesystem cannot back would be SIGBUS); every refusal is a 503 with
// Retry-After; writes are taken again once there is room; the server shuts
// down cleanly; and after a restart every acknowledged request's session is
// there whole — listed with all its events and replayed raw — while no
// refused one left anything.
func TestDiskFullServer(t *testing.T) {
	if testing.Short() {
		t.Skip("disk-full test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	for _, c := range []struct{ name, floor string }{{"floor-8MiB", "8388608"}, {"floor-off", "-1"}} {
		t.Run(c.name, func(t *testing.T) { diskFullServer(t, c.floor) })
	}
}

func diskFullServer(t *testing.T, floor string) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	defer exec.Command("umount", "-l", dir).Run()
	spare := filepath.Join(dir, "spare")
	allocate(t, spare, 16<<20)

	env := []string{"VISITOR_HASH_SECRET=disk-full-test-secret-0123456789", "COLLECTOR_INGEST_RATE_LIMIT_MAX=0",
		"COLLECTOR_RATE_LIMIT_MAX=0", "ENABLE_RAW_SESSION_RETENTION=true", "COLLECTOR_MIN_FREE_DISK=" + floor}
	out, stderr, code := run(t, env, "project", "create", "full", "--data-dir", dir)
	if code != 0 {
		t.Fatal(stderr)
	}
	var created struct {
		Keys struct{ Ingest, Query string }
	}
	json.Unmarshal([]byte(out), &created)
	srv := start(t, env, "serve", "--data-dir", dir)

	const perBatch = 200
	var (
		mu              sync.Mutex
		acked, refused  = map[string]bool{}, map[string]bool{}
		next            atomic.Int64
		okN, refusedN   atomic.Int64
		stop            = make(chan struct{})
		wg              sync.WaitGroup
		noRetryAfter    atomic.Int64
		serverGone      atomic.Bool
		unexpectedCodes sync.Map
	)
	batch := func(sess string) string {
		var ev []string
		for i := 0; i < perBatch; i++ {
			ev = append(ev, fmt.Sprintf(`{"type":"custom","projectId":"x","sessionId":%q,"ts":%d,"sdkVersion":"1","name":"e%d","props":{"pad":"%x"}}`,
				sess, 1795892750000+int64(i), i, uint64(time.Now().UnixNano())^uint64(i)*0x9e3779b97f4a7c15))
		}
		return `{"events":[` + strings.Join(ev, ",") + `]}`
	}
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				sess := fmt.Sprintf("full-%06d", next.Add(1))
				req, _ := http.NewRequest("POST", srv.base+"/api/v1/collect", strings.NewReader(batch(sess)))
				req.Header.Set("x-api-key", created.Keys.Ingest)
				res, err := hc.Do(req)
				if err != nil {
					serverGone.Store(true)
					return
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				mu.Lock()
				switch {
				case res.StatusCode == 200 && strings.Contains(string(body), fmt.Sprintf(`"accepted":%d`, perBatch)):
					acked[sess] = true
					okN.Add(1)
				case res.StatusCode == 503:
					refused[sess] = true
					refusedN.Add(1)
					if res.Header.Get("Retry-After") == "" {
						noRetryAfter.Add(1)
					}
				default:
					unexpectedCodes.Store(res.StatusCode, string(body))
				}
				mu.Unlock()
				if res.StatusCode != 200 {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
	ended := false
	endLoad := func() {
		if !ended {
			ended = true
			close(stop)
			wg.Wait()
		}
	}
	defer endLoad()
	t0 := time.Now()
	wait := func(d time.Duration, what string, cond func() bool) {
		t.Helper()
		defer func() { t.Logf("%5.1fs %s", time.Since(t0).Seconds(), what) }()
		deadline := time.Now().Add(d)
		for !cond() {
			if serverGone.Load() {
				t.Fatalf("the server went away while waiting until %s", what)
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %v waiting until %s", d, what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	ready := func() int {
		res, err := http.Get(srv.base + "/ready")
		if err != nil {
			t.Fatalf("the server does not answer: %v", err)
		}
		res.Body.Close()
		return res.StatusCode
	}

	// Filled at once by another file, then freed.
	wait(30*time.Second, "requests are acknowledged", func() bool { return okN.Load() > 100 })
	filler := filepath.Join(dir, "filler")
	fillUp(t, filler)
	n := refusedN.Load()
	wait(20*time.Second, "requests are refused on the full disk", func() bool { return refusedN.Load() > n+20 })
	if st := ready(); st != 503 {
		t.Fatalf("/ready answers %d on a full disk, want 503", st)
	}
	time.Sleep(500 * time.Millisecond)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	n = okN.Load()
	wait(30*time.Second, "requests are acknowledged once the filler is gone", func() bool { return okN.Load() > n+50 })

	// Filled by the server's own growth, then given room.
	n = refusedN.Load()
	wait(180*time.Second, "the server's growth fills the disk", func() bool { return refusedN.Load() > n+20 })
	if err := os.Remove(spare); err != nil {
		t.Fatal(err)
	}
	n = okN.Load()
	wait(30*time.Second, "requests are acknowledged once there is room", func() bool { return okN.Load() > n+10 })
	endLoad()
	if serverGone.Load() {
		t.Fatal("the server went away")
	}
	unexpectedCodes.Range(func(k, v any) bool {
		t.Errorf("answer %v: %v", k, v)
		return true
	})
	if k := noRetryAfter.Load(); k > 0 {
		t.Errorf("%d 503 answers without Retry-After", k)
	}
	t.Logf("%d requests acknowledged, %d refused", okN.Load(), refusedN.Load())

	srv.cmd.Process.Signal(syscall.SIGTERM)
	if err := srv.cmd.Wait(); err != nil {
		t.Fatalf("shutdown on a nearly full disk: %v", err)
	}

	srv = start(t, env, "serve", "--data-dir", dir)
	defer srv.cmd.Process.Signal(syscall.SIGTERM)
	// Every acknowledged session whole, every refused one absent (the
	// aggregator folds within a second of the start).
	var bad []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		bad = bad[:0]
		for sess := range acked {
			if e, r := sessionEvents(t, srv.base, created.Keys.Query, sess); e != perBatch || r != perBatch {
				bad = append(bad, fmt.Sprintf("acknowledged %s: %d events listed, %d replayed", sess, e, r))
			}
			if len(bad) > 10 {
				break
			}
		}
		if len(bad) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for sess := range refused {
		if e, r := sessionEvents(t, srv.base, created.Keys.Query, sess); e != 0 || r != 0 {
			bad = append(bad, fmt.Sprintf("refused %s: %d events listed, %d replayed", sess, e, r))
		}
		if len(bad) > 10 {
			break
		}
	}
	t.Logf("%5.1fs checked", time.Since(t0).Seconds())
	if len(bad) > 0 {
		t.Fatalf("after the restart:\n%s", strings.Join(bad, "\n"))
	}
}

// sessionEvents returns a session's event count as listed (aggregates) and
// as replayed (raw).
func sessionEvents(t *testing.T, base, key, sess string) (listed, replayed int) {
	t.Helper()
	get := func(path string) (*http.Response, error) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("x-api-key", key)
		return http.DefaultClient.Do(req)
	}
	res, err := get("/api/v1/sessions?limit=1&session=" + sess)
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct{ Events int }
	json.NewDecoder(res.Body).Decode(&rows)
	res.Body.Close()
	if len(rows) > 0 {
		listed = rows[0].Events
	}
	res, err = get("/api/v1/sessions/" + sess + "/events?format=ndjson")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode == 200 {
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if len(sc.Bytes()) > 0 {
				replayed++
			}
		}
	}
	return listed, replayed
}

func allocate(t *testing.T, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, n); err != nil {
		t.Fatal(err)
	}
}

// fillUp allocates everything left free on path's filesystem, as fast as it
// can, as another process filling the disk would.
func fillUp(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var off int64
	for _, step := range []int64{1 << 20, 4 << 10} {
		for unix.Fallocate(int(f.Fd()), 0, off, step) == nil {
			off += step
		}
	}
}
