package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func buildGuest(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "guest.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "../../plugins/testdata/guest")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return out
}

func TestPluginCLIOfflineAndLive(t *testing.T) {
	guest := buildGuest(t)
	dir := t.TempDir()
	env := []string{"VISITOR_HASH_SECRET=plugin-cli-secret-0123456789"}
	out, stderr, code := run(t, env, "project", "create", "shop", "--data-dir", dir)
	if code != 0 {
		t.Fatal(stderr)
	}
	var created struct{ Keys struct{ Ingest string } }
	json.Unmarshal([]byte(out), &created)

	// Offline: checked and stored; live at the next start.
	out, stderr, code = run(t, env, "plugin", "upload", "--project", "shop", "--name", "halver", "--file", guest, "--config", `{"mode":"drop-odd"}`, "--data-dir", dir)
	if code != 0 || strings.TrimSpace(out) != `{"name":"halver","version":1}` {
		t.Fatalf("upload: %d %q %s", code, out, stderr)
	}
	if _, stderr, code := run(t, env, "plugin", "upload", "--project", "shop", "--name", "bad", "--file", guest, "--config", `{"mode":"trap"}`, "--data-dir", dir); code == 0 || !strings.Contains(stderr, "self-test") {
		t.Fatalf("a failing upload: %d %s", code, stderr)
	}
	s := start(t, env, "serve", "--data-dir", dir)
	batch := `{"events":[` + strings.Repeat(`{"type":"scene_change","projectId":"x","sessionId":"s","ts":1,"sdkVersion":"1"},`, 3) + `{"type":"scene_change","projectId":"x","sessionId":"s","ts":1,"sdkVersion":"1"}]}`
	if code, body := post(t, s.base+"/api/v1/collect", created.Keys.Ingest, batch); code != 200 || !strings.Contains(body, `"accepted":2`) {
		t.Fatalf("the plugin is not live after start: %d %s", code, body)
	}
	// Live: through the control socket, effective at once.
	out, stderr, code = run(t, env, "plugin", "upload", "--project", "shop", "--name", "halver", "--file", guest, "--config", `{"mode":"keep"}`, "--data-dir", dir)
	if code != 0 || !strings.Contains(out, `"version":2`) {
		t.Fatalf("live upload: %d %s %s", code, out, stderr)
	}
	if _, body := post(t, s.base+"/api/v1/collect", created.Keys.Ingest, batch); !strings.Contains(body, `"accepted":4`) {
		t.Fatalf("the new version is not live: %s", body)
	}
	if out, _, code = run(t, env, "plugin", "rollback", "--project", "shop", "--name", "halver", "--data-dir", dir); code != 0 || !strings.Contains(out, `"version":1`) {
		t.Fatalf("rollback: %s", out)
	}
	if _, body := post(t, s.base+"/api/v1/collect", created.Keys.Ingest, batch); !strings.Contains(body, `"accepted":2`) {
		t.Fatalf("rollback not live: %s", body)
	}
	out, _, _ = run(t, env, "plugin", "list", "--project", "shop", "--data-dir", dir)
	var list []struct {
		Name     string
		Active   int
		Versions []json.RawMessage
	}
	if json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].Active != 1 || len(list[0].Versions) != 2 {
		t.Fatalf("list: %s", out)
	}
	if out, _, code = run(t, env, "plugin", "config", "--project", "shop", "--name", "halver", "--config", `{"mode":"keep"}`, "--data-dir", dir); code != 0 || !strings.Contains(out, `"version":3`) {
		t.Fatalf("config: %d %s", code, out)
	}
	if _, body := post(t, s.base+"/api/v1/collect", created.Keys.Ingest, batch); !strings.Contains(body, `"accepted":4`) {
		t.Fatalf("the new config is not live: %s", body)
	}
	if _, stderr, code := run(t, env, "plugin", "order", "--project", "shop", "nope", "--data-dir", dir); code == 0 || !strings.Contains(stderr, "order") {
		t.Fatalf("a bad order: %d %s", code, stderr)
	}
	if out, _, code = run(t, env, "plugin", "order", "--project", "shop", "halver", "--data-dir", dir); code != 0 || !strings.Contains(out, "halver") {
		t.Fatalf("order: %d %s", code, out)
	}
	if _, _, code = run(t, env, "plugin", "remove", "--project", "shop", "--name", "halver", "--data-dir", dir); code != 0 {
		t.Fatal("remove failed")
	}
	if _, body := post(t, s.base+"/api/v1/collect", created.Keys.Ingest, batch); !strings.Contains(body, `"accepted":4`) {
		t.Fatalf("removed plugin still runs: %s", body)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
}

// TestPluginUploadOverTheLimit: a module over COLLECTOR_PLUGIN_MAX_MODULE_MB
// is refused by the CLI with the limit in bytes and MiB and the variable,
// whether the CLI opens the data dir itself (its own setting) or hands the
// upload to the running server (the server's setting, refused before the
// module is sent). The control socket answers every refusal in JSON, which
// the CLI prints: never a bare "400 Bad Request".
func TestPluginUploadOverTheLimit(t *testing.T) {
	dir := t.TempDir()
	env := []string{"VISITOR_HASH_SECRET=plugin-cli-secret-0123456789"}
	if _, stderr, code := run(t, env, "project", "create", "shop", "--data-dir", dir); code != 0 {
		t.Fatal(stderr)
	}
	small := filepath.Join(t.TempDir(), "small.wasm")
	if err := os.WriteFile(small, bytes.Repeat([]byte{0x5a}, 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	// No server: the command's own limit.
	_, stderr, code := run(t, append(env, "COLLECTOR_PLUGIN_MAX_MODULE_MB=1"), "plugin", "upload", "--project", "shop", "--name", "big", "--file", small, "--data-dir", dir)
	for _, want := range []string{"3145728 bytes (3.0 MiB) exceeds 1048576 bytes (1 MiB)", "COLLECTOR_PLUGIN_MAX_MODULE_MB=1 for this command"} {
		if code == 0 || !strings.Contains(stderr, want) {
			t.Errorf("offline upload over the limit: %d %q, want it to say %q", code, stderr, want)
		}
	}

	// A running server with its own limit; the CLI's environment has none.
	s := start(t, append(env, "COLLECTOR_PLUGIN_MAX_MODULE_MB=2"), "serve", "--data-dir", dir)
	defer func() { s.cmd.Process.Signal(syscall.SIGTERM); s.cmd.Wait() }()
	huge := filepath.Join(t.TempDir(), "huge.wasm")
	if err := os.WriteFile(huge, bytes.Repeat([]byte{0x5a}, 60_000_000), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{small, huge} {
		_, stderr, code := run(t, env, "plugin", "upload", "--project", "shop", "--name", "big", "--file", f, "--data-dir", dir)
		for _, want := range []string{" exceeds 2097152 bytes (2 MiB)", "COLLECTOR_PLUGIN_MAX_MODULE_MB=2 on the running server"} {
			if code == 0 || !strings.Contains(stderr, want) {
				t.Errorf("live upload of %s over the limit: %d %q, want it to say %q", filepath.Base(f), code, stderr, want)
			}
		}
	}

	// The socket itself, without the size header the CLI sends: a command
	// too large to hold a module under the limit, and one that is not JSON.
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", filepath.Join(dir, "control.sock"))
	}}}
	module, _ := os.ReadFile(small)
	big, _ := json.Marshal(map[string]any{"op": "plugin.upload", "project": "shop", "plugin": "big", "module": module})
	for _, c := range []struct {
		body   []byte
		status int
		want   string
	}{
		{big, 413, "COLLECTOR_PLUGIN_MAX_MODULE_MB=2 on the running server"},
		{[]byte("not json"), 400, "malformed operator command"},
	} {
		res, err := hc.Post("http://control/op", "application/json", bytes.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var e struct{ Error string }
		if res.StatusCode != c.status || json.Unmarshal(b, &e) != nil || !strings.Contains(e.Error, c.want) {
			t.Errorf("control socket, %d-byte body: %d %s; want %d saying %q", len(c.body), res.StatusCode, b, c.status, c.want)
		}
	}
}
