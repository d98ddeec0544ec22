package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestShutdownEndsWhenTheDataDirIsGone: a dev node whose data dir was
// removed under it cannot flush its store, yet SIGTERM ends it within a
// bounded time, with an error exit that says why.
func TestShutdownEndsWhenTheDataDirIsGone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, logs := startLogged(t, []string{"VISITOR_HASH_SECRET=", "COLLECTOR_SHUTDOWN_TIMEOUT=2s"}, "--data-dir", dir)
	m := regexp.MustCompile(`(?m)^curl -sS -X POST '([^']+)' -H 'x-api-key: ([^']+)' -H 'content-type: application/json' -d '([^']+)'$`).FindSubmatch(logs.Bytes())
	if m == nil {
		t.Fatalf("no banner:\n%s", logs.Bytes())
	}
	if code, body := post(t, string(m[1]), string(m[2]), string(m[3])); code != 200 {
		t.Fatalf("sample batch: %d %s", code, body)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s.cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	select {
	case err := <-exited:
		if err == nil {
			t.Fatal("exit status 0 although storage could not close")
		}
		t.Logf("exited after %s: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(20 * time.Second):
		t.Fatalf("still running 20 s after SIGTERM (timeout 2 s):\n%s", logs.Bytes())
	}
	out := logs.Bytes()
	if !bytes.Contains(out, []byte("did not close within 2s")) && !bytes.Contains(out, []byte("shutdown is stuck")) {
		t.Fatalf("no line saying why:\n%s", out)
	}
	if n := strings.Count(string(out), "uptimizr-edge: "); n != 1 && !bytes.Contains(out, []byte("shutdown is stuck")) {
		t.Fatalf("want one error line on stderr, got %d:\n%s", n, out)
	}
}

// TestSecondSignalEndsAtOnce: an operator's second Ctrl-C ends a stuck
// shutdown at once.
func TestSecondSignalEndsAtOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, logs := startLogged(t, []string{"VISITOR_HASH_SECRET=", "COLLECTOR_SHUTDOWN_TIMEOUT=30s"}, "--data-dir", dir)
	m := regexp.MustCompile(`(?m)^curl -sS -X POST '([^']+)' -H 'x-api-key: ([^']+)' -H 'content-type: application/json' -d '([^']+)'$`).FindSubmatch(logs.Bytes())
	if m == nil {
		t.Fatalf("no banner:\n%s", logs.Bytes())
	}
	post(t, string(m[1]), string(m[2]), string(m[3]))
	os.RemoveAll(dir)
	s.cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(500 * time.Millisecond)
	s.cmd.Process.Signal(syscall.SIGINT)
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	select {
	case err := <-exited:
		if err == nil {
			t.Fatal("exit status 0 after a forced exit")
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("a second SIGINT did not end the process:\n%s", logs.Bytes())
	}
	if !bytes.Contains(logs.Bytes(), []byte("second signal")) {
		t.Fatalf("no line about the second signal:\n%s", logs.Bytes())
	}
}

// TestDevModeListensOnLoopback: dev mode prints working keys, so without an
// address it listens on 127.0.0.1 only, and says so; an address given wins.
func TestDevModeListensOnLoopback(t *testing.T) {
	port := freePort(t)
	dir := filepath.Join(t.TempDir(), "data")
	cmd := exec.Command(binPath, "--data-dir", dir)
	cmd.Env = append(os.Environ(), "VISITOR_HASH_SECRET=", "COLLECTOR_HOST=", fmt.Sprintf("COLLECTOR_PORT=%d", port))
	logs := &syncBuf{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	want := fmt.Sprintf("Listening on 127.0.0.1:%d (loopback only;", port)
	deadline := time.Now().Add(20 * time.Second)
	for !bytes.Contains(logs.Bytes(), []byte(want)) {
		if time.Now().After(deadline) {
			t.Fatalf("banner lacks %q:\n%s", want, logs.Bytes())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The socket is bound to loopback, not to every interface.
	tcp, _ := os.ReadFile("/proc/net/tcp")
	tcp6, _ := os.ReadFile("/proc/net/tcp6")
	hexPort := fmt.Sprintf(":%04X ", port)
	if !bytes.Contains(tcp, []byte("0100007F"+hexPort)) {
		t.Fatalf("no listener on 127.0.0.1:%d in /proc/net/tcp", port)
	}
	if bytes.Contains(tcp, []byte("00000000"+hexPort)) || bytes.Contains(tcp6, []byte("00000000000000000000000000000000"+hexPort)) {
		t.Fatal("dev mode listens on every interface")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	// An address given wins (here, explicitly every interface).
	s, l2 := startLoggedAddr(t, []string{"VISITOR_HASH_SECRET="}, fmt.Sprintf("0.0.0.0:%d", freePort(t)), "--data-dir", dir)
	_ = s
	if b := l2.Bytes(); bytes.Contains(b, []byte("loopback only")) || !(bytes.Contains(b, []byte("listening on 0.0.0.0:")) || bytes.Contains(b, []byte("listening on [::]:"))) {
		t.Fatalf("--addr 0.0.0.0 not honoured:\n%s", l2.Bytes())
	}
}
