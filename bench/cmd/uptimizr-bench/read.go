package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/uptimizr/edge/bench/report"
	"github.com/uptimizr/edge/bench/suite"
)

// runRead runs the read scenario and writes read.md and read.json to the
// results folder (bench/results/<UTC time>-read by default).
func runRead(args []string) error {
	fs := flag.NewFlagSet("read", flag.ContinueOnError)
	out := fs.String("out", "", "results folder (default bench/results/<UTC time>-read)")
	events := fs.Int64("events", 10_000_000, "events to load before the reads")
	requests := fs.Int("requests", 50, "requests per route, one after the other")
	sessionEvents := fs.Int("session-events", 1000, "about how many events each session gets")
	batch := fs.Int("batch", 200, "events per request of the load")
	conc := fs.Int("concurrency", 16, "connections of the load, each sending back to back")
	bodies := fs.Int("bodies", 64, "distinct generated batches the sessions are made of")
	seed := fs.Int64("seed", 1, "generator seed")
	retention := fs.Bool("retention", false, "run the collector with raw session retention (the funnel and session replay then answer 200, not 403)")
	target := fs.Duration("target", 50*time.Millisecond, "the p99 each route must meet")
	catchUp := fs.Duration("catchup-timeout", 10*time.Minute, "how long to wait for the aggregator to catch up after the load")
	collector := fs.String("collector", "", "uptimizr-edge binary (default: built from this checkout)")
	keep := fs.Bool("keep", false, "keep the loaded data dir (its path is printed) for -reuse")
	reuse := fs.String("reuse", "", "a directory -keep left: time the routes on it without loading")
	profile := fs.String("profile", "", "write the collector's CPU profile over the reads to this file")
	profileSeconds := fs.Int("profile-seconds", 120, "how long the -profile lasts from the first read")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if *out == "" {
		*out = filepath.Join(root, "bench", "results", time.Now().UTC().Format("2006-01-02T150405Z")+"-read")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *collector == "" {
		dir, err := os.MkdirTemp("", "uptimizr-read-bin-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		*collector = filepath.Join(dir, "uptimizr-edge")
		fmt.Fprintln(os.Stderr, "building", *collector)
		b := exec.CommandContext(ctx, "go", "build", "-o", *collector, "./cmd/uptimizr-edge")
		b.Dir, b.Stdout, b.Stderr = root, os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			return fmt.Errorf("build the collector: %w", err)
		}
	}
	r, err := suite.RunRead(ctx, suite.ReadOptions{
		Collector: *collector, Events: *events, SessionEvents: *sessionEvents, BatchSize: *batch, Concurrency: *conc,
		Bodies: *bodies, Seed: *seed, Requests: *requests, Target: *target, Retention: *retention,
		CatchUpTimeout: *catchUp, Progress: os.Stderr,
		Keep: *keep, Reuse: *reuse, Profile: *profile, ProfileSeconds: *profileSeconds,
	})
	if r != nil && len(r.Routes) > 0 {
		if werr := writeRead(*out, r); werr != nil && err == nil {
			err = werr
		}
		fmt.Fprintln(os.Stderr, "results in", *out)
	}
	if err != nil {
		return err
	}
	if _, _, _, withErrors := r.Tally(); withErrors > 0 {
		return fmt.Errorf("%d routes answered errors (see the report's Errors section)", withErrors)
	}
	return nil
}

func writeRead(dir string, r *report.Read) error {
	return writeFiles(dir, []reportFile{
		{"read.md", func(w *os.File) error { return report.ReadMarkdown(w, r) }},
		{"read.json", func(w *os.File) error { return report.ReadJSON(w, r) }},
	})
}
