// Command uptimizr-bench is the load benchmark suite of Uptimizr Edge.
//
//	uptimizr-bench suite [-out DIR] [-run REGEX] [-duration 10s] …
//	    runs the scenarios side by side against a collector it builds and
//	    starts on loopback, and writes results.md, results.svg and
//	    results.json to DIR.
//	uptimizr-bench soak [-duration 30m] [-every 5s] [-rate N] …
//	    runs the collector with retention and a plugin at half load for a
//	    long time, samples its memory, goroutines, open files, data dir and
//	    p99, and writes soak.md, soak.svg and soak.json to DIR.
//	uptimizr-bench load -url URL -keys K1,K2 [-encoding gzip] [-rate N] …
//	    drives one collector (local or remote) and prints the figures.
//	uptimizr-bench floor [-addr HOST:PORT]
//	    serves the floor handler (read the body, answer 200).
//	uptimizr-bench neighbour [-rounds 3] [-phase 5s] [-rate 200] …
//	    the noisy-neighbour scenario (bench/suite/neighbour.go).
//	uptimizr-bench read [-events 10000000] [-requests 50] [-retention] …
//	    loads a collector through its ingest endpoint, waits for its
//	    aggregator, then times every read route of the API one request at
//	    a time, and writes read.md and read.json (bench/suite/read.go).
//	uptimizr-bench ab -base REV [-run ^ingest$] [-rounds 3] …
//	    builds the collector at REV and from the work tree, runs the same
//	    scenarios on both, alternately, in one run, and reports each one's
//	    CPU per event, events/s and p99 with the ratios (ab.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/uptimizr/edge/bench/load"
	"github.com/uptimizr/edge/bench/report"
	"github.com/uptimizr/edge/bench/suite"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "suite":
		err = runSuite(os.Args[2:])
	case "soak":
		err = runSoak(os.Args[2:])
	case "load":
		err = runLoad(os.Args[2:])
	case "floor":
		err = floor(os.Args[2:])
	case "neighbour":
		err = runNeighbour(os.Args[2:])
	case "fixtures":
		err = runFixtures(os.Args[2:])
	case "fleet":
		err = runFleet(os.Args[2:])
	case "ab":
		err = runAB(os.Args[2:])
	case "read":
		err = runRead(os.Args[2:])
	case "control":
		err = runControl(os.Args[2:])
	case "-h", "--help", "help":
		usage()
		return
	default:
		usage()
		os.Exit(2)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "uptimizr-bench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  uptimizr-bench suite [flags]   run the scenarios and write a report (see -h)
  uptimizr-bench soak  [flags]   run the soak (30 min by default) and write its report (see -h)
  uptimizr-bench load  [flags]   load one collector and print the figures (see -h)
  uptimizr-bench floor [flags]   serve the floor handler
  uptimizr-bench neighbour [flags]  a project's p99 alone and beside one whose plugin spins (see -h)
  uptimizr-bench fixtures [-out D]  write the repository's sample batches (testdata/fixtures)
  uptimizr-bench fleet -collector BIN -nats BIN  a nats-server, a hub and two edges on loopback (go tool task fleet)
  uptimizr-bench control [-nodes 2,10]           a fleet revision's time to reach N nodes, and a hot reload's cost on ingest
  uptimizr-bench ab -base REV [-run REGEX] [-rounds 3]  the same scenarios on REV and the work tree, alternately (see -h)
  uptimizr-bench read [flags]    load a collector, then time every read route, p50/p99 per route (see -h)
`)
}

func runSuite(args []string) error {
	fs := flag.NewFlagSet("suite", flag.ContinueOnError)
	out := fs.String("out", "", "results folder (default bench/results/<UTC time>)")
	run := fs.String("run", "", "only the scenarios whose names match this regexp")
	duration := fs.Duration("duration", 10*time.Second, "measured time per scenario")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured load before each measurement")
	conc := fs.Int("concurrency", 16, "connections of the closed loop")
	batch := fs.Int("batch", 200, "events per request")
	bodies := fs.Int("bodies", 64, "distinct request bodies per encoding")
	seed := fs.Int64("seed", 1, "generator seed")
	collector := fs.String("collector", "", "uptimizr-edge binary (default: built from this checkout)")
	natsBin := fs.String("nats", "", "nats-server binary for the forward and hub scenarios (default: built from its Go module)")
	list := fs.Bool("list", false, "list the scenarios and exit")
	profile := fs.Bool("profile", false, "save CPU and allocation profiles of the collector per scenario in the results folder")
	if err := fs.Parse(args); err != nil {
		return err
	}
	scenarios, err := suite.Select(suite.Default(), *run)
	if err != nil {
		return err
	}
	if *list {
		for _, s := range scenarios {
			fmt.Println(s.Name)
		}
		return nil
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
	needNATS := false
	for _, s := range scenarios {
		needNATS = needNATS || s.Forward || s.Hub
	}
	if needNATS && *natsBin == "" {
		*natsBin = filepath.Join(*out, "nats-server")
		fmt.Fprintln(os.Stderr, "building", *natsBin)
		b := exec.CommandContext(ctx, "go", "build", "-o", *natsBin, "github.com/nats-io/nats-server/v2")
		b.Dir, b.Stdout, b.Stderr = root, os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			return fmt.Errorf("build nats-server: %w", err)
		}
		defer os.Remove(*natsBin)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	profileDir := ""
	if *profile {
		profileDir = *out
	}
	machine := report.DetectMachine()
	fmt.Fprintf(os.Stderr, "%d scenarios × (%s + %s warmup) on %s, %d cores\n", len(scenarios), *duration, *warmup, machine.CPUModel, machine.Cores)
	rows, err := suite.Run(ctx, suite.Options{
		Collector: *collector, NATS: *natsBin, Floor: self, Root: root,
		Duration: *duration, Warmup: *warmup, Concurrency: *conc, BatchSize: *batch, Bodies: *bodies, Seed: *seed,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)), Progress: os.Stderr, ProfileDir: profileDir,
	}, scenarios)
	if len(rows) > 0 {
		if werr := write(*out, machine, rows); werr != nil && err == nil {
			err = werr
		}
		fmt.Fprintln(os.Stderr, "results in", *out)
	}
	return err
}

func write(dir string, m report.Machine, rows []report.Row) error {
	checks := suite.Targets(rows)
	return writeFiles(dir, []reportFile{
		{"results.md", func(w *os.File) error { return report.Markdown(w, m, rows, checks) }},
		{"results.svg", func(w *os.File) error { return report.SVG(w, "Uptimizr Edge load suite", rows) }},
		{"results.json", func(w *os.File) error { return report.JSON(w, m, rows) }},
	})
}

// reportFile is one file of a report and what writes it.
type reportFile struct {
	name  string
	write func(*os.File) error
}

// writeFiles writes a report's files to dir, then prints the first (the
// markdown) to standard output.
func writeFiles(dir string, files []reportFile) error {
	for _, f := range files {
		w, err := os.Create(filepath.Join(dir, f.name))
		if err != nil {
			return err
		}
		if err := f.write(w); err != nil {
			w.Close()
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, files[0].name))
	os.Stdout.Write(md)
	return nil
}

// repoRoot is the directory of the go.mod above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "cmd", "uptimizr-edge")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the uptimizr-edge checkout")
		}
		dir = parent
	}
}

func runLoad(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	u := fs.String("url", "http://127.0.0.1:4318/api/v1/collect", "collect endpoint")
	keys := fs.String("keys", "", "ingest API keys, comma separated (requests rotate over them)")
	keyFile := fs.String("key-file", "", "file with one ingest key per line (instead of -keys)")
	allowRemote := fs.Bool("allow-remote", false, "allow a URL that is not loopback")
	encoding := fs.String("encoding", "identity", "identity, gzip, zstd or br")
	batch := fs.Int("batch", 200, "events per request")
	bodies := fs.Int("bodies", 64, "distinct request bodies")
	seed := fs.Int64("seed", 1, "generator seed")
	conc := fs.Int("concurrency", 16, "closed loop: connections; open loop: most requests in flight")
	rate := fs.Float64("rate", 0, "open loop: requests per second (0 = closed loop)")
	duration := fs.Duration("duration", 10*time.Second, "measured time")
	requests := fs.Int("requests", 0, "stop after this many measured requests (0 = no limit)")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured load first")
	pid := fs.Int("pid", 0, "the collector's process id, to report its CPU and RSS (same machine only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pu, err := url.Parse(*u)
	if err != nil {
		return err
	}
	if !*allowRemote && !isLoopback(pu.Hostname()) {
		return fmt.Errorf("%s is not a loopback address; pass -allow-remote to load a node you operate", pu.Hostname())
	}
	var ks []string
	if *keyFile != "" {
		b, err := os.ReadFile(*keyFile)
		if err != nil {
			return err
		}
		ks = strings.Fields(string(b))
	} else {
		for _, k := range strings.Split(*keys, ",") {
			if k = strings.TrimSpace(k); k != "" {
				ks = append(ks, k)
			}
		}
	}
	if len(ks) == 0 {
		return errors.New("no key: pass -keys or -key-file")
	}
	body, err := suite.EncodeAll(suite.Bodies(*seed, *batch, *bodies), *encoding, *batch)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	row, err := suite.Drive(ctx, load.Target{URL: *u, Keys: ks}, body,
		load.Options{Concurrency: *conc, Rate: *rate, Duration: *duration, Requests: *requests}, *warmup, *pid)
	if err != nil {
		return err
	}
	row.Scenario, row.Encoding, row.Projects = "load", *encoding, len(ks)
	checks := []report.Check(nil)
	return report.Markdown(os.Stdout, report.DetectMachine(), []report.Row{row}, checks)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// resultsDir returns the repository's root and makes the results folder
// *out, by default bench/results/<prefix><UTC time>.
func resultsDir(out *string, prefix string) (root string, err error) {
	if root, err = repoRoot(); err != nil {
		return "", err
	}
	if *out == "" {
		*out = filepath.Join(root, "bench", "results", prefix+time.Now().UTC().Format("2006-01-02T150405Z"))
	}
	return root, os.MkdirAll(*out, 0o755)
}
