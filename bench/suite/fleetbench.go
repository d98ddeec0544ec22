package suite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uptimizr/edge/bench/load"
	"github.com/uptimizr/edge/bench/report"
	"github.com/uptimizr/edge/fleet"
)

// The fleet's scenarios: "forward" (ingest with forwarding to a nats-server
// on loopback, measured side by side with "ingest"), "forward-half-load"
// (its latency and forward lag at half its rate) and "hub" (the events per
// second a hub folds from the stream).

// benchNATS is a nats-server the fleet's scenarios run.
type benchNATS struct {
	url  string
	pid  int
	stop func()
	// prof is the address of its profiling endpoint (/debug/pprof), when
	// started with profiling.
	prof string
}

// startBenchNATS starts a nats-server with JetStream in dir; with profile,
// it also serves its profiles (nats-server's prof_port).
func startBenchNATS(ctx context.Context, bin, dir string, profile bool) (*benchNATS, error) {
	if bin == "" {
		return nil, errors.New("the forward and hub scenarios need a nats-server binary (-nats; built from its Go module when not given)")
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nats.conf")
	text := fmt.Appendf(nil, "listen: %q\nmax_payload: 8MB\njetstream { store_dir: %q }\n", addr, filepath.Join(dir, "nats"))
	prof := ""
	if profile {
		if prof, err = freeAddr(); err != nil {
			return nil, err
		}
		_, port, _ := net.SplitHostPort(prof)
		text = fmt.Appendf(text, "prof_port: %s\n", port)
	}
	if err := os.WriteFile(conf, text, 0o600); err != nil {
		return nil, err
	}
	stop, pid, err := startProcessPID(ctx, filepath.Join(dir, "nats.log"), nil, bin, "-c", conf)
	if err != nil {
		return nil, err
	}
	if err := waitTCP(ctx, addr, 20*time.Second); err != nil {
		stop()
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	return &benchNATS{url: "nats://" + addr, pid: pid, stop: stop, prof: prof}, nil
}

// streamMsgs returns how many messages the fleet's stream holds.
func streamMsgs(ctx context.Context, url string) (uint64, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	st, err := js.Stream(ctx, "UPTIMIZR_EVENTS")
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// lagProbe reads the stream as the records arrive and measures each one's
// forward lag: from the batch's acceptance on the node (its
// Uptimizr-Received-At) to its delivery from the stream here.
type lagProbe struct {
	js    jetstream.JetStream
	nc    *nats.Conn
	cc    jetstream.ConsumeContext
	mu    sync.Mutex
	from  int64 // Unix ms: records accepted before are not counted
	lags  []time.Duration
	total int
}

func newLagProbe(ctx context.Context, url string) (*lagProbe, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	// The node makes the stream: make it first, with the node's settings,
	// so that the probe can consume from the first record.
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "UPTIMIZR_EVENTS", Subjects: []string{fleet.SubjectPrefix + ">"},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute, MaxAge: 7 * 24 * time.Hour}); err != nil {
		nc.Close()
		return nil, err
	}
	c, err := js.OrderedConsumer(ctx, "UPTIMIZR_EVENTS", jetstream.OrderedConsumerConfig{})
	if err != nil {
		nc.Close()
		return nil, err
	}
	p := &lagProbe{js: js, nc: nc}
	p.cc, err = c.Consume(func(m jetstream.Msg) {
		at, _ := strconv.ParseInt(m.Headers().Get(fleet.HeaderReceivedAt), 10, 64)
		now := time.Now()
		p.mu.Lock()
		p.total++
		if at >= p.from {
			p.lags = append(p.lags, now.Sub(time.UnixMilli(at)))
		}
		p.mu.Unlock()
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	return p, nil
}

func (p *lagProbe) since(t time.Time) {
	p.mu.Lock()
	p.from = t.UnixMilli()
	p.mu.Unlock()
}

// note waits until the probe has every record the stream holds (up to
// 30 s), and gives the lag's percentiles.
func (p *lagProbe) note(ctx context.Context) string {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var msgs uint64
		if st, err := p.js.Stream(ctx, "UPTIMIZR_EVENTS"); err == nil {
			if info, err := st.Info(ctx); err == nil {
				msgs = info.State.Msgs
			}
		}
		p.mu.Lock()
		got := uint64(p.total)
		p.mu.Unlock()
		if msgs > 0 && got >= msgs {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lags) == 0 {
		return "forward lag: no record measured"
	}
	l := slices.Clone(p.lags)
	slices.Sort(l)
	q := func(f float64) float64 { return float64(l[min(len(l)-1, int(f*float64(len(l))))]) / 1e6 }
	return fmt.Sprintf("forward lag p50 %.0f ms, p99 %.0f ms, max %.0f ms (%d records)", q(0.5), q(0.99), float64(l[len(l)-1])/1e6, len(l))
}

func (p *lagProbe) stop() {
	p.cc.Stop()
	p.nc.Close()
}

// runHub measures the hub: a forwarding node takes the closed loop's
// batches for o.Duration, and stops; then a hub starts on the stream, and
// the time it takes to fold every record gives its events per second.
func runHub(ctx context.Context, o Options, sc Scenario, bodies []load.Body, dir string) (report.Row, error) {
	row := report.Row{Scenario: sc.Name, Encoding: sc.Encoding, Projects: 1}
	ns, err := startBenchNATS(ctx, o.NATS, dir, o.ProfileDir != "")
	if err != nil {
		return row, err
	}
	defer ns.stop()
	natsURL := ns.url
	env := []string{"VISITOR_HASH_SECRET=bench-visitor-secret-0123456789", "COLLECTOR_RATE_LIMIT_MAX=0",
		"COLLECTOR_INGEST_RATE_LIMIT_MAX=0", "COLLECTOR_KEY_RATE_LIMIT_MAX=0", "COLLECTOR_LOG_LEVEL=warn"}
	nodeDir := filepath.Join(dir, "node")
	keys, _, err := Provision(nodeDir, 1)
	if err != nil {
		return row, err
	}
	addr, err := freeAddr()
	if err != nil {
		return row, err
	}
	stopNode, err := startProcess(ctx, filepath.Join(dir, "node.log"), append(env, "COLLECTOR_FORWARD_URL="+natsURL, "COLLECTOR_NODE_ID=bench-node"),
		o.Collector, "serve", "--data-dir", nodeDir, "--addr", addr)
	if err != nil {
		return row, err
	}
	if err := waitReady(ctx, "http://"+addr+"/ready", 30*time.Second); err != nil {
		stopNode()
		return row, fmt.Errorf("node: %w\n%s", err, tail(filepath.Join(dir, "node.log"), 2000))
	}
	res, err := load.Run(ctx, load.Target{URL: "http://" + addr + "/api/v1/collect", Keys: keys}, bodies, load.Options{Concurrency: o.Concurrency, Duration: o.Duration})
	if err != nil {
		stopNode()
		return row, err
	}
	stopNode() // SIGTERM: what is in flight is settled
	sent := res.Accepted
	// The hub, on the stream the node filled.
	hubDir := filepath.Join(dir, "hub")
	if _, _, err := Provision(hubDir, 1); err != nil {
		return row, err
	}
	hubAddr, err := freeAddr()
	if err != nil {
		return row, err
	}
	start := time.Now()
	hubCmd := exec.CommandContext(ctx, o.Collector, "hub", "--data-dir", hubDir, "--addr", hubAddr)
	hubCmd.Env = append(append(os.Environ(), env...), "COLLECTOR_HUB_SOURCE="+natsURL)
	var pprofAddr string
	if o.ProfileDir != "" {
		if pprofAddr, err = freeAddr(); err != nil {
			return row, err
		}
		hubCmd.Env = append(hubCmd.Env, "COLLECTOR_PPROF_ADDR="+pprofAddr)
	}
	logf, err := os.Create(filepath.Join(dir, "hub.log"))
	if err != nil {
		return row, err
	}
	defer logf.Close()
	hubCmd.Stdout, hubCmd.Stderr = logf, logf
	if err := hubCmd.Start(); err != nil {
		return row, err
	}
	defer func() { hubCmd.Process.Signal(syscall.SIGTERM); hubCmd.Wait() }()
	if err := waitReady(ctx, "http://"+hubAddr+"/ready", 30*time.Second); err != nil {
		return row, fmt.Errorf("hub: %w\n%s", err, tail(filepath.Join(dir, "hub.log"), 2000))
	}
	cpu0, _ := cpuTime(hubCmd.Process.Pid)
	natsCPU0, _ := cpuTime(ns.pid)
	var profiled chan error
	if pprofAddr != "" {
		profiled = make(chan error, 1)
		go func() {
			profiled <- fetch(ctx, "http://"+pprofAddr+"/debug/pprof/profile?seconds=4", filepath.Join(o.ProfileDir, sc.Name+".cpu.pprof"))
		}()
	}
	deadline := time.Now().Add(5 * time.Minute)
	var folded, firstFolded int64
	var first time.Time
	for {
		if folded, err = metricValue(ctx, "http://"+hubAddr+"/metrics", "uptimizr_aggregator_folded_events"); err != nil {
			return row, err
		}
		if folded > 0 && first.IsZero() {
			first, firstFolded = time.Now(), folded
		}
		if folded >= sent || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	folding := time.Since(first)
	if profiled != nil {
		if err := <-profiled; err != nil {
			return row, fmt.Errorf("cpu profile: %w", err)
		}
	}
	cpu1, _ := cpuTime(hubCmd.Process.Pid)
	natsCPU1, _ := cpuTime(ns.pid)
	if folded < sent {
		return row, fmt.Errorf("the hub folded %d of %d events in 5 minutes", folded, sent)
	}
	// The rate is the fold's, from the first event folded to the last;
	// the note also gives the time from the hub's start.
	row.EventsPerSec = float64(sent-firstFolded) / folding.Seconds()
	row.ServerCPU = (cpu1 - cpu0).Seconds() / took.Seconds()
	row.Accepted = 1
	row.Note = fmt.Sprintf("the hub folded the %d events a forwarding node took in %s in %.1f s from its first fold, %.1f s from its start; nats-server CPU %.2f", sent, o.Duration, folding.Seconds(), took.Seconds(), (natsCPU1-natsCPU0).Seconds()/took.Seconds())
	return row, nil
}

// metricValue reads one unlabelled sample from a /metrics page.
func metricValue(ctx context.Context, url, name string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f), err
		}
	}
	return 0, sc.Err()
}

// drained waits until the node at base has no record the engine has not
// acknowledged (up to a minute) and returns how long that took.
func drained(ctx context.Context, base, natsURL string) (time.Duration, error) {
	start := time.Now()
	for {
		n, err := metricValue(ctx, base+"/metrics", "uptimizr_forward_backlog_records")
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return time.Since(start), nil
		}
		if time.Since(start) > time.Minute {
			msgs, _ := streamMsgs(ctx, natsURL)
			return 0, fmt.Errorf("the node still had %d records to forward a minute after the load stopped (the stream has %d)", n, msgs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
