package suite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uptimizr/edge/bench/load"
	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/storage"
)

// The noisy-neighbour scenario: one collector, two projects. Project B
// sends at a fixed rate (open loop), alone, then while project A's plugin
// spins on every batch until its deadline (plugins/testdata/spin, fed by
// closed-loop connections), alternately, several times; it reports B's
// p99 both ways and their ratio. It is its own command (uptimizr-bench
// neighbour), not a row of the suite: its figure is a ratio of phases
// within one run.

// SpinGuest is the committed plugin that spins on any batch of more than
// 16 events.
const SpinGuest = "plugins/testdata/spin/spin.wasm"

// NeighbourOptions configure the noisy-neighbour scenario.
type NeighbourOptions struct {
	Collector string // the uptimizr-edge binary
	Root      string // repository root, for the spin guest
	Phase     time.Duration
	Rounds    int     // pairs of phases (B alone, B beside A)
	Rate      float64 // B's requests per second
	Spinners  int     // A's connections, each sending back to back
	BatchSize int     // events per request of B (A's are the same bodies)
	Env       []string
	Progress  io.Writer
	// Control adds a third phase to each round: B beside as many busy
	// loops as A runs guests at once, in processes of their own under
	// SCHED_IDLE, the class the collector runs guests in. It measures what
	// the same load at that priority costs B on this machine when no
	// collector code is involved, the floor of the ratio.
	Control bool
	// Hogs is the number of the control's busy loops (default: the
	// number of cores).
	Hogs int
}

func (o *NeighbourOptions) defaults() {
	if o.Phase <= 0 {
		o.Phase = 5 * time.Second
	}
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	if o.Rate <= 0 {
		o.Rate = 200
	}
	if o.Spinners <= 0 {
		o.Spinners = 8
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 50
	}
	if o.Hogs <= 0 {
		o.Hogs = runtime.NumCPU()
	}
}

// NeighbourPhase is one measured phase of B.
type NeighbourPhase struct {
	Round       int
	Beside      bool // A was spinning
	Hog         bool // the control's idle-class busy loops ran
	P50, P99    time.Duration
	OK, Errors  int64
	SpinnerReqs int64 // A's requests answered meanwhile (any status)
}

// NeighbourResult is the scenario's outcome: the medians over the rounds
// of B's p99 alone and beside A, and their ratio.
type NeighbourResult struct {
	Phases              []NeighbourPhase
	AloneP99, BesideP99 time.Duration
	Ratio               float64 // BesideP99 / AloneP99
	AloneP50, BesideP50 time.Duration
	// With Control: B's p99 beside the idle-class busy loops, and its
	// ratio to B's p99 alone.
	HogP99   time.Duration
	HogRatio float64
}

// RunNeighbour runs the noisy-neighbour scenario.
func RunNeighbour(ctx context.Context, o NeighbourOptions) (NeighbourResult, error) {
	o.defaults()
	var res NeighbourResult
	dir, err := os.MkdirTemp("", "uptimizr-neighbour-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	data := filepath.Join(dir, "data")
	b, a, err := provisionPair(data)
	if err != nil {
		return res, fmt.Errorf("provision: %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return res, err
	}
	cmd := exec.CommandContext(ctx, o.Collector, "serve", "--data-dir", data, "--addr", addr)
	cmd.Env = append(append(os.Environ(),
		"VISITOR_HASH_SECRET=bench-visitor-secret-0123456789",
		"COLLECTOR_RATE_LIMIT_MAX=0", "COLLECTOR_INGEST_RATE_LIMIT_MAX=0", "COLLECTOR_KEY_RATE_LIMIT_MAX=0",
		"COLLECTOR_LOG_LEVEL=warn"), o.Env...)
	logPath := filepath.Join(dir, "server.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return res, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Start(); err != nil {
		return res, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	fail := func(err error) (NeighbourResult, error) {
		return res, fmt.Errorf("%w\nserver log:\n%s", err, tail(logPath, 2000))
	}
	base := "http://" + addr
	if err := waitReady(ctx, base+"/ready", 30*time.Second); err != nil {
		return fail(err)
	}
	wasm, err := os.ReadFile(filepath.Join(o.Root, SpinGuest))
	if err != nil {
		return res, err
	}
	if err := uploadSpin(ctx, base, a.Admin, wasm); err != nil {
		return fail(err)
	}
	bodies, err := EncodeAll(Bodies(1, o.BatchSize, 16), "identity", o.BatchSize)
	if err != nil {
		return res, err
	}
	url := base + "/api/v1/collect"
	bLoad := func() (*load.Result, error) {
		return load.Run(ctx, load.Target{URL: url, Keys: []string{b.Ingest}}, bodies, load.Options{Rate: o.Rate, Duration: o.Phase})
	}
	if _, err := load.Run(ctx, load.Target{URL: url, Keys: []string{b.Ingest}}, bodies, load.Options{Rate: o.Rate, Duration: time.Second}); err != nil {
		return fail(fmt.Errorf("warmup: %w", err))
	}
	var alone, beside, alone50, beside50, hogged []time.Duration
	kinds := []string{"alone", "beside"}
	if o.Control {
		kinds = append(kinds, "hog")
	}
	for round := 1; round <= o.Rounds; round++ {
		for _, kind := range kinds {
			withA := kind == "beside"
			time.Sleep(time.Second) // the previous phase's requests are all answered: settle
			if kind == "hog" {
				stop, err := startIdleHogs(ctx, o.Hogs)
				if err != nil {
					return fail(fmt.Errorf("control: %w", err))
				}
				time.Sleep(500 * time.Millisecond)
				r, err := bLoad()
				stop()
				if err != nil {
					return fail(err)
				}
				ph := NeighbourPhase{Round: round, Hog: true, P50: r.Percentile(0.5), P99: r.Percentile(0.99), OK: r.OK, Errors: r.ErrorCount()}
				hogged = append(hogged, ph.P99)
				res.Phases = append(res.Phases, ph)
				if o.Progress != nil {
					fmt.Fprintf(o.Progress, "round %d  B beside %d idle-class busy loops  p50 %7.2f ms  p99 %7.2f ms  %d ok, %d errors\n",
						round, o.Hogs, ms(ph.P50), ms(ph.P99), ph.OK, ph.Errors)
				}
				continue
			}
			var aDone chan *load.Result
			if withA {
				aDone = make(chan *load.Result, 1)
				go func() {
					r, _ := load.Run(ctx, load.Target{URL: url, Keys: []string{a.Ingest}}, bodies,
						load.Options{Concurrency: o.Spinners, Duration: o.Phase + time.Second})
					aDone <- r
				}()
				time.Sleep(500 * time.Millisecond) // A fills its share
			}
			r, err := bLoad()
			if err != nil {
				return fail(err)
			}
			ph := NeighbourPhase{Round: round, Beside: withA, P50: r.Percentile(0.5), P99: r.Percentile(0.99), OK: r.OK, Errors: r.ErrorCount()}
			if withA {
				if ar := <-aDone; ar != nil {
					ph.SpinnerReqs = ar.Requests
				}
				beside, beside50 = append(beside, ph.P99), append(beside50, ph.P50)
			} else {
				alone, alone50 = append(alone, ph.P99), append(alone50, ph.P50)
			}
			res.Phases = append(res.Phases, ph)
			if o.Progress != nil {
				what := "B alone      "
				if withA {
					what = "B beside A   "
				}
				fmt.Fprintf(o.Progress, "round %d  %s p50 %7.2f ms  p99 %7.2f ms  %d ok, %d errors  (A: %d requests)\n",
					round, what, ms(ph.P50), ms(ph.P99), ph.OK, ph.Errors, ph.SpinnerReqs)
			}
		}
	}
	res.AloneP99, res.BesideP99 = median(alone), median(beside)
	res.AloneP50, res.BesideP50 = median(alone50), median(beside50)
	res.HogP99 = median(hogged)
	if res.AloneP99 > 0 {
		res.Ratio = float64(res.BesideP99) / float64(res.AloneP99)
		res.HogRatio = float64(res.HogP99) / float64(res.AloneP99)
	}
	return res, nil
}

// startIdleHogs starts n busy loops, each a process of its own (this
// binary's "hog" mode is not needed: a shell loop is enough) under
// SCHED_IDLE, and returns the function that stops them.
func startIdleHogs(ctx context.Context, n int) (stop func(), err error) {
	var cmds []*exec.Cmd
	stop = func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	}
	for range n {
		c := exec.CommandContext(ctx, "/bin/sh", "-c", "while :; do :; done")
		if err := c.Start(); err != nil {
			stop()
			return nil, err
		}
		cmds = append(cmds, c)
		if err := unix.SchedSetAttr(c.Process.Pid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}, 0); err != nil {
			stop()
			return nil, fmt.Errorf("SCHED_IDLE for a busy loop: %w", err)
		}
	}
	return stop, nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// provisionPair creates projects b (bench-0000) and a (bench-0001) with
// every channel on.
func provisionPair(dataDir string) (b, a storage.NewKeys, err error) {
	st, err := storage.Open(storage.Options{Dir: dataDir, DisableAggregation: true, MinFreeDisk: -1})
	if err != nil {
		return b, a, err
	}
	defer func() {
		if cerr := st.Close(); err == nil {
			err = cerr
		}
	}()
	reg := st.Registry()
	for i, k := range []*storage.NewKeys{&b, &a} {
		id := fmt.Sprintf("bench-%04d", i)
		if *k, err = reg.CreateProject(id); err != nil {
			return b, a, err
		}
		if err = reg.SetChannels(id, core.AllChannels()); err != nil {
			return b, a, err
		}
	}
	return b, a, nil
}

// uploadSpin makes the spin guest project a's plugin, with the drop policy
// (a cut batch is dropped, not quarantined: the scenario measures the
// cores and slots the spinner takes, not quarantine writes).
func uploadSpin(ctx context.Context, base, admin string, wasm []byte) error {
	req, err := http.NewRequestWithContext(ctx, "PUT", base+"/api/v1/plugins/spin?policy=drop", bytes.NewReader(wasm))
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
		return errors.New("upload the spin guest: " + res.Status + " " + string(body))
	}
	return nil
}
