package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/uptimizr/edge/bench/report"
	"github.com/uptimizr/edge/bench/suite"
)

// runSoak runs the soak scenario and writes soak.md, soak.svg and
// soak.json to the results folder.
func runSoak(args []string) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	out := fs.String("out", "", "results folder (default bench/results/<UTC time>)")
	duration := fs.Duration("duration", 30*time.Minute, "how long the load runs")
	every := fs.Duration("every", 5*time.Second, "sampling interval")
	warmup := fs.Float64("warmup-share", 0.1, "share of the run left out of the fits (the warm-up)")
	rate := fs.Float64("rate", 0, "requests per second (0 = half the closed-loop maximum, measured first)")
	calibrate := fs.Duration("calibrate", 20*time.Second, "how long the closed-loop maximum is measured")
	conc := fs.Int("concurrency", 16, "connections of the calibration's closed loop")
	batch := fs.Int("batch", 200, "events per request")
	bodies := fs.Int("bodies", 64, "distinct request bodies")
	seed := fs.Int64("seed", 1, "generator seed")
	collector := fs.String("collector", "", "uptimizr-edge binary (default: built from this checkout)")
	reanalyze := fs.String("reanalyze", "", "a results folder: analyse its soak.json again and rewrite its soak.md, soak.svg and soak.json, running nothing")
	profile := fs.Bool("profile", false, "save a heap profile of the collector at each new high of its heap after the warm-up, and its log, in the results folder")
	var notes multiFlag
	fs.Var(&notes, "note", "a note for the summary (repeatable), e.g. what else ran on the machine")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *reanalyze != "" {
		f, err := os.Open(filepath.Join(*reanalyze, "soak.json"))
		if err != nil {
			return err
		}
		s, err := report.ReadSoakJSON(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name(), err)
		}
		suite.AnalyzeSoak(s)
		return writeSoak(*reanalyze, s)
	}
	root, err := resultsDir(out, "")
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *collector == "" {
		*collector = filepath.Join(*out, "uptimizr-edge")
		fmt.Fprintln(os.Stderr, "building", *collector)
		b := exec.CommandContext(ctx, "go", "build", "-o", *collector, "./cmd/uptimizr-edge")
		b.Dir, b.Stdout, b.Stderr = root, os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			return fmt.Errorf("build the collector: %w", err)
		}
		defer os.Remove(*collector)
	}
	fmt.Fprintf(os.Stderr, "soak for %s, sampled every %s\n", *duration, *every)
	s, err := suite.Soak(ctx, suite.SoakOptions{
		Collector: *collector, Root: root, Duration: *duration, Every: *every, WarmupShare: *warmup,
		Rate: *rate, Calibrate: *calibrate, Concurrency: *conc, BatchSize: *batch, Bodies: *bodies, Seed: *seed,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)), Progress: os.Stderr, Notes: notes,
		ProfileDir: map[bool]string{true: *out}[*profile],
	})
	if s != nil && len(s.Samples) > 0 {
		if werr := writeSoak(*out, s); werr != nil && err == nil {
			err = werr
		}
		fmt.Fprintln(os.Stderr, "results in", *out)
	}
	return err
}

func writeSoak(dir string, s *report.Soak) error {
	title := fmt.Sprintf("Uptimizr Edge soak: %s at %.0f req/s for %s", s.Scenario, s.Rate, s.Duration)
	return writeFiles(dir, []reportFile{
		{"soak.md", func(w *os.File) error { return report.SoakMarkdown(w, s) }},
		{"soak.svg", func(w *os.File) error { return report.SoakSVG(w, title, s, suite.SoakPanels(s)) }},
		{"soak.json", func(w *os.File) error { return report.SoakJSON(w, s) }},
	})
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return fmt.Sprint([]string(*m)) }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
