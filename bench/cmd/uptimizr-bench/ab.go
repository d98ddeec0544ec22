package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/uptimizr/edge/bench/report"
	"github.com/uptimizr/edge/bench/suite"
)

// runAB builds the collector at a base revision and from the work tree,
// runs the same scenarios on each, alternately, several times in one run,
// and reports each one's CPU per event, events/s and p99, with the ratios
// of the medians (work tree against base).
func runAB(args []string) error {
	fs := flag.NewFlagSet("ab", flag.ContinueOnError)
	base := fs.String("base", "", "the base revision (a commit, tag or branch; required)")
	run := fs.String("run", "^ingest$", "the scenarios whose names match this regexp")
	rounds := fs.Int("rounds", 3, "alternations: base then work tree, this many times")
	duration := fs.Duration("duration", 10*time.Second, "measured time per scenario")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured load before each measurement")
	conc := fs.Int("concurrency", 16, "connections of the closed loop")
	batch := fs.Int("batch", 200, "events per request")
	out := fs.String("out", "", "results folder (default bench/results/ab-<UTC time>)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *base == "" || *rounds < 1 {
		return fmt.Errorf("ab: -base is required and -rounds at least 1")
	}
	scenarios, err := suite.Select(suite.Default(), *run)
	if err != nil {
		return err
	}
	root, err := resultsDir(out, "ab-")
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	bins, err := os.MkdirTemp("", "uptimizr-ab-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bins)
	rev, err := gitOut(ctx, root, "rev-parse", "--verify", *base+"^{commit}")
	if err != nil {
		return fmt.Errorf("ab: base %q: %w", *base, err)
	}
	baseBin, headBin := filepath.Join(bins, "base"), filepath.Join(bins, "head")
	tree := filepath.Join(bins, "tree")
	if _, err := gitOut(ctx, root, "worktree", "add", "--detach", tree, rev); err != nil {
		return fmt.Errorf("ab: check out %s: %w", rev, err)
	}
	defer gitOut(context.Background(), root, "worktree", "remove", "--force", tree)
	for _, b := range []struct{ dir, bin string }{{tree, baseBin}, {root, headBin}} {
		fmt.Fprintln(os.Stderr, "building", b.bin, "from", b.dir)
		if err := goBuild(ctx, b.dir, b.bin, "./cmd/uptimizr-edge"); err != nil {
			return err
		}
	}
	natsBin := ""
	for _, s := range scenarios {
		if s.Forward || s.Hub {
			natsBin = filepath.Join(bins, "nats-server")
			if err := goBuild(ctx, root, natsBin, "github.com/nats-io/nats-server/v2"); err != nil {
				return err
			}
			break
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	opts := suite.Options{NATS: natsBin, Floor: self, Root: root, Duration: *duration, Warmup: *warmup,
		Concurrency: *conc, BatchSize: *batch, Bodies: 64, Seed: 1,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), Progress: os.Stderr}
	results := map[string]map[string][]report.Row{"base": {}, "head": {}} // version → scenario → rows
	for i := range *rounds {
		for _, v := range []struct{ name, bin string }{{"base", baseBin}, {"head", headBin}} {
			fmt.Fprintf(os.Stderr, "round %d of %d, %s\n", i+1, *rounds, v.name)
			o := opts
			o.Collector = v.bin
			rows, err := suite.Run(ctx, o, scenarios)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", i+1, v.name, err)
			}
			for _, r := range rows {
				results[v.name][r.Scenario] = append(results[v.name][r.Scenario], r)
			}
		}
	}
	var md strings.Builder
	writeAB(&md, report.DetectMachine(), *base, rev, *rounds, scenarios, results)
	if err := os.WriteFile(filepath.Join(*out, "ab.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	fmt.Print(md.String())
	fmt.Fprintln(os.Stderr, "results in", *out)
	return nil
}

// writeAB writes the A/B report: per scenario and version every round's
// figures, their medians, and the ratios of the medians.
func writeAB(w io.Writer, m report.Machine, base, rev string, rounds int, scenarios []suite.Scenario, results map[string]map[string][]report.Row) {
	fmt.Fprintf(w, "# A/B: %s (%.12s) against the work tree\n\n", base, rev)
	fmt.Fprintf(w, "%s, %d logical CPUs, %s, %s; %d rounds, base then work tree in each.\n\n", m.CPUModel, m.Cores, m.GoVersion, m.When.UTC().Format("2006-01-02 15:04 UTC"), rounds)
	fmt.Fprintln(w, "| scenario | version | events/s | CPU µs per event | p99 ms | RSS MiB | median events/s | median µs/event | median p99 ms | median RSS MiB |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---:|---:|---:|---:|")
	type med struct{ eps, cpu, p99, rss float64 }
	meds := map[string]map[string]med{}
	for _, sc := range scenarios {
		meds[sc.Name] = map[string]med{}
		for _, v := range []string{"base", "head"} {
			rows := results[v][sc.Name]
			if len(rows) == 0 {
				continue
			}
			var eps, cpu, p99, rss []float64
			var e, c, p, m []string
			for _, r := range rows {
				us := 0.0
				if r.EventsPerSec > 0 {
					us = r.ServerCPU / r.EventsPerSec * 1e6
				}
				eps, cpu, p99 = append(eps, r.EventsPerSec), append(cpu, us), append(p99, float64(r.P99)/1e6)
				e, c, p = append(e, fmt.Sprintf("%.0f", r.EventsPerSec)), append(c, fmt.Sprintf("%.2f", us)), append(p, fmt.Sprintf("%.1f", float64(r.P99)/1e6))
				mib := float64(r.ServerMedianRSS) / (1 << 20)
				rss, m = append(rss, mib), append(m, fmt.Sprintf("%.0f", mib))
			}
			md := med{median(eps), median(cpu), median(p99), median(rss)}
			meds[sc.Name][v] = md
			name := "work tree"
			if v == "base" {
				name = "base"
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %.0f | %.2f | %.1f | %.0f |\n", sc.Name, name, strings.Join(e, ", "), strings.Join(c, ", "), strings.Join(p, ", "), strings.Join(m, ", "), md.eps, md.cpu, md.p99, md.rss)
		}
	}
	fmt.Fprintln(w, "\n| scenario | events/s, work tree ÷ base | CPU per event, work tree ÷ base | p99, work tree ÷ base | RSS, work tree ÷ base |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	ratio := func(a, b float64) string {
		if b == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f×", a/b)
	}
	for _, sc := range scenarios {
		b, okb := meds[sc.Name]["base"]
		h, okh := meds[sc.Name]["head"]
		if !okb || !okh {
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", sc.Name, ratio(h.eps, b.eps), ratio(h.cpu, b.cpu), ratio(h.p99, b.p99), ratio(h.rss, b.rss))
	}
	fmt.Fprintln(w, "\nCPU per event is the collector's average cores over its events/s; RSS is the median of its resident memory sampled during the run. A scenario without latency or samples (hub) has 0 there.")
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func gitOut(ctx context.Context, dir string, args ...string) (string, error) {
	c := exec.CommandContext(ctx, "git", args...)
	c.Dir = dir
	var stderr strings.Builder
	c.Stderr = &stderr
	b, err := c.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(b)), nil
}

func goBuild(ctx context.Context, dir, out, pkg string) error {
	c := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	c.Dir, c.Stdout, c.Stderr = dir, os.Stderr, os.Stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("build %s in %s: %w", pkg, dir, err)
	}
	return nil
}
