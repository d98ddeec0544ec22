package suite

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/storage"
)

// The local fleet (go tool task fleet): a nats-server with JetStream, a hub
// and two edge nodes that forward to it, all on loopback; sample batches
// go to both edges, and the hub's event count is compared with the sum of
// what the edges accepted.

// FleetOptions configure RunFleet.
type FleetOptions struct {
	Collector string // the uptimizr-edge binary
	NATS      string // the nats-server binary (built from its Go module)
	Batches   int    // per edge (default 20)
	BatchSize int    // events per batch (default 200)
	Progress  io.Writer
}

// FleetResult is what the local fleet counted.
type FleetResult struct {
	Accepted [2]int // events each edge accepted
	Hub      int    // events the hub counts
	Took     time.Duration
}

// RunFleet runs the local fleet once.
func RunFleet(ctx context.Context, o FleetOptions) (FleetResult, error) {
	if o.Batches <= 0 {
		o.Batches = 20
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 200
	}
	var res FleetResult
	dir, err := os.MkdirTemp("", "uptimizr-fleet-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	say := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", args...)
		}
	}
	// nats-server, from a config file: JetStream, and a max payload that
	// holds a whole batch's record.
	natsAddr, err := freeAddr()
	if err != nil {
		return res, err
	}
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "listen: %q\nmax_payload: 8MB\njetstream { store_dir: %q }\n", natsAddr, filepath.Join(dir, "nats")), 0o600); err != nil {
		return res, err
	}
	stopNATS, err := startProcess(ctx, filepath.Join(dir, "nats.log"), nil, o.NATS, "-c", conf)
	if err != nil {
		return res, fmt.Errorf("nats-server: %w", err)
	}
	defer stopNATS()
	if err := waitTCP(ctx, natsAddr, 20*time.Second); err != nil {
		return res, fmt.Errorf("nats-server: %w\n%s", err, tail(filepath.Join(dir, "nats.log"), 2000))
	}
	say("nats-server with JetStream on %s", natsAddr)
	natsURL := "nats://" + natsAddr
	env := []string{"VISITOR_HASH_SECRET=local-fleet-secret-0123456789", "COLLECTOR_RATE_LIMIT_MAX=0",
		"COLLECTOR_INGEST_RATE_LIMIT_MAX=0", "COLLECTOR_KEY_RATE_LIMIT_MAX=0", "COLLECTOR_LOG_LEVEL=warn"}

	hubDir := filepath.Join(dir, "hub")
	_, hubQuery, err := provisionFleetProject(hubDir)
	if err != nil {
		return res, err
	}
	hubAddr, err := freeAddr()
	if err != nil {
		return res, err
	}
	stopHub, err := startProcess(ctx, filepath.Join(dir, "hub.log"), append(env, "COLLECTOR_HUB_SOURCE="+natsURL),
		o.Collector, "hub", "--data-dir", hubDir, "--addr", hubAddr)
	if err != nil {
		return res, err
	}
	defer stopHub()
	if err := waitReady(ctx, "http://"+hubAddr+"/ready", 30*time.Second); err != nil {
		return res, fmt.Errorf("hub: %w\n%s", err, tail(filepath.Join(dir, "hub.log"), 2000))
	}
	say("hub on %s", hubAddr)
	var edgeURLs, edgeKeys []string
	for i := range 2 {
		d := filepath.Join(dir, fmt.Sprintf("edge-%d", i))
		ingest, _, err := provisionFleetProject(d)
		if err != nil {
			return res, err
		}
		addr, err := freeAddr()
		if err != nil {
			return res, err
		}
		log := filepath.Join(dir, fmt.Sprintf("edge-%d.log", i))
		stop, err := startProcess(ctx, log, append(env, "COLLECTOR_FORWARD_URL="+natsURL, fmt.Sprintf("COLLECTOR_NODE_ID=edge-%d", i)),
			o.Collector, "serve", "--data-dir", d, "--addr", addr)
		if err != nil {
			return res, err
		}
		defer stop()
		if err := waitReady(ctx, "http://"+addr+"/ready", 30*time.Second); err != nil {
			return res, fmt.Errorf("edge %d: %w\n%s", i, err, tail(log, 2000))
		}
		say("edge-%d on %s, forwarding to %s", i, addr, natsURL)
		edgeURLs, edgeKeys = append(edgeURLs, "http://"+addr+"/api/v1/collect"), append(edgeKeys, ingest)
	}
	start := time.Now()
	bodies := Bodies(1, o.BatchSize, o.Batches*2)
	for i, body := range bodies {
		e := i % 2
		n, err := postBatch(ctx, edgeURLs[e], edgeKeys[e], body)
		if err != nil {
			return res, fmt.Errorf("edge %d: %w", e, err)
		}
		res.Accepted[e] += n
	}
	want := res.Accepted[0] + res.Accepted[1]
	say("sent %d batches: edge-0 accepted %d events, edge-1 %d", len(bodies), res.Accepted[0], res.Accepted[1])
	deadline := time.Now().Add(60 * time.Second)
	for {
		if res.Hub, err = hubEvents(ctx, "http://"+hubAddr, hubQuery); err != nil {
			return res, err
		}
		if res.Hub >= want || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	res.Took = time.Since(start)
	return res, nil
}

// provisionFleetProject makes the project "demo", every channel on, in a
// new data dir, and returns its ingest and query keys.
func provisionFleetProject(dataDir string) (ingest, query string, err error) {
	st, err := storage.Open(storage.Options{Dir: dataDir, DisableAggregation: true, MinFreeDisk: -1})
	if err != nil {
		return "", "", err
	}
	defer func() {
		if cerr := st.Close(); err == nil {
			err = cerr
		}
	}()
	k, err := st.Registry().CreateProject("demo")
	if err != nil {
		return "", "", err
	}
	return k.Ingest, k.Query, st.Registry().SetChannels("demo", core.AllChannels())
}

// startProcess starts bin with args, its output to logPath, and returns
// the function that stops it (SIGTERM, then waits).
func startProcess(ctx context.Context, logPath string, env []string, bin string, args ...string) (func(), error) {
	stop, _, err := startProcessPID(ctx, logPath, env, bin, args...)
	return stop, err
}

// startProcessPID is startProcess that also returns the process id.
func startProcessPID(ctx context.Context, logPath string, env []string, bin string, args ...string) (func(), int, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, 0, err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, 0, err
	}
	return func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		logf.Close()
	}, cmd.Process.Pid, nil
}

func waitTCP(ctx context.Context, addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func postBatch(ctx context.Context, url, key string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("x-api-key", key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		return 0, fmt.Errorf("%d %s", res.StatusCode, b)
	}
	var out struct{ Accepted int }
	if err := json.Unmarshal(b, &out); err != nil {
		return 0, fmt.Errorf("answer %s: %v", b, err)
	}
	return out.Accepted, nil
}

func hubEvents(ctx context.Context, base, query string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/event-counts", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("x-api-key", query)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		return 0, fmt.Errorf("hub event-counts: %d %s", res.StatusCode, b)
	}
	var rows []struct{ Count int }
	if err := json.Unmarshal(b, &rows); err != nil {
		return 0, err
	}
	n := 0
	for _, r := range rows {
		n += r.Count
	}
	return n, nil
}
