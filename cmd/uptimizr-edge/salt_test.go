package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/uptimizr/edge/core"
)

func parseSeedJSON(t *testing.T, s string) core.DaySeed {
	t.Helper()
	var j seedJSON
	if err := json.Unmarshal([]byte(s), &j); err != nil {
		t.Fatalf("not a seed: %q", s)
	}
	var d core.DaySeed
	day, err := core.ParseDay(j.Day)
	if err != nil {
		t.Fatal(err)
	}
	d.Day = day
	if err := d.ParseSeed([]byte(j.Seed)); err != nil {
		t.Fatal(err)
	}
	return d
}

// syncBuf is a buffer written by a child process and read by the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

// startLogged is start with stdout and stderr kept.
func startLogged(t *testing.T, env []string, args ...string) (*server, *syncBuf) {
	t.Helper()
	return startLoggedAddr(t, env, fmt.Sprintf("127.0.0.1:%d", freePort(t)), args...)
}

// startLoggedAddr is startLogged on addr.
func startLoggedAddr(t *testing.T, env []string, addr string, args ...string) (*server, *syncBuf) {
	t.Helper()
	_, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command(binPath, append(args, "--addr", addr)...)
	cmd.Env = append(os.Environ(), env...)
	logs := &syncBuf{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	s := &server{cmd: cmd, stdout: &bytes.Buffer{}, base: "http://127.0.0.1:" + port}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(s.base + "/ready"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return s, logs
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server did not become ready:\n%s", logs.Bytes())
	return nil, nil
}

type keysJSON struct {
	Keys struct{ Ingest, Query, Admin string }
}

func createProject(t *testing.T, env []string, dir, id string) keysJSON {
	t.Helper()
	out, errOut, code := run(t, env, "project", "create", id, "--data-dir", dir)
	var k keysJSON
	if code != 0 || json.Unmarshal([]byte(out), &k) != nil {
		t.Fatalf("project create %s: %d %s %s", id, code, out, errOut)
	}
	return k
}

// sessionVisitor posts one event of session sid with a fixed User-Agent and
// returns the visitor id the node gave it (waiting for the aggregator).
func sessionVisitor(t *testing.T, base string, k keysJSON, sid string) string {
	t.Helper()
	body := `{"events":[{"type":"scene_change","projectId":"x","sessionId":"` + sid + `","ts":1000,"sdkVersion":"1"}]}`
	req, _ := http.NewRequest("POST", base+"/api/v1/collect", strings.NewReader(body))
	req.Header.Set("x-api-key", k.Keys.Ingest)
	req.Header.Set("User-Agent", "salt-test-agent/1.0")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("collect: %d %s", res.StatusCode, b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", base+"/api/v1/sessions/"+sid+"/meta", nil)
		req.Header.Set("x-api-key", k.Keys.Query)
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			var m struct {
				VisitorID string `json:"visitor_id"`
			}
			if res.StatusCode == 200 && json.Unmarshal(b, &m) == nil && m.VisitorID != "" {
				return m.VisitorID
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("session %s never showed a visitor id", sid)
	return ""
}

// expectedVisitor is what a node with seed s gives the test's requests.
func expectedVisitor(s core.DaySeed, project string) string {
	h := core.NewSeededVisitorHasher(&s, nil, nil)
	var dst [32]byte
	h.Hash(&dst, project, mustAddr("127.0.0.1"), []byte("salt-test-agent/1.0"), time.Unix(s.Day*86400+1, 0))
	return string(dst[:])
}

// TestSaltInitExportImportAcrossNodes: the first node makes a seed, another
// takes it, and both give one visitor the same id in one project and
// unrelated ids in two projects. Earlier days are never exported.
func TestSaltInitExportImportAcrossNodes(t *testing.T) {
	env := []string{"VISITOR_HASH_SECRET="}
	dirA, dirB, dirC := t.TempDir(), t.TempDir(), t.TempDir()
	out, errOut, code := run(t, env, "salt", "init", "--data-dir", dirA)
	if code != 0 || !strings.Contains(errOut, "shown only now") {
		t.Fatalf("salt init: %d %s %s", code, out, errOut)
	}
	seed := parseSeedJSON(t, out)
	today := core.UTCDay(time.Now())
	if seed.Day != today {
		t.Fatalf("salt init made a seed for day %d, today is %d", seed.Day, today)
	}
	if _, errOut, code := run(t, env, "salt", "init", "--data-dir", dirA); code == 0 || !strings.Contains(errOut, "already holds a visitor seed") {
		t.Fatalf("second salt init: %d %s", code, errOut)
	}
	exp, _, code := run(t, env, "salt", "export", "--data-dir", dirA)
	if code != 0 || parseSeedJSON(t, exp) != seed {
		t.Fatalf("salt export of today differs from what init printed: %s", exp)
	}
	yesterday := core.DayString(today - 1)
	if _, errOut, code := run(t, env, "salt", "export", "--day", yesterday, "--data-dir", dirA); code == 0 || !strings.Contains(errOut, "before today") {
		t.Fatalf("export of yesterday: %d %s", code, errOut)
	}
	later, _, code := run(t, env, "salt", "export", "--day", core.DayString(today+3), "--data-dir", dirA)
	want := seed
	want.AdvanceTo(today + 3)
	if code != 0 || parseSeedJSON(t, later) != want {
		t.Fatalf("export of today+3: %d %s", code, later)
	}
	// A node with no seed cannot start from a later day's seed alone.
	if _, errOut, code := runIn(t, env, later, "salt", "import", "--data-dir", dirC); code == 0 || !strings.Contains(errOut, "no seed for today") {
		t.Fatalf("import of a later day on an empty node: %d %s", code, errOut)
	}
	if out, errOut, code := runIn(t, env, exp, "salt", "import", "--data-dir", dirB); code != 0 || !strings.Contains(out, `"applied":"now"`) {
		t.Fatalf("import: %d %s %s", code, out, errOut)
	}
	// Serving needs a seed or the secret.
	if _, errOut, code := run(t, env, "serve", "--data-dir", dirC); code == 0 || !strings.Contains(errOut, "salt init") {
		t.Fatalf("serve without a seed: %d %s", code, errOut)
	}

	kA := createProject(t, env, dirA, "shop")
	kA2 := createProject(t, env, dirA, "blog")
	kB := createProject(t, env, dirB, "shop")
	a := start(t, env, "serve", "--data-dir", dirA)
	b := start(t, env, "serve", "--data-dir", dirB)
	idA := sessionVisitor(t, a.base, kA, "sa")
	idB := sessionVisitor(t, b.base, kB, "sb")
	idBlog := sessionVisitor(t, a.base, kA2, "sc")
	if idA != idB {
		t.Fatalf("one visitor, one project, two nodes: %s and %s", idA, idB)
	}
	if idA == idBlog {
		t.Fatal("one visitor has the same id in two projects")
	}
	if e := expectedVisitor(seed, "shop"); idA != e {
		t.Fatalf("node's visitor id %s, the ratchet gives %s", idA, e)
	}
	// While the node runs, the CLI goes through its control socket: the
	// same export, and a re-import of the same seed changes nothing.
	exp2, errOut, code := run(t, env, "salt", "export", "--data-dir", dirA)
	if code != 0 || parseSeedJSON(t, exp2) != seed {
		t.Fatalf("export from a running node: %d %s %s", code, exp2, errOut)
	}
	if out, _, code := runIn(t, env, exp, "salt", "import", "--data-dir", dirA); code != 0 || !strings.Contains(out, `"applied":"already"`) {
		t.Fatalf("re-import on a running node: %d %s", code, out)
	}
	other := core.DaySeed{Day: today}
	other.Seed[0] = 7
	otherJSON, _ := json.Marshal(seedOut(&other))
	if _, errOut, code := runIn(t, env, string(otherJSON), "salt", "import", "--data-dir", dirA); code == 0 || !strings.Contains(errOut, "--force") {
		t.Fatalf("import of another seed without --force: %d %s", code, errOut)
	}
	if _, errOut, code := runIn(t, env, string(otherJSON), "salt", "import", "--force", "--data-dir", dirA); code != 0 {
		t.Fatalf("import --force on a running node: %d %s", code, errOut)
	}
	if id := sessionVisitor(t, a.base, kA, "sd"); id != expectedVisitor(other, "shop") {
		t.Fatalf("after a forced re-key the running node gives %s, want %s", id, expectedVisitor(other, "shop"))
	}
}

// TestVisitorSecretIsTheMigrationPath: a node on VISITOR_HASH_SECRET keeps the
// ratcheted seed in its data dir, so that once the secret is removed it goes
// on with the same visitor ids; a secret that disagrees with the seed is
// refused.
func TestVisitorSecretIsTheMigrationPath(t *testing.T) {
	dir := t.TempDir()
	secret := "migration-secret-0123456789"
	env := []string{"VISITOR_HASH_SECRET=" + secret}
	k := createProject(t, env, dir, "shop")
	s, logs := startLogged(t, env, "serve", "--data-dir", dir)
	id1 := sessionVisitor(t, s.base, k, "m1")
	want := core.SeedFromSecret([]byte(secret))
	want.AdvanceTo(core.UTCDay(time.Now()))
	if id1 != expectedVisitor(want, "shop") {
		t.Fatal("the secret's node does not follow the ratchet from day 0")
	}
	if !bytes.Contains(logs.Bytes(), []byte("forward secrecy")) {
		t.Fatalf("no warning that the secret defeats forward secrecy:\n%s", logs.Bytes())
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
	// The secret removed: same ids from the seed file.
	s2 := start(t, []string{"VISITOR_HASH_SECRET="}, "serve", "--data-dir", dir)
	if id := sessionVisitor(t, s2.base, k, "m2"); id != id1 {
		t.Fatalf("without the secret the node gives %s, with it %s", id, id1)
	}
	s2.cmd.Process.Signal(syscall.SIGTERM)
	s2.cmd.Wait()
	if _, errOut, code := run(t, []string{"VISITOR_HASH_SECRET=another-secret-0123456789"}, "serve", "--data-dir", dir); code == 0 || !strings.Contains(errOut, "disagree") {
		t.Fatalf("a secret that disagrees with the seed: %d %s", code, errOut)
	}
}

// TestForwardSecrecyAfterTheDayTurns is the ratchet's claim: once the UTC day
// has turned, nothing in the data dir, the process's memory or its logs
// lets anyone recompute the previous day's salt. The node runs on a clock
// that starts seconds before midnight; the test knows the day's seed (it
// provisioned it) and looks for it, and for the salt derived from it, raw and
// in hex. As a control, the same scan must find the new day's salt.
func TestForwardSecrecyAfterTheDayTurns(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a day turn")
	}
	dir := t.TempDir()
	day0 := core.UTCDay(time.Date(2031, 3, 9, 0, 0, 0, 0, time.UTC))
	clockStart := time.Unix((day0+1)*86400, 0).Add(-3 * time.Second).UTC()
	env := []string{"VISITOR_HASH_SECRET=", "COLLECTOR_CLOCK_START=" + clockStart.Format(time.RFC3339Nano),
		"COLLECTOR_LOG_LEVEL=debug", "ENABLE_RAW_SESSION_RETENTION=true"}
	seed := core.DaySeed{Day: day0}
	for i := range seed.Seed {
		seed.Seed[i] = byte(0xa5 ^ i*13)
	}
	seedText, _ := json.Marshal(seedOut(&seed))
	if out, errOut, code := runIn(t, env, string(seedText), "salt", "import", "--data-dir", dir); code != 0 {
		t.Fatalf("import: %d %s %s", code, out, errOut)
	}
	k := createProject(t, env, dir, "shop")
	s, logs := startLogged(t, env, "serve", "--data-dir", dir)

	before := sessionVisitor(t, s.base, k, "before")
	if before != expectedVisitor(seed, "shop") {
		t.Fatal("the node does not use the imported seed on its day")
	}
	// Keep requests going across midnight, on several connections, so
	// request goroutines hash with both days' salts.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"events":[{"type":"scene_change","projectId":"x","sessionId":"g%d-%d","ts":1000,"sdkVersion":"1"}]}`, g, i)
				req, _ := http.NewRequest("POST", s.base+"/api/v1/collect", strings.NewReader(body))
				req.Header.Set("x-api-key", k.Keys.Ingest)
				if res, err := http.DefaultClient.Do(req); err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
				time.Sleep(5 * time.Millisecond)
			}
		}(g)
	}
	next := seed
	next.Next()
	deadline := time.Now().Add(15 * time.Second)
	for !bytes.Contains(logs.Bytes(), []byte("visitor salt rotated")) {
		if time.Now().After(deadline) {
			t.Fatalf("the day never turned:\n%s", logs.Bytes())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // requests on the new day
	close(stop)
	wg.Wait()
	after := sessionVisitor(t, s.base, k, "after")
	if after == before || after != expectedVisitor(next, "shop") {
		t.Fatal("after midnight the node does not use the next day's seed")
	}

	oldSalt, newSalt := seed.Salt(), next.Salt()
	needles := map[string][]byte{
		"yesterday's seed":       seed.Seed[:],
		"yesterday's salt":       oldSalt[:],
		"yesterday's seed (hex)": []byte(hex.EncodeToString(seed.Seed[:])),
		"yesterday's salt (hex)": []byte(hex.EncodeToString(oldSalt[:])),
	}
	// The data dir (the seed file, Badger, the ingest log, everything).
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&os.ModeSocket != 0 {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		for what, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("%s is in %s", what, p)
			}
		}
		return nil
	})
	// The logs.
	for what, n := range needles {
		if bytes.Contains(logs.Bytes(), n) {
			t.Errorf("%s is in the logs", what)
		}
	}
	// The process's memory.
	mem, err := readProcessMemory(s.cmd.Process.Pid)
	if err != nil {
		t.Skipf("cannot read the node's memory here (%v); the data dir and the logs were checked", err)
	}
	if !bytes.Contains(mem, newSalt[:]) {
		t.Fatalf("control: today's salt not found in %d bytes of the node's memory; the scan sees nothing", len(mem))
	}
	for what, n := range needles {
		if i := bytes.Index(mem, n); i >= 0 {
			t.Errorf("%s is in the node's memory (of %d bytes read)", what, len(mem))
		}
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// readProcessMemory reads every readable anonymous mapping of process pid.
func readProcessMemory(pid int) ([]byte, error) {
	maps, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return nil, err
	}
	defer maps.Close()
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		return nil, err
	}
	defer mem.Close()
	var out []byte
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[1][0] != 'r' {
			continue
		}
		// Anonymous memory (heap, stacks, Go's arenas); mapped files are
		// the data dir's, scanned as files.
		if len(f) >= 6 && f[5] != "[heap]" && !strings.HasPrefix(f[5], "[stack") {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || b <= a || b-a > 1<<32 {
			continue
		}
		buf := make([]byte, b-a)
		n, _ := mem.ReadAt(buf, int64(a))
		out = append(out, buf[:n]...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no memory readable")
	}
	return out, nil
}
