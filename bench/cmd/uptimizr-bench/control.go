package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/uptimizr/edge/bench/report"
	"github.com/uptimizr/edge/bench/suite"
)

// runControl is "uptimizr-bench control": a fleet revision's time from
// publish to the last of N node processes, and a hot reload's cost on a
// node's ingest (docs/FLEET.md).
func runControl(args []string) error {
	fs := flag.NewFlagSet("control", flag.ContinueOnError)
	out := fs.String("out", "", "results folder (default bench/results/<UTC time>-control)")
	nodes := fs.String("nodes", "2,10", "node counts, one run each")
	applies := fs.Int("applies", 50, "revisions published per node count")
	rate := fs.Float64("rate", 500, "ingest requests per second during the reload phases (open loop)")
	phase := fs.Duration("phase", 10*time.Second, "each reload phase, and each phase without revisions")
	rounds := fs.Int("rounds", 3, "rounds of a phase without revisions and a reloading one")
	every := fs.Duration("reload-every", 500*time.Millisecond, "how often a revision is published in a reloading phase")
	batch := fs.Int("batch", 50, "events per ingest request")
	collector := fs.String("collector", "", "uptimizr-edge binary (default: built from this checkout)")
	natsBin := fs.String("nats", "", "nats-server binary (default: built from its Go module)")
	plugin := fs.String("plugin", suite.PIIRedactAS.File, "a plugin module (relative to the repo) whose new version each reloading revision switches to; \"\" for none")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var counts []int
	for _, f := range strings.Split(*nodes, ",") {
		var n int
		if _, err := fmt.Sscan(f, &n); err != nil || n < 1 {
			return fmt.Errorf("-nodes %q: want counts such as 2,10", *nodes)
		}
		counts = append(counts, n)
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if *out == "" {
		*out = filepath.Join(root, "bench", "results", time.Now().UTC().Format("2006-01-02T150405Z")+"-control")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bin, err := os.MkdirTemp("", "uptimizr-control-bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	build := func(dst *string, name, pkg string) error {
		if *dst != "" {
			return nil
		}
		*dst = filepath.Join(bin, name)
		fmt.Fprintln(os.Stderr, "building", *dst)
		b := exec.CommandContext(ctx, "go", "build", "-o", *dst, pkg)
		b.Dir, b.Stdout, b.Stderr = root, os.Stderr, os.Stderr
		return b.Run()
	}
	if err := build(collector, "uptimizr-edge", "./cmd/uptimizr-edge"); err != nil {
		return err
	}
	if err := build(natsBin, "nats-server", "github.com/nats-io/nats-server/v2"); err != nil {
		return err
	}
	var module []byte
	if *plugin != "" {
		if module, err = os.ReadFile(filepath.Join(root, *plugin)); err != nil {
			return err
		}
	}
	machine := report.DetectMachine()
	started := time.Now().UTC()
	r, err := suite.RunControl(ctx, suite.ControlOptions{Collector: *collector, NATS: *natsBin, Nodes: counts, Applies: *applies,
		Rate: *rate, Phase: *phase, Rounds: *rounds, ReloadEvery: *every, BatchSize: *batch, Plugin: module, Progress: os.Stderr})
	if r != nil {
		if werr := writeControl(*out, machine, started, r); werr != nil && err == nil {
			err = werr
		}
		fmt.Fprintln(os.Stderr, "results in", *out)
	}
	return err
}

func writeControl(dir string, m report.Machine, started time.Time, r *suite.ControlResult) error {
	js, _ := json.MarshalIndent(struct {
		Machine report.Machine       `json:"machine"`
		Started time.Time            `json:"started"`
		Result  *suite.ControlResult `json:"result"`
	}{m, started, r}, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "control.json"), js, 0o644); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Uptimizr Edge control scenario\n\n%s, %d logical CPUs, %s; started %s.\n\n", m.CPUModel, m.Cores, m.GoVersion, started.Format("2006-01-02 15:04 UTC"))
	b.WriteString("## A revision's time to reach every node\n\nEach revision adds a new query key; its time runs from the publish to the last node answering that key 200 (polled every 5 ms). Target: p99 under 2 s.\n\n")
	b.WriteString("| nodes | revisions | p50 ms | p99 ms | max ms | verdict |\n|---:|---:|---:|---:|---:|---|\n")
	for _, run := range r.Runs {
		v := "PASS"
		if run.P99 >= 2000 {
			v = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %d | %d | %.0f | %.0f | %.0f | %s |\n", run.Nodes, run.Applies, run.P50, run.P99, run.Max, v)
	}
	what := "a new query key, gaze toggled"
	if r.PluginEachReload {
		what += ", and a new version of the project's plugin: its config changed; batches in flight finish on the version they began with"
	}
	fmt.Fprintf(&b, "\n## A hot reload's cost on ingest\n\nOne node under an open-loop ingest of %.0f requests/s; in the reloading phases a revision (%s) is published every %s. Every phase has the plugin in the chain. Phases alternate, the same load in each.\n\n", r.Rate, what, r.Every)
	b.WriteString("| round | phase | revisions | requests | errors | p50 ms | p99 ms |\n|---:|---|---:|---:|---:|---:|---:|\n")
	for _, ph := range r.Reload {
		name := "no revisions"
		if ph.Reloading {
			name = "reloading"
		}
		fmt.Fprintf(&b, "| %d | %s | %d | %d | %d | %.2f | %.2f |\n", ph.Round, name, ph.Revisions, ph.Requests, ph.Errors, ph.P50, ph.P99)
	}
	if r.PluginEachReload {
		fmt.Fprintf(&b, "\nAt the end the node's plugin was at version %d (the first revision's, then one per reloading revision).\n", r.PluginActive)
	}
	return os.WriteFile(filepath.Join(dir, "control.md"), []byte(b.String()), 0o644)
}
