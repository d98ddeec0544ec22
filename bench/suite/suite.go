// Package suite runs the load scenarios of the benchmark suite: it starts
// the collector (or the floor handler) as a child process on loopback,
// provisions projects, keys and plugins, drives it with bench/load, and
// measures the child's CPU and memory from /proc while the load runs.
package suite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/uptimizr/edge/bench/gen"
	"github.com/uptimizr/edge/bench/load"
	"github.com/uptimizr/edge/bench/report"
	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/storage"
)

// Plugin is one plugin of a scenario's chain, in chain order.
type Plugin struct {
	Name   string // plugin name in the project
	File   string // .wasm, relative to Options.Root
	Config string // JSON config
}

// Scenario is one measured configuration.
type Scenario struct {
	Name       string
	Floor      bool   // the floor handler instead of the collector
	Encoding   string // identity, gzip, zstd or br
	Projects   int    // keys rotate over this many projects (default 1)
	Retention  bool   // ENABLE_RAW_SESSION_RETENTION
	SyncWrites bool   // COLLECTOR_SYNC_WRITES
	Plugins    []Plugin
	// HalfOf, when set, runs the open loop at half the events/s that the
	// named scenario (run earlier) reached, to measure latency under a
	// load the node sustains.
	HalfOf string
	// Forward runs a nats-server (Options.NATS) and has the collector
	// forward to it; the run also measures the forward lag, from a batch's
	// acceptance to its record's delivery from the stream (fleet.go).
	Forward bool
	// Hub measures the fleet's hub instead: what a forwarding node took in
	// Options.Duration is then folded by a hub from the stream (fleet.go).
	Hub bool
}

// The example plugins, as the scenarios use them.
var (
	PIIRedactAS  = Plugin{Name: "pii-redact", File: "plugins/examples/pii-redact/pii-redact.wasm", Config: `{}`}
	SchemaGuard  = Plugin{Name: "schema-guard", File: "plugins/examples/schema-guard/go/schema-guard.wasm", Config: `{"userIdMustBeHashed":true}`}
	DropInternal = Plugin{Name: "drop-internal", File: "plugins/examples/drop-internal/go/drop-internal.wasm", Config: `{"hosts":["localhost","127.0.0.1","staging.example.com"]}`}
)

// Default is the full suite, in the order it runs: the floor, ingest with
// retention off and on and with 0, 1 and 3 plugins, each encoding, 1,000
// projects, fsync per group commit, and the open loop at half the maximum.
func Default() []Scenario {
	one := []Plugin{PIIRedactAS}
	three := []Plugin{PIIRedactAS, SchemaGuard, DropInternal}
	return []Scenario{
		{Name: "floor", Floor: true, Encoding: "identity"},
		{Name: "floor-gzip", Floor: true, Encoding: "gzip"},
		{Name: "ingest", Encoding: "identity"},
		{Name: "ingest-gzip", Encoding: "gzip"},
		{Name: "ingest-zstd", Encoding: "zstd"},
		{Name: "ingest-br", Encoding: "br"},
		{Name: "retention", Encoding: "identity", Retention: true},
		{Name: "plugin-1", Encoding: "identity", Plugins: one},
		{Name: "plugin-3", Encoding: "identity", Plugins: three},
		{Name: "retention-plugin-1", Encoding: "identity", Retention: true, Plugins: one},
		{Name: "retention-plugin-3", Encoding: "identity", Retention: true, Plugins: three},
		{Name: "projects-1000", Encoding: "identity", Projects: 1000},
		{Name: "fsync", Encoding: "identity", SyncWrites: true},
		{Name: "ingest-half-load", Encoding: "identity", HalfOf: "ingest"},
		{Name: "forward", Encoding: "identity", Forward: true},
		{Name: "forward-half-load", Encoding: "identity", Forward: true, HalfOf: "forward"},
		{Name: "hub", Encoding: "identity", Hub: true},
	}
}

// Select keeps the scenarios whose names match re (all if re is empty),
// and the ones that a kept HalfOf scenario needs.
func Select(all []Scenario, re string) ([]Scenario, error) {
	if re == "" {
		return all, nil
	}
	rx, err := regexp.Compile(re)
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	for _, s := range all {
		if rx.MatchString(s.Name) {
			keep[s.Name] = true
			if s.HalfOf != "" {
				keep[s.HalfOf] = true
			}
		}
	}
	var out []Scenario
	for _, s := range all {
		if keep[s.Name] {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no scenario matches %q", re)
	}
	return out, nil
}

// Options configure a suite run.
type Options struct {
	Collector   string // the uptimizr-edge binary
	NATS        string // the nats-server binary, for the forward and hub scenarios
	Floor       string // a binary whose "floor --addr A" subcommand serves the floor handler
	Root        string // repository root, for plugin modules
	Duration    time.Duration
	Warmup      time.Duration
	Concurrency int   // closed-loop connections (default 16)
	BatchSize   int   // events per request (default 200)
	Bodies      int   // distinct request bodies per encoding (default 64)
	Seed        int64 // generator seed (default 1)
	Logger      *slog.Logger
	// ProfileDir, if set, receives a CPU profile of the collector over
	// each scenario's measured window and an allocation profile after it
	// (<scenario>.cpu.pprof, <scenario>.allocs.pprof), and the collector's
	// metrics after the run (<scenario>.metrics.txt).
	ProfileDir string
	// Progress, if set, receives one line per scenario as it completes.
	Progress io.Writer
}

func (o *Options) defaults() {
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 200
	}
	if o.Bodies <= 0 {
		o.Bodies = 64
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Run runs the scenarios in order and returns one row each.
func Run(ctx context.Context, o Options, scenarios []Scenario) ([]report.Row, error) {
	o.defaults()
	raw := Bodies(o.Seed, o.BatchSize, o.Bodies)
	encoded := map[string][]load.Body{}
	var rows []report.Row
	byName := map[string]report.Row{}
	for _, sc := range scenarios {
		bodies, ok := encoded[sc.Encoding]
		if !ok {
			var err error
			if bodies, err = EncodeAll(raw, sc.Encoding, o.BatchSize); err != nil {
				return rows, err
			}
			encoded[sc.Encoding] = bodies
		}
		rate := 0.0
		if sc.HalfOf != "" {
			base, ok := byName[sc.HalfOf]
			if !ok || base.RequestsPerSec == 0 {
				return rows, fmt.Errorf("%s: scenario %s has not run", sc.Name, sc.HalfOf)
			}
			rate = base.RequestsPerSec / 2
		}
		row, err := runOne(ctx, o, sc, bodies, rate)
		if err != nil {
			return rows, fmt.Errorf("%s: %w", sc.Name, err)
		}
		rows = append(rows, row)
		byName[sc.Name] = row
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "%-20s %12.0f events/s  p99 %7.2f ms  cpu %.2f  rss %.0f MiB  %s\n",
				row.Scenario, row.EventsPerSec, float64(row.P99)/1e6, row.ServerCPU, float64(row.ServerPeakRSS)/(1<<20), row.Note)
		}
	}
	return rows, nil
}

// Bodies generates n request bodies of batch events each with a fixed seed.
func Bodies(seed int64, batch, n int) [][]byte {
	g := gen.New(gen.Config{Seed: seed, BatchSize: batch, ProjectID: "bench"})
	out := make([][]byte, n)
	for i := range out {
		out[i] = g.Next(nil)
	}
	return out
}

// EncodeAll encodes every body with one encoding.
func EncodeAll(raw [][]byte, encoding string, events int) ([]load.Body, error) {
	out := make([]load.Body, len(raw))
	for i, r := range raw {
		b, err := load.Encode(r, encoding, events)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// runOne starts the scenario's server, loads it and stops it.
func runOne(ctx context.Context, o Options, sc Scenario, bodies []load.Body, rate float64) (report.Row, error) {
	row := report.Row{Scenario: sc.Name, Encoding: sc.Encoding, Projects: max(1, sc.Projects), Plugins: len(sc.Plugins), Retention: sc.Retention}
	dir, err := os.MkdirTemp("", "uptimizr-bench-")
	if err != nil {
		return row, err
	}
	defer os.RemoveAll(dir)
	if sc.Hub {
		return runHub(ctx, o, sc, bodies, dir)
	}
	var natsURL string
	var ns *benchNATS
	var lag *lagProbe
	if sc.Forward {
		if ns, err = startBenchNATS(ctx, o.NATS, dir, o.ProfileDir != ""); err != nil {
			return row, err
		}
		defer ns.stop()
		natsURL = ns.url
		if sc.HalfOf != "" {
			// The lag is measured at half load: at full load the probe
			// would take a share of the CPUs the node is measured on.
			if lag, err = newLagProbe(ctx, natsURL); err != nil {
				return row, err
			}
			defer lag.stop()
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return row, err
	}
	var keys []string
	var admin string
	var cmd *exec.Cmd
	var pprofAddr string
	if o.ProfileDir != "" && !sc.Floor {
		if pprofAddr, err = freeAddr(); err != nil {
			return row, err
		}
	}
	if sc.Floor {
		cmd = exec.CommandContext(ctx, o.Floor, "floor", "--addr", addr)
		keys = []string{"floor"}
	} else {
		if keys, admin, err = Provision(filepath.Join(dir, "data"), max(1, sc.Projects)); err != nil {
			return row, fmt.Errorf("provision: %w", err)
		}
		cmd = exec.CommandContext(ctx, o.Collector, "serve", "--data-dir", filepath.Join(dir, "data"), "--addr", addr)
		cmd.Env = append(os.Environ(),
			"VISITOR_HASH_SECRET=bench-visitor-secret-0123456789",
			"COLLECTOR_RATE_LIMIT_MAX=0",
			"COLLECTOR_INGEST_RATE_LIMIT_MAX=0",
			"COLLECTOR_KEY_RATE_LIMIT_MAX=0",
			"COLLECTOR_LOG_LEVEL=warn",
			"ENABLE_RAW_SESSION_RETENTION="+strconv.FormatBool(sc.Retention),
			"COLLECTOR_SYNC_WRITES="+strconv.FormatBool(sc.SyncWrites),
		)
		if pprofAddr != "" {
			cmd.Env = append(cmd.Env, "COLLECTOR_PPROF_ADDR="+pprofAddr)
		}
		if natsURL != "" {
			cmd.Env = append(cmd.Env, "COLLECTOR_FORWARD_URL="+natsURL, "COLLECTOR_NODE_ID=bench-node")
		}
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return row, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Start(); err != nil {
		return row, err
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			return errors.New("the server did not stop within 30 s of SIGTERM")
		}
	}
	defer stop()
	fail := func(err error) (report.Row, error) {
		stop()
		return row, fmt.Errorf("%w\nserver log:\n%s", err, tail(filepath.Join(dir, "server.log"), 2000))
	}
	base := "http://" + addr
	ready := base + "/ready"
	if sc.Floor {
		ready = base + "/"
	}
	if err := waitReady(ctx, ready, 30*time.Second); err != nil {
		return fail(err)
	}
	for _, p := range sc.Plugins {
		if err := upload(ctx, o.Root, base, admin, p); err != nil {
			return fail(fmt.Errorf("plugin %s: %w", p.Name, err))
		}
	}
	target := load.Target{URL: base + "/api/v1/collect", Keys: keys}
	lo := load.Options{Concurrency: o.Concurrency, Rate: rate, Duration: o.Duration}
	if rate > 0 {
		lo.Concurrency = 0 // the open loop's default in-flight limit
	}
	var profiled chan error
	if pprofAddr != "" {
		profiled = make(chan error, 1)
		go func() {
			// Starts with the warmup's end, give or take a scheduling delay.
			select {
			case <-time.After(o.Warmup):
			case <-ctx.Done():
			}
			secs := max(1, int(o.Duration.Seconds())-1)
			var natsProfiled chan error
			if ns != nil && ns.prof != "" {
				natsProfiled = make(chan error, 1)
				go func() {
					natsProfiled <- fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", ns.prof, secs),
						filepath.Join(o.ProfileDir, sc.Name+".nats-server.cpu.pprof"))
				}()
			}
			err := fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, secs),
				filepath.Join(o.ProfileDir, sc.Name+".cpu.pprof"))
			if natsProfiled != nil {
				if nerr := <-natsProfiled; err == nil && nerr != nil {
					err = fmt.Errorf("nats-server: %w", nerr)
				}
			}
			profiled <- err
		}()
	}
	if lag != nil {
		lag.since(time.Now().Add(o.Warmup)) // the measured run's records
	}
	var natsCPU0 time.Duration
	if ns != nil {
		natsCPU0, _ = cpuTime(ns.pid)
	}
	measured := time.Now().Add(o.Warmup)
	got, err := Drive(ctx, target, bodies, lo, o.Warmup, cmd.Process.Pid)
	if err != nil {
		return fail(err)
	}
	var fwdNote string
	if ns != nil {
		natsCPU1, _ := cpuTime(ns.pid)
		natsCores := float64(natsCPU1-natsCPU0) / float64(time.Since(measured))
		fwdNote = fmt.Sprintf("nats-server CPU %.2f", natsCores)
		if lag == nil {
			d, err := drained(ctx, base, natsURL)
			if err != nil {
				return fail(err)
			}
			fwdNote += fmt.Sprintf("; the stream had every record %.1f s after the load stopped", d.Seconds())
		}
	}
	if profiled != nil {
		if err := <-profiled; err != nil {
			return fail(fmt.Errorf("cpu profile: %w", err))
		}
		if err := fetch(ctx, "http://"+pprofAddr+"/debug/pprof/allocs", filepath.Join(o.ProfileDir, sc.Name+".allocs.pprof")); err != nil {
			return fail(fmt.Errorf("allocation profile: %w", err))
		}
		if err := fetch(ctx, base+"/metrics", filepath.Join(o.ProfileDir, sc.Name+".metrics.txt")); err != nil {
			return fail(fmt.Errorf("metrics: %w", err))
		}
	}
	got.Scenario, got.Encoding, got.Projects, got.Plugins, got.Retention = row.Scenario, row.Encoding, row.Projects, row.Plugins, row.Retention
	if sc.Floor {
		got.Accepted = 0
	}
	row = got
	if lag != nil {
		row.Note = lag.note(ctx)
	}
	if fwdNote != "" {
		row.Note = strings.TrimPrefix(row.Note+"; "+fwdNote, "; ")
	}
	if err := stop(); err != nil {
		return fail(fmt.Errorf("stop: %w", err))
	}
	return row, nil
}

// Drive loads a target: warmup (not measured), then the measured run. If
// pid is not 0 it is the server's process on this machine, whose CPU and
// RSS are sampled during the measured run.
func Drive(ctx context.Context, t load.Target, bodies []load.Body, lo load.Options, warmup time.Duration, pid int) (report.Row, error) {
	var row report.Row
	if warmup > 0 {
		wo := lo
		wo.Duration, wo.Requests = warmup, 0
		if _, err := load.Run(ctx, t, bodies, wo); err != nil {
			return row, fmt.Errorf("warmup: %w", err)
		}
	}
	var smp *sampler
	if pid != 0 {
		var err error
		if smp, err = startSampler(pid, 100*time.Millisecond); err != nil {
			return row, err
		}
	}
	self0, _ := cpuTime(os.Getpid())
	start := time.Now()
	res, err := load.Run(ctx, t, bodies, lo)
	self1, _ := cpuTime(os.Getpid())
	genCores := float64(self1-self0) / float64(time.Since(start))
	var st procStats
	if smp != nil {
		st = smp.finish()
	}
	if err != nil {
		return row, err
	}
	row.EventsPerSec, row.RequestsPerSec = res.EventsPerSec(), res.RequestsPerSec()
	row.WireMBps, row.RawMBps = res.WireMBps(), res.RawMBps()
	row.P50, row.P90, row.P99, row.P999 = res.Percentile(0.50), res.Percentile(0.90), res.Percentile(0.99), res.Percentile(0.999)
	row.Errors = res.Errors
	row.ServerCPU, row.ServerPeakRSS, row.ServerMedianRSS = st.Cores, st.PeakRSS, st.MedianRSS
	row.Note = fmt.Sprintf("load generator CPU %.2f", genCores)
	if st.MedianAnon > 0 {
		row.Note = join(row.Note, fmt.Sprintf("anon RSS %d MiB", st.MedianAnon>>20))
	}
	if lo.Rate > 0 {
		row.Note = join(row.Note, fmt.Sprintf("open loop at %.0f req/s", lo.Rate))
	}
	if res.Events > 0 {
		row.Accepted = float64(res.Accepted) / float64(res.Events)
	}
	if res.Quarantined > 0 {
		row.Note = join(row.Note, fmt.Sprintf("%d quarantined", res.Quarantined))
	}
	if res.Dropped > 0 {
		row.Note = join(row.Note, fmt.Sprintf("%d not sent (late)", res.Dropped))
	}
	if res.OK == 0 {
		return row, fmt.Errorf("no request succeeded: %s", res)
	}
	return row, nil
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// Provision creates n projects (bench-0000 …) in a fresh data dir with every
// channel on, so that every generated event is stored, and returns their
// ingest keys and the first project's admin key.
func Provision(dataDir string, n int) (ingest []string, admin string, err error) {
	st, err := storage.Open(storage.Options{Dir: dataDir, DisableAggregation: true, MinFreeDisk: -1})
	if err != nil {
		return nil, "", err
	}
	defer func() {
		if cerr := st.Close(); err == nil {
			err = cerr
		}
	}()
	reg := st.Registry()
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("bench-%04d", i)
		k, err := reg.CreateProject(id)
		if err != nil {
			return nil, "", err
		}
		if err := reg.SetChannels(id, core.AllChannels()); err != nil {
			return nil, "", err
		}
		ingest = append(ingest, k.Ingest)
		if i == 0 {
			admin = k.Admin
		}
	}
	return ingest, admin, nil
}

func upload(ctx context.Context, root, base, admin string, p Plugin) error {
	wasm, err := os.ReadFile(filepath.Join(root, p.File))
	if err != nil {
		return err
	}
	q := url.Values{"config": {p.Config}}
	req, err := http.NewRequestWithContext(ctx, "PUT", base+"/api/v1/plugins/"+p.Name+"?"+q.Encode(), bytes.NewReader(wasm))
	if err != nil {
		return err
	}
	req.Header.Set("x-api-key", admin)
	req.Header.Set("Content-Type", "application/wasm")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusCreated {
		return fmt.Errorf("upload: %d %s", res.StatusCode, body)
	}
	return nil
}

// fetch saves what a GET of u answers to path.
func fetch(ctx context.Context, u, path string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return fmt.Errorf("%s: %d", u, res.StatusCode)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// freeAddr finds a free loopback port.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitReady(ctx context.Context, u string, within time.Duration) error {
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == 200 {
				return nil
			}
			err = fmt.Errorf("%s: %d", u, res.StatusCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready within %s: %v", within, last)
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
