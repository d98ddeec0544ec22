package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/uptimizr/edge/bench/suite"
)

func runNeighbour(args []string) error {
	fs := flag.NewFlagSet("neighbour", flag.ContinueOnError)
	rounds := fs.Int("rounds", 3, "pairs of phases: B alone, then B beside A's spinning plugin")
	phase := fs.Duration("phase", 5*time.Second, "measured time of each phase")
	rate := fs.Float64("rate", 200, "B's requests per second (open loop)")
	spinners := fs.Int("spinners", 8, "A's connections, each sending back to back")
	batch := fs.Int("batch", 50, "events per request")
	env := fs.String("env", "", "extra collector environment, comma separated KEY=VALUE pairs")
	collector := fs.String("collector", "", "uptimizr-edge binary (default: built from this checkout)")
	control := fs.Bool("control", false, "add a phase per round: B beside idle-class busy loops outside the collector (the ratio's floor on this machine)")
	hogs := fs.Int("hogs", 0, "the control's busy loops (default: one per core)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *collector == "" {
		dir, err := os.MkdirTemp("", "uptimizr-neighbour-bin-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		*collector = filepath.Join(dir, "uptimizr-edge")
		b := exec.CommandContext(ctx, "go", "build", "-o", *collector, "./cmd/uptimizr-edge")
		b.Dir, b.Stdout, b.Stderr = root, os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			return fmt.Errorf("build the collector: %w", err)
		}
	}
	var extra []string
	if *env != "" {
		extra = strings.Split(*env, ",")
	}
	res, err := suite.RunNeighbour(ctx, suite.NeighbourOptions{Collector: *collector, Root: root, Phase: *phase, Rounds: *rounds,
		Rate: *rate, Spinners: *spinners, BatchSize: *batch, Env: extra, Progress: os.Stderr, Control: *control, Hogs: *hogs})
	if err != nil {
		return err
	}
	fmt.Printf("B's p99, median of %d rounds: alone %.2f ms, beside A's spinning plugin %.2f ms: %.2f×\n",
		*rounds, float64(res.AloneP99)/1e6, float64(res.BesideP99)/1e6, res.Ratio)
	fmt.Printf("B's p50, median of %d rounds: alone %.2f ms, beside %.2f ms\n", *rounds, float64(res.AloneP50)/1e6, float64(res.BesideP50)/1e6)
	if *control {
		fmt.Printf("B's p99 beside idle-class busy loops outside the collector: %.2f ms: %.2f× (A's plugin: %.2f× of that)\n",
			float64(res.HogP99)/1e6, res.HogRatio, float64(res.BesideP99)/float64(max(res.HogP99, 1)))
	}
	return nil
}
