package suite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/uptimizr/edge/bench/load"
	"github.com/uptimizr/edge/fleet/bundle"
	"github.com/uptimizr/edge/fleet/control"
)

// The control scenario (docs/FLEET.md): N node processes follow a
// nats-server's control plane; each revision published adds a new query
// key, and its time is from the publish to the last node answering that
// key 200. Then one node takes a steady ingest load while revisions are
// published every ReloadEvery, phase by phase against the same load
// without revisions.

// ControlOptions configure RunControl.
type ControlOptions struct {
	Collector, NATS string
	Nodes           []int // node counts, one run each (2 and 10)
	Applies         int   // revisions published per node count
	Rate            float64
	Phase           time.Duration // each reload phase, and each quiet one
	Rounds          int
	ReloadEvery     time.Duration
	BatchSize       int
	// Plugin, when set, is a plugin module: every revision of the reload
	// phases also gives the bench project's chain a new version of it (its
	// config changes), so that each reload switches a plugin as well.
	Plugin   []byte
	Progress io.Writer
}

// ControlRun is one node count's revisions.
type ControlRun struct {
	Nodes     int       `json:"nodes"`
	Applies   int       `json:"applies"`
	Latencies []float64 `json:"latencies_ms"` // publish → last node, per revision
	P50       float64   `json:"p50_ms"`
	P99       float64   `json:"p99_ms"`
	Max       float64   `json:"max_ms"`
}

// ReloadPhase is one phase of the hot-reload run.
type ReloadPhase struct {
	Round     int     `json:"round"`
	Reloading bool    `json:"reloading"`
	Revisions int     `json:"revisions"` // published during the phase
	Requests  int64   `json:"requests"`
	OK        int64   `json:"ok"`
	Errors    int64   `json:"errors"`
	P50       float64 `json:"p50_ms"`
	P99       float64 `json:"p99_ms"`
}

// ControlResult is the control scenario's outcome.
type ControlResult struct {
	Runs   []ControlRun  `json:"runs"`
	Reload []ReloadPhase `json:"reload"`
	Rate   float64       `json:"rate"`
	Every  string        `json:"reload_every"`
	// PluginEachReload: each reloading revision switched a plugin version.
	PluginEachReload bool `json:"plugin_each_reload"`
	// PluginActive is the plugin's active version on the node at the end.
	PluginActive int `json:"plugin_active_version,omitempty"`
}

type controlNode struct {
	base string
	stop func()
}

// RunControl runs the control scenario.
func RunControl(ctx context.Context, o ControlOptions) (*ControlResult, error) {
	say := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", args...)
		}
	}
	dir, err := os.MkdirTemp("", "uptimizr-control-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ns, err := startBenchNATS(ctx, o.NATS, dir, false)
	if err != nil {
		return nil, err
	}
	defer ns.stop()
	res := &ControlResult{Rate: o.Rate, Every: o.ReloadEvery.String(), PluginEachReload: o.Plugin != nil}
	env := []string{"VISITOR_HASH_SECRET=bench-visitor-secret-0123456789", "COLLECTOR_RATE_LIMIT_MAX=0",
		"COLLECTOR_INGEST_RATE_LIMIT_MAX=0", "COLLECTOR_KEY_RATE_LIMIT_MAX=0", "COLLECTOR_LOG_LEVEL=warn",
		"COLLECTOR_CONTROL_URL=" + ns.url}
	startNodes := func(tag string, n int) ([]controlNode, error) {
		nodes := make([]controlNode, 0, n)
		for i := 0; i < n; i++ {
			addr, err := freeAddr()
			if err != nil {
				return nodes, err
			}
			d := filepath.Join(dir, fmt.Sprintf("%s-%d", tag, i))
			stop, err := startProcess(ctx, d+".log", append(env, fmt.Sprintf("COLLECTOR_NODE_ID=%s-%d", tag, i)), o.Collector,
				"serve", "--data-dir", d, "--addr", addr)
			if err != nil {
				return nodes, err
			}
			nodes = append(nodes, controlNode{"http://" + addr, stop})
		}
		for _, nd := range nodes {
			if err := waitReady(ctx, nd.base+"/ready", 60*time.Second); err != nil {
				return nodes, err
			}
		}
		return nodes, nil
	}
	stopAll := func(nodes []controlNode) {
		for _, nd := range nodes {
			nd.stop()
		}
	}
	client, err := control.Dial(ns.url, false, nil)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	var prev *bundle.Revision
	var ingestKey, adminKey string // the bench project's, from its first revision
	// publish makes the next revision: project "bench" with an ingest key
	// (kept) and a query key new in this revision; gaze as given; with
	// plugin, the plugin of o.Plugin, its config naming the revision.
	var moduleHash string
	if o.Plugin != nil {
		moduleHash = bundle.ModuleHash(o.Plugin)
	}
	publish := func(a int, gaze, plugin bool) (secret string, err error) {
		b := &bundle.Bundle{Projects: []bundle.Project{{ID: "bench", Channels: map[string]bool{"gaze": gaze},
			Keys: []bundle.Key{{Name: "web", Caps: []string{"ingest"}}, {Name: "ops", Caps: []string{"admin"}}, {Name: fmt.Sprintf("q%d", a), Caps: []string{"query"}}}}}}
		var paths map[string]string
		var modules map[string][]byte
		if plugin && o.Plugin != nil {
			b.Projects[0].Plugins = []bundle.PluginRef{{Name: "pii", Module: "plugin.wasm", Config: []byte(fmt.Sprintf(`{"extraDenyParams":["rev%d"]}`, a)), Policy: "pass"}}
			paths = map[string]string{"plugin.wasm": moduleHash}
			modules = map[string][]byte{moduleHash: o.Plugin}
		}
		_, seq, err := client.Latest(ctx)
		if err != nil && !errors.Is(err, control.ErrNoRevision) {
			return "", err
		}
		n := uint64(1)
		if prev != nil {
			n = prev.Number + 1
		}
		rev, secrets, err := bundle.Build(b, prev, n, paths, time.Now())
		if err != nil {
			return "", err
		}
		s, err := bundle.Seal(rev, nil)
		if err != nil {
			return "", err
		}
		if _, err := client.Publish(ctx, s, modules, seq); err != nil {
			return "", err
		}
		if prev == nil {
			ingestKey, adminKey = secrets["bench/web"], secrets["bench/ops"]
		}
		prev = rev
		return secrets[fmt.Sprintf("bench/q%d", a)], nil
	}
	applies := 0
	for _, n := range o.Nodes {
		nodes, err := startNodes(fmt.Sprintf("n%d", n), n)
		if err != nil {
			stopAll(nodes)
			return res, err
		}
		run := ControlRun{Nodes: n, Applies: o.Applies}
		for a := 0; a < o.Applies+1; a++ { // the first brings the nodes up to date: not counted
			t0 := time.Now()
			key, err := publish(applies, a%2 == 0, false)
			applies++
			if err != nil {
				stopAll(nodes)
				return res, err
			}
			if err := allAnswer(ctx, nodes, key, 30*time.Second); err != nil {
				stopAll(nodes)
				return res, err
			}
			if a > 0 {
				run.Latencies = append(run.Latencies, ms(time.Since(t0)))
			}
		}
		stopAll(nodes)
		run.P50, run.P99, run.Max = pct(run.Latencies, 0.5), pct(run.Latencies, 0.99), pct(run.Latencies, 1)
		say("%2d nodes: %d revisions, publish → last node p50 %.0f ms, p99 %.0f ms, max %.0f ms", n, o.Applies, run.P50, run.P99, run.Max)
		res.Runs = append(res.Runs, run)
	}

	// Hot reload under load: one node, the same open-loop ingest in every
	// phase, revisions published every ReloadEvery in the reloading ones.
	nodes, err := startNodes("reload", 1)
	if err != nil {
		stopAll(nodes)
		return res, err
	}
	defer stopAll(nodes)
	if _, err := publish(applies, false, true); err != nil {
		return res, err
	}
	applies++
	url := nodes[0].base + "/api/v1/collect"
	if err := waitIngest(ctx, url, ingestKey, 30*time.Second); err != nil {
		return res, err
	}
	bodies, err := EncodeAll(Bodies(1, o.BatchSize, 16), "identity", o.BatchSize)
	if err != nil {
		return res, err
	}
	if _, err := load.Run(ctx, load.Target{URL: url, Keys: []string{ingestKey}}, bodies, load.Options{Rate: o.Rate, Duration: time.Second}); err != nil {
		return res, fmt.Errorf("warmup: %w", err)
	}
	for round := 1; round <= o.Rounds; round++ {
		for _, reloading := range []bool{false, true} {
			time.Sleep(time.Second)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			revisions := 0
			var perr error
			if reloading {
				wg.Add(1)
				go func() {
					defer wg.Done()
					t := time.NewTicker(o.ReloadEvery)
					defer t.Stop()
					for {
						select {
						case <-stop:
							return
						case <-t.C:
						}
						if _, err := publish(applies, applies%2 == 0, true); err != nil {
							perr = err
							return
						}
						applies++
						revisions++
					}
				}()
			}
			r, err := load.Run(ctx, load.Target{URL: url, Keys: []string{ingestKey}}, bodies, load.Options{Rate: o.Rate, Duration: o.Phase})
			close(stop)
			wg.Wait()
			if err != nil {
				return res, err
			}
			if perr != nil {
				return res, perr
			}
			ph := ReloadPhase{Round: round, Reloading: reloading, Revisions: revisions, Requests: r.Requests, OK: r.OK,
				Errors: r.ErrorCount(), P50: ms(r.Percentile(0.5)), P99: ms(r.Percentile(0.99))}
			res.Reload = append(res.Reload, ph)
			say("round %d  %-12s %3d revisions  %6d requests, %d errors  p50 %6.2f ms  p99 %6.2f ms", round,
				map[bool]string{true: "reloading", false: "no revisions"}[reloading], revisions, ph.Requests, ph.Errors, ph.P50, ph.P99)
		}
	}
	if o.Plugin != nil {
		// The plugin's versions on the node: the first revision's, then one
		// per reloading revision (each changed its config).
		want := 1
		for _, ph := range res.Reload {
			want += ph.Revisions
		}
		var active int
		deadline := time.Now().Add(30 * time.Second)
		for {
			req, _ := http.NewRequestWithContext(ctx, "GET", nodes[0].base+"/api/v1/plugins", nil)
			req.Header.Set("x-api-key", adminKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return res, err
			}
			var chain []struct {
				Active int `json:"active"`
			}
			err = json.NewDecoder(resp.Body).Decode(&chain)
			resp.Body.Close()
			if err == nil && len(chain) == 1 {
				active = chain[0].Active
			}
			if active == want || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		res.PluginActive = active
		if active != want {
			return res, fmt.Errorf("the node's plugin is at version %d, want %d: revisions were not applied", active, want)
		}
		say("plugin: version %d active after the reloads, as published", active)
	}
	return res, nil
}

// allAnswer waits until every node answers key 200.
func allAnswer(ctx context.Context, nodes []controlNode, key string, within time.Duration) error {
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, nd := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = waitStatus(ctx, nd.base+"/api/v1/event-counts", key, 200, within)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

var pollClient = &http.Client{Timeout: 5 * time.Second}

func waitStatus(ctx context.Context, u, key string, want int, within time.Duration) error {
	end := time.Now().Add(within)
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
		req.Header.Set("x-api-key", key)
		res, err := pollClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == want {
				return nil
			}
		}
		if time.Now().After(end) {
			return fmt.Errorf("%s: no %d within %s", u, want, within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func waitIngest(ctx context.Context, u, key string, within time.Duration) error {
	end := time.Now().Add(within)
	for {
		req, _ := http.NewRequestWithContext(ctx, "POST", u, nil)
		req.Header.Set("x-api-key", key)
		res, err := pollClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 401 && res.StatusCode != 403 {
				return nil // the key is known (an empty body is a 400)
			}
		}
		if time.Now().After(end) {
			return fmt.Errorf("%s: the ingest key not known within %s", u, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pct is the q quantile of v (nearest rank, interpolated).
func pct(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	pos := q * float64(len(s)-1)
	lo := int(pos)
	if lo+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[lo] + (pos-float64(lo))*(s[lo+1]-s[lo])
}
