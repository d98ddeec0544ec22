package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/storage"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "uptimizr-edge-bin")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "uptimizr-edge")
	if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// run runs the CLI to completion.
func run(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runIn(t, env, "", args...)
}

// runIn runs the CLI to completion with stdin.
func runIn(t *testing.T, env []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

type server struct {
	cmd    *exec.Cmd
	stdout *bytes.Buffer
	base   string
}

// start runs the collector and waits until it answers /ready.
func start(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(binPath, append(args, "--addr", fmt.Sprintf("127.0.0.1:%d", port))...)
	cmd.Env = append(os.Environ(), env...)
	s := &server{cmd: cmd, stdout: &bytes.Buffer{}, base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	cmd.Stdout = s.stdout
	if os.Getenv("DEBUG_NODE_STDERR") != "" {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(s.base + "/ready"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return s
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("server did not become ready")
	return nil
}

func post(t *testing.T, url, key, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("x-api-key", key)
	req.Header.Set("content-type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestDevModeBannerCurlAndCleanShutdown(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := start(t, []string{"VISITOR_HASH_SECRET="}, "--data-dir", dir)
	time.Sleep(100 * time.Millisecond)
	out := s.stdout.String()
	keys := regexp.MustCompile(`(?m)^\s+(ingest|query|admin):\s+(\S+)$`).FindAllStringSubmatch(out, -1)
	if len(keys) != 3 {
		t.Fatalf("banner lacks the three keys:\n%s", out)
	}
	m := regexp.MustCompile(`(?m)^curl -sS -X POST '([^']+)' -H 'x-api-key: ([^']+)' -H 'content-type: application/json' -d '([^']+)'$`).FindStringSubmatch(out)
	if m == nil || m[2] != keys[0][2] {
		t.Fatalf("banner lacks a curl with the ingest key:\n%s", out)
	}
	// What the curl sends is accepted.
	code, body := post(t, m[1], m[2], m[3])
	if code != 200 || !strings.Contains(body, `"accepted":3`) {
		t.Fatalf("sample batch: %d %s", code, body)
	}
	if _, err := os.Stat(filepath.Join(dir, storage.VisitorSeedFile)); err != nil {
		t.Fatal("dev visitor seed not kept in the data dir")
	}
	// SIGTERM: clean stop, exit 0.
	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	// Restart: dev mode again, keys not printed twice, data kept.
	s2 := start(t, []string{"VISITOR_HASH_SECRET="}, "--data-dir", dir)
	time.Sleep(100 * time.Millisecond)
	if strings.Contains(s2.stdout.String(), keys[0][2]) {
		t.Fatal("keys printed a second time")
	}
	if code, _ := post(t, s2.base+"/api/v1/collect", m[2], m[3]); code != 200 {
		t.Fatalf("ingest key after restart: %d", code)
	}
}

func TestCLIProjectsKeysAndRevocationWhileRunning(t *testing.T) {
	dir := t.TempDir()
	env := []string{"VISITOR_HASH_SECRET=cli-test-secret-0123456789"}
	stdout, stderr, code := run(t, env, "project", "create", "shop", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("create: %d %s", code, stderr)
	}
	var created struct {
		Project string
		Keys    struct{ Ingest, Query, Admin string }
	}
	if err := json.Unmarshal([]byte(stdout), &created); err != nil || created.Project != "shop" || created.Keys.Ingest == "" || created.Keys.Admin == "" {
		t.Fatalf("create printed %q (%v)", stdout, err)
	}
	if !strings.HasPrefix(stdout, `{"project":"shop","keys":{"ingest":`) {
		t.Fatalf("create output shape: %s", stdout)
	}
	if _, stderr, code := run(t, env, "project", "create", "shop", "--data-dir", dir); code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "already exists") {
		t.Fatalf("duplicate create: code %d stderr %q", code, stderr)
	}
	stdout, _, _ = run(t, env, "channels", "set", "--project", "shop", "gaze=on", "meshVisibility=on", "--data-dir", dir)
	if !strings.Contains(stdout, `"gaze":true`) || !strings.Contains(stdout, `"meshVisibility":true`) {
		t.Fatalf("channels set: %s", stdout)
	}
	if _, stderr, code := run(t, env, "channels", "set", "--project", "shop", "warp=on", "--data-dir", dir); code == 0 || !strings.Contains(stderr, "unknown channel") {
		t.Fatalf("bad channel: %d %s", code, stderr)
	}

	s := start(t, env, "serve", "--data-dir", dir)
	ev := `{"events":[{"type":"scene_change","projectId":"x","sessionId":"s","ts":1,"sdkVersion":"1"}]}`
	if code, body := post(t, s.base+"/api/v1/collect", created.Keys.Ingest, ev); code != 200 {
		t.Fatalf("ingest: %d %s", code, body)
	}
	// While the server runs, the CLI goes through its control socket.
	stdout, stderr, code = run(t, env, "key", "list", "--project", "shop", "--data-dir", dir)
	var keys []struct{ ID, Caps string }
	if code != 0 || json.Unmarshal([]byte(stdout), &keys) != nil || len(keys) != 3 {
		t.Fatalf("key list while running: %d %s %s", code, stdout, stderr)
	}
	stdout, stderr, code = run(t, env, "key", "revoke", "--project", "shop", created.Keys.Ingest, "--data-dir", dir)
	if code != 0 || !strings.Contains(stdout, `"revoked"`) {
		t.Fatalf("revoke while running: %d %s %s", code, stdout, stderr)
	}
	if code, _ := post(t, s.base+"/api/v1/collect", created.Keys.Ingest, ev); code != 401 {
		t.Fatalf("revoked key still ingests: %d", code)
	}
	stdout, _, code = run(t, env, "key", "create", "--project", "shop", "--cap", "ingest", "--data-dir", dir)
	var nk struct{ Key string }
	if code != 0 || json.Unmarshal([]byte(stdout), &nk) != nil || nk.Key == "" {
		t.Fatalf("key create while running: %s", stdout)
	}
	if code, body := post(t, s.base+"/api/v1/collect", nk.Key, ev); code != 200 {
		t.Fatalf("new key: %d %s", code, body)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
	// The key secrets are never in the data dir.
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			b, _ := os.ReadFile(p)
			for _, k := range []string{created.Keys.Ingest, created.Keys.Query, created.Keys.Admin, nk.Key} {
				if bytes.Contains(b, []byte(k)) {
					t.Errorf("%s holds a key in clear", p)
				}
			}
		}
		return nil
	})
}

func TestServeRequiresSecretOutsideDevMode(t *testing.T) {
	_, stderr, code := run(t, []string{"VISITOR_HASH_SECRET="}, "serve", "--data-dir", t.TempDir())
	if code == 0 || !strings.Contains(stderr, "VISITOR_HASH_SECRET") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("code %d stderr %q", code, stderr)
	}
}

// TestEverySettingHasAFlag: each variable of the operations guide can be
// given as a flag, which wins over the environment, and is checked the
// same way.
func TestEverySettingHasAFlag(t *testing.T) {
	root := newRootCmd(io.Discard, io.Discard)
	serve, _, err := root.Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range core.Settings {
		if serve.Flags().Lookup(s.Flag) == nil && root.PersistentFlags().Lookup(s.Flag) == nil {
			t.Errorf("no --%s for %s", s.Flag, s.Env)
		}
	}
	t.Setenv("COLLECTOR_BODY_LIMIT", "2000")
	t.Setenv("COLLECTOR_PLUGIN_TIMEOUT", "20ms")
	c := &cli{settings: map[string]*string{}}
	limit, tmo := "3000", ""
	c.settings["COLLECTOR_BODY_LIMIT"], c.settings["COLLECTOR_PLUGIN_TIMEOUT"] = &limit, &tmo
	cfg, err := c.config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BodyLimit != 3000 || cfg.PluginTimeout != 20*time.Millisecond {
		t.Fatalf("body limit %d (flag 3000 over env 2000), plugin timeout %s (env 20ms, no flag)", cfg.BodyLimit, cfg.PluginTimeout)
	}
	// A bad flag value is refused with the variable's own message.
	_, stderr, code := run(t, nil, "serve", "--data-dir", t.TempDir(), "--port", "eighty")
	if code == 0 || !strings.Contains(stderr, "COLLECTOR_PORT") {
		t.Fatalf("--port eighty: code %d stderr %q", code, stderr)
	}
}
