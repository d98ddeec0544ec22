package main

import (
	"encoding/json"
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
