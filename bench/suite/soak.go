package suite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/uptimizr/edge/bench/load"
	"github.com/uptimizr/edge/bench/report"
)

// SoakScenario is what a soak runs: the collector with raw session
// retention on and the AssemblyScript pii-redact plugin active, one
// project, identity bodies.
func SoakScenario() Scenario {
	return Scenario{Name: "soak", Encoding: "identity", Retention: true, Plugins: []Plugin{PIIRedactAS}}
}

// SoakOptions configure a soak.
type SoakOptions struct {
	Collector string // the uptimizr-edge binary
	Root      string // repository root, for the plugin module
	// Duration of the load (default 30 minutes).
	Duration time.Duration
	// Every is the sampling interval (default 5 s): each sample closes a
	// window of the load generator's figures.
	Every time.Duration
	// WarmupShare is the share of Duration left out of the fits (default
	// 0.1: the first 3 minutes of 30).
	WarmupShare float64
	// Rate is the open loop's requests per second. 0 measures the
	// closed-loop maximum of the same configuration first, on a collector
	// of its own, for Calibrate (default 20 s, after a 2 s warmup), and
	// runs at half of it, as the suite's half-load row does.
	Rate      float64
	Calibrate time.Duration
	// Concurrency of the calibration's closed loop (default 16).
	Concurrency int
	BatchSize   int   // events per request (default 200)
	Bodies      int   // distinct request bodies (default 64)
	Seed        int64 // generator seed (default 1)
	Logger      *slog.Logger
	// Progress, if set, receives a line about every minute.
	Progress io.Writer
	// Notes go to the summary as they are (what else ran on the machine).
	Notes []string
	// ProfileDir, if set, receives a heap profile of the collector (taken
	// after a GC) each time its heap in use reaches a new high after the
	// warm-up, soak.heap-peak.pprof (the last one kept), and its log,
	// soak.server.log, when it logged anything.
	ProfileDir string
}

func (o *SoakOptions) defaults() {
	if o.Duration <= 0 {
		o.Duration = 30 * time.Minute
	}
	if o.Every <= 0 {
		o.Every = 5 * time.Second
	}
	if o.WarmupShare <= 0 || o.WarmupShare >= 1 {
		o.WarmupShare = 0.1
	}
	if o.Calibrate <= 0 {
		o.Calibrate = 20 * time.Second
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

// Soak runs the soak: the collector under half load for Duration, sampled
// every Every, then stopped with SIGTERM. The result holds the samples and
// their analysis (AnalyzeSoak).
func Soak(ctx context.Context, o SoakOptions) (*report.Soak, error) {
	o.defaults()
	sc := SoakScenario()
	run := &report.Soak{
		Machine: report.DetectMachine(), Scenario: sc.Name, Encoding: sc.Encoding, Retention: sc.Retention,
		Duration: o.Duration, Every: o.Every, Warmup: time.Duration(float64(o.Duration) * o.WarmupShare),
		BatchSize: o.BatchSize, Notes: o.Notes,
	}
	for _, p := range sc.Plugins {
		run.Plugins = append(run.Plugins, p.Name)
	}
	bodies, err := EncodeAll(Bodies(o.Seed, o.BatchSize, o.Bodies), sc.Encoding, o.BatchSize)
	if err != nil {
		return nil, err
	}
	run.Rate = o.Rate
	if run.Rate <= 0 {
		cal := sc
		cal.Name = "soak-calibration"
		rows, err := Run(ctx, Options{Collector: o.Collector, Root: o.Root, Duration: o.Calibrate, Warmup: 2 * time.Second,
			Concurrency: o.Concurrency, BatchSize: o.BatchSize, Bodies: o.Bodies, Seed: o.Seed, Logger: o.Logger}, []Scenario{cal})
		if err != nil {
			return nil, fmt.Errorf("calibration: %w", err)
		}
		run.Calibration, run.CalibrationTime = &rows[0], o.Calibrate
		if run.Rate = rows[0].RequestsPerSec / 2; run.Rate <= 0 {
			return nil, errors.New("calibration: no request succeeded")
		}
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "closed-loop maximum %.0f req/s (%.0f events/s): the soak runs at %.0f req/s\n",
				rows[0].RequestsPerSec, rows[0].EventsPerSec, run.Rate)
		}
	}

	dir, err := os.MkdirTemp("", "uptimizr-soak-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	dataDir := filepath.Join(dir, "data")
	keys, admin, err := Provision(dataDir, 1)
	if err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	pprofAddr := ""
	if o.ProfileDir != "" {
		if pprofAddr, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	c, err := startSoakCollector(ctx, o.Collector, sc, dataDir, filepath.Join(dir, "server.log"), pprofAddr)
	if err != nil {
		return nil, err
	}
	defer c.stop()
	if o.ProfileDir != "" {
		defer func() {
			if b, err := os.ReadFile(c.logPath); err == nil && len(b) > 0 {
				os.WriteFile(filepath.Join(o.ProfileDir, "soak.server.log"), b, 0o644)
			}
		}()
	}
	fail := func(err error) (*report.Soak, error) {
		c.stop()
		return run, fmt.Errorf("%w\nserver log:\n%s", err, tail(c.logPath, 2000))
	}
	if err := waitReady(ctx, c.base+"/ready", 30*time.Second); err != nil {
		return fail(err)
	}
	for _, p := range sc.Plugins {
		if err := upload(ctx, o.Root, c.base, admin, p); err != nil {
			return fail(fmt.Errorf("plugin %s: %w", p.Name, err))
		}
	}

	smp := &soakSampler{pid: c.cmd.Process.Pid, dataDir: dataDir, metricsURL: c.base + "/metrics", pprofAddr: pprofAddr, profileDir: o.ProfileDir,
		warmup: run.Warmup, duration: o.Duration, progress: o.Progress, rate: run.Rate}
	if smp.cpu0, err = cpuTime(smp.pid); err != nil {
		return fail(err)
	}
	smp.self0, _ = cpuTime(os.Getpid())
	smp.machine0, smp.iowait0, _ = machineBusy()
	smp.majflt0, _ = majorFaults(smp.pid)
	smp.sampledAt = time.Now()
	run.Started = time.Now().UTC()
	res, err := load.Run(ctx, load.Target{URL: c.base + "/api/v1/collect", Keys: keys}, bodies, load.Options{
		Rate: run.Rate, Duration: o.Duration, Window: o.Every, OnWindow: smp.window,
	})
	run.Samples = smp.samples
	for i := range run.Phases {
		run.Phases[i] = smp.phases[i].summary()
	}
	run.AfterWarmup = smp.after.summary()
	if res != nil {
		run.Requests, run.OK, run.Dropped, run.Errors = res.Requests, res.OK, res.Dropped, res.Errors
		run.Events, run.Accepted, run.Quarantined = res.Events, res.Accepted, res.Quarantined
	}
	if err != nil {
		// Interrupted: what was sampled so far is still worth a report.
		if len(run.Samples) > 0 {
			last := run.Samples[len(run.Samples)-1].At
			run.Notes = append(run.Notes, fmt.Sprintf("The run was interrupted after %s of %s (%v): the fits and phases cover what was sampled.",
				last.Round(time.Second), o.Duration, err))
			AnalyzeSoak(run)
		}
		return fail(fmt.Errorf("load: %w", err))
	}
	if err := c.stop(); err != nil {
		AnalyzeSoak(run)
		return fail(fmt.Errorf("stop: %w", err))
	}
	run.StoppedCleanly = true
	AnalyzeSoak(run)
	return run, nil
}

// soakCollector is the collector process of a soak.
type soakCollector struct {
	cmd     *exec.Cmd
	base    string
	logPath string
	logf    *os.File
	stopped bool
	err     error
}

// startSoakCollector starts the collector as the suite does (rate limits
// off, warn logs, the scenario's retention), on a free loopback port.
func startSoakCollector(ctx context.Context, bin string, sc Scenario, dataDir, logPath, pprofAddr string) (*soakCollector, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "serve", "--data-dir", dataDir, "--addr", addr)
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
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	return &soakCollector{cmd: cmd, base: "http://" + addr, logPath: logPath, logf: logf}, nil
}

// stop ends the collector with SIGTERM (a clean shutdown is part of the
// run), and kills it if it has not stopped within 30 s.
func (c *soakCollector) stop() error {
	if c.stopped {
		return c.err
	}
	c.stopped = true
	defer c.logf.Close()
	c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case c.err = <-done:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		c.err = errors.New("the server did not stop within 30 s of SIGTERM")
	}
	return c.err
}

// soakSampler takes a sample of the collector at the end of each window of
// the load, and pools the windows' latencies by phase.
type soakSampler struct {
	pid        int
	dataDir    string
	metricsURL string
	warmup     time.Duration
	duration   time.Duration
	rate       float64
	progress   io.Writer

	start        time.Time
	cpu0, cpuAt  time.Duration // the collector's CPU time
	self0        time.Duration // the load generator's
	machine0     time.Duration // every process's
	iowait0      time.Duration // the machine's idle time waiting for I/O
	majflt0      int64         // the collector's major page faults
	sampledAt    time.Time     // when the CPU figures were last read
	accepted     int64
	lastProgress time.Duration
	pprofAddr    string // the collector's pprof, "" for none
	profileDir   string
	heapHigh     int64 // the highest heap in use after the warm-up
	samples      []report.SoakSample
	phases       [3]latencyPool // thirds of the run after the warm-up
	after        latencyPool    // all of it after the warm-up
}

// latencyPool merges the windows of one phase.
type latencyPool struct {
	from, to time.Duration
	hist     load.Histogram
}

func (p *latencyPool) summary() report.SoakPhase {
	return report.SoakPhase{From: p.from, To: p.to, Requests: p.hist.Count(),
		P50: p.hist.Percentile(0.50), P99: p.hist.Percentile(0.99), P999: p.hist.Percentile(0.999), Max: p.hist.Max()}
}

// phaseOf is the third after the warm-up that time t (since the start)
// falls in, or -1 during the warm-up.
func phaseOf(t, warmup, duration time.Duration) int {
	if t < warmup {
		return -1
	}
	span := duration - warmup
	if span <= 0 {
		return 2
	}
	return min(2, int(3*(t-warmup)/span))
}

func (s *soakSampler) window(w *load.WindowStats) {
	if s.start.IsZero() {
		s.start = w.Start
		s.cpuAt = s.cpu0
		third := (s.duration - s.warmup) / 3
		for i := range s.phases {
			s.phases[i].from = s.warmup + time.Duration(i)*third
			s.phases[i].to = s.phases[i].from + third
		}
		s.after.from, s.after.to = s.warmup, s.duration
	}
	at := w.End.Sub(s.start)
	mid := (w.Start.Sub(s.start) + at) / 2
	if k := phaseOf(mid, s.warmup, s.duration); k >= 0 {
		s.phases[k].hist.Merge(&w.Latency)
		s.after.hist.Merge(&w.Latency)
	}
	s.accepted += w.Accepted
	smp := report.SoakSample{
		At: at, Window: w.End.Sub(w.Start),
		Requests: w.Requests, OK: w.OK, Errors: w.Errors, Dropped: w.Dropped, Events: w.Events, Accepted: w.Accepted,
		AcceptedTotal: s.accepted,
		P50:           w.Latency.Percentile(0.50), P99: w.Latency.Percentile(0.99), Max: w.Latency.Max(),
	}
	if m, err := status(s.pid); err == nil {
		smp.RSS, smp.Anon, smp.File = m["VmRSS"], m["RssAnon"], m["RssFile"]
	}
	// CPU over the time since the previous reading, not the window's
	// length: a late sample (the machine busy, /metrics slow to answer)
	// covers more than a window.
	now := time.Now()
	if wall := now.Sub(s.sampledAt); wall > 0 {
		if cpu, err := cpuTime(s.pid); err == nil {
			smp.CPU = float64(cpu-s.cpuAt) / float64(wall)
			s.cpuAt = cpu
		}
		if cpu, err := cpuTime(os.Getpid()); err == nil {
			smp.SelfCPU = float64(cpu-s.self0) / float64(wall)
			s.self0 = cpu
		}
		if busy, iowait, err := machineBusy(); err == nil {
			smp.MachineCPU = float64(busy-s.machine0) / float64(wall)
			smp.IOWait = float64(iowait-s.iowait0) / float64(wall)
			s.machine0, s.iowait0 = busy, iowait
		}
		s.sampledAt = now
	}
	if n, err := majorFaults(s.pid); err == nil {
		smp.MajorFaults = n - s.majflt0
		s.majflt0 = n
	}
	smp.OpenFiles, smp.DataFiles, smp.DeletedFiles, smp.Sockets = openFiles(s.pid, s.dataDir)
	smp.DataDirBytes, smp.DataDirFiles = dirUsage(s.dataDir)
	if m, err := scrape(s.metricsURL); err == nil {
		smp.HeapInuse = int64(m["go_memstats_heap_inuse_bytes"])
		smp.HeapAlloc = int64(m["go_memstats_heap_alloc_bytes"])
		smp.HeapGoal = int64(m["go_memstats_next_gc_bytes"])
		smp.Goroutines = int64(m["go_goroutines"])
		smp.AggregatorLag = int64(m["uptimizr_aggregator_lag_records"])
	}
	s.samples = append(s.samples, smp)
	if s.pprofAddr != "" && mid >= s.warmup && smp.HeapInuse > s.heapHigh {
		s.heapHigh = smp.HeapInuse
		// A new high: what holds the heap now (gc=1: live objects only).
		err := fetch(context.Background(), "http://"+s.pprofAddr+"/debug/pprof/heap?gc=1", filepath.Join(s.profileDir, "soak.heap-peak.pprof"))
		if s.progress != nil {
			fmt.Fprintf(s.progress, "%6s  heap in use %d MiB, a new high: profile saved (%v)\n", at.Round(time.Second), smp.HeapInuse>>20, err)
		}
	}
	if s.progress != nil && at-s.lastProgress >= time.Minute {
		s.lastProgress = at
		fmt.Fprintf(s.progress, "%6s  %5.0f req/s  p99 %7.2f ms  rss %5d MiB (anon %4d)  heap %4d MiB  goroutines %4d  fds %4d (%d sockets)  data %6.2f GiB\n",
			at.Round(time.Second), float64(w.Requests)/smp.Window.Seconds(), float64(smp.P99)/1e6,
			smp.RSS>>20, smp.Anon>>20, smp.HeapInuse>>20, smp.Goroutines, smp.OpenFiles, smp.Sockets, float64(smp.DataDirBytes)/(1<<30))
	}
}

// machineBusy is the CPU time all the machine's processors spent busy
// (not idle nor waiting for I/O), and idle waiting for I/O, since boot,
// from /proc/stat.
func machineBusy() (busy, iowait time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: %q", line)
	}
	var nb, nw int64
	for i, v := range f[1:] {
		if i == 3 || i >= 8 { // idle; guest time is in user already
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %q", line)
		}
		if i == 4 {
			nw = n
		} else {
			nb += n
		}
	}
	return time.Duration(nb) * time.Second / clockTicks, time.Duration(nw) * time.Second / clockTicks, nil
}

// majorFaults reads a process's major page faults (pages it waited for
// from disk) from /proc/PID/stat.
func majorFaults(pid int) (int64, error) {
	f, err := statFields(pid, 10) // majflt is field 12
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(f[9], 10, 64)
}

// openFiles counts a process's file descriptors: all of them, those of
// files under dataDir, those of files deleted while still open, and
// sockets.
func openFiles(pid int, dataDir string) (all, data, deleted, sockets int64) {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return 0, 0, 0, 0
	}
	prefix := filepath.Clean(dataDir) + string(filepath.Separator)
	for _, e := range ents {
		all++
		target, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		switch {
		case strings.HasPrefix(target, "socket:"):
			sockets++
		case strings.HasSuffix(target, " (deleted)"):
			deleted++
		case strings.HasPrefix(target, prefix):
			data++
		}
	}
	return all, data, deleted, sockets
}

// dirUsage is the disk space the files under dir take (allocated blocks,
// not apparent sizes: Badger's files are sparse while being written) and
// how many files there are. Files deleted during the walk are skipped.
func dirUsage(dir string) (used, files int64) {
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		files++
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			used += st.Blocks * 512
		} else {
			used += info.Size()
		}
		return nil
	})
	return used, files
}

// scrape reads the unlabelled samples of a Prometheus text page.
func scrape(u string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return nil, fmt.Errorf("%s: %d", u, res.StatusCode)
	}
	return parseMetrics(res.Body)
}

// parseMetrics reads the samples without labels of the Prometheus text
// format; comments and labelled samples are skipped.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.ContainsRune(line, '{') {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		value, _, _ = strings.Cut(strings.TrimSpace(value), " ") // an optional timestamp follows
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		out[name] = v
	}
	return out, sc.Err()
}
