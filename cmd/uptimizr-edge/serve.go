package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/edge"
	"github.com/uptimizr/edge/plugins"
	"github.com/uptimizr/edge/storage"
)

// serve runs the collector until SIGTERM or SIGINT. implicit is true when no
// subcommand was given: then an empty data dir starts dev mode.
func (c *cli) serve(cmd *cobra.Command, implicit bool) error {
	return c.run(cmd, implicit, false)
}

// hub runs the fleet's hub: a node that also consumes the stream of every
// node's records (COLLECTOR_HUB_SOURCE) into its store.
func (c *cli) hub(cmd *cobra.Command) error {
	return c.run(cmd, false, true)
}

func (c *cli) run(cmd *cobra.Command, implicit, hub bool) error {
	cfg, err := c.config()
	if err != nil {
		return err
	}
	if hub && cfg.HubSource == "" {
		return errors.New("the hub needs COLLECTOR_HUB_SOURCE (--hub-source): the stream engine to read the fleet's records from, nats://HOST:PORT or kafka://HOST:PORT")
	}
	freshDev := false
	if implicit && cfg.VisitorHashSecret == "" {
		if dirEmpty(cfg.DataDir) {
			freshDev = true
			cfg.DevMode = true
		} else if fileExists(devMarkerPath(cfg.DataDir)) || fileExists(devSecretPath(cfg.DataDir)) {
			cfg.DevMode = true
		}
	}
	// Dev mode prints working keys: it listens on loopback only, unless the
	// address was given.
	hostGiven := c.addr != "" || os.Getenv("COLLECTOR_HOST") != "" ||
		(c.settings["COLLECTOR_HOST"] != nil && *c.settings["COLLECTOR_HOST"] != "")
	if cfg.DevMode && !hostGiven {
		cfg.Host = "127.0.0.1"
	}
	// Dev mode takes any browser origin, unless origins were given.
	if cfg.DevMode && len(cfg.CORSOrigins) == 0 {
		cfg.CORSOrigins = []string{"*"}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if !cfg.DevMode && cfg.VisitorHashSecret == "" && !fileExists(storage.VisitorSeedPath(cfg.DataDir)) &&
		!fileExists(storage.VisitorSeedPath(cfg.DataDir)+".new") {
		return errNoSeedToServe
	}
	if freshDev {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(devMarkerPath(cfg.DataDir), []byte("this data dir was made by dev mode\n"), 0o600); err != nil {
			return err
		}
	}
	log := newLogger(&cfg, c.errOut)

	// One P more than the cores: the aggregator folds on a thread niced to
	// 19, and a pass waiting for the CPU must not hold a P the request path
	// needs (docs/RATIONALE.md). An operator's GOMAXPROCS is left alone.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 1)
	}

	store, err := storage.Open(storage.Options{
		Dir:          cfg.DataDir,
		SyncWrites:   cfg.SyncWrites,
		Retention:    cfg.RawRetention,
		RetentionTTL: time.Duration(cfg.RawRetentionDays) * 24 * time.Hour,
		MinFreeDisk:  cfg.MinFreeDisk,
		Logger:       log,

		MaxBatchBytes:      cfg.BodyLimit,
		ValueLogGCInterval: gcInterval(cfg.ValueLogGCInterval),
		QuarantineTTL:      cfg.QuarantineTTL,
		Forward:            cfg.ForwardURL != "",
		ForwardMaxBacklog:  cfg.ForwardMaxBacklog,
		Hub:                hub,
	})
	if err != nil {
		return err
	}
	storeClosing := false
	defer func() {
		if !storeClosing {
			store.Close()
		}
	}()

	var devKeys *storage.NewKeys
	if freshDev {
		keys, err := store.Registry().CreateProject("dev")
		if err != nil {
			return err
		}
		devKeys = &keys
	}

	pluginHost, pluginMgr, err := newPluginManager(context.Background(), &cfg, store, log)
	if err != nil {
		return err
	}
	defer pluginHost.Close(context.Background())
	shrinkCtx, stopShrink := context.WithCancel(context.Background())
	defer stopShrink()
	go pluginMgr.RunShrinker(shrinkCtx, 30*time.Second, time.Minute)

	now := clock(&cfg)
	hasher, err := openVisitorHasher(&cfg, now, freshDev, log)
	if err != nil {
		return err
	}
	stopRatchet := make(chan struct{})
	defer close(stopRatchet)
	go runRatchet(hasher, now, log, stopRatchet)
	fwd, err := startForwarding(&cfg, store, log)
	if err != nil {
		return err
	}
	var hubs *hubbing
	live := &liveFeed{}
	if hub {
		if hubs, err = startHub(&cfg, store, log, live); err != nil {
			fwd.close(context.Background())
			return err
		}
	}
	degraded := func() string {
		var why []string
		for _, w := range []string{store.Degraded(), fwd.degraded(), hubs.degraded()} {
			if w != "" {
				why = append(why, w)
			}
		}
		return strings.Join(why, "; ")
	}
	var fleetDep edge.FleetStatus
	fleetStat := &fleetStatus{}
	if cfg.ControlURL != "" {
		fleetDep = fleetStat
	}
	srv, err := edge.New(&cfg, edge.Deps{
		Fleet: fleetDep,
		Keys:  store.Registry(),
		Sink:  store.Sink(),
		// The validator locates what the aggregator reads.
		Capture:  storage.Capture(),
		Ready:    store.Writable,
		Degraded: degraded,
		Hasher:   hasher,
		Logger:   log,
		Now:      now,

		Aggregates: store.Reader(),
		Scenes:     store.Scenes(),
		Raw:        store.Raw(),

		Filter:     pluginMgr.Filter(),
		Plugins:    pluginMgr,
		Quarantine: quarantineAdmin{store.Quarantine(), pluginMgr, store.Sink()},
	})
	if err != nil {
		return err
	}
	store.Committer().OnCommit = srv.ObserveGroupCommit
	live.srv.Store(srv)
	pluginGauges(srv.AddGauge, pluginHost, pluginMgr.Filter())
	fwd.gauges(srv.AddGauge)
	hubs.gauges(srv.AddGauge)
	srv.AddGauge("uptimizr_degraded", func() float64 {
		if degraded() != "" {
			return 1
		}
		return 0
	})
	srv.AddGauge("uptimizr_ingest_log_damaged_segments", func() float64 { return float64(store.LogStats().Damaged) })
	if agg := store.Aggregator(); agg != nil {
		srv.AddGauge("uptimizr_aggregator_lag_records", func() float64 { return float64(agg.Stats().Lag) })
		srv.AddGauge("uptimizr_aggregator_folded_events", func() float64 { return float64(agg.Stats().Events) })
		srv.AddGauge("uptimizr_aggregator_errors", func() float64 { return float64(agg.Stats().Errors) })
		srv.AddGauge("uptimizr_aggregator_orphan_records_dropped", func() float64 { return float64(agg.Stats().Orphaned) })
	}
	controlPub, err := parseControlPub(&cfg)
	if err != nil {
		return err
	}
	nodeEnv := &opEnv{reg: store.Registry(), controlPub: controlPub, fleetManaged: cfg.FleetManaged(),
		plugins:   func() (*plugins.Manager, error) { return pluginMgr, nil },
		moduleMiB: cfg.PluginModuleMiB, where: " on the running server",
		salt: &saltEnv{dir: cfg.DataDir, now: now, hasher: hasher}}
	stopControl, err := serveControl(cfg.DataDir, nodeEnv, log)
	if err != nil {
		// Serving matters more than the CLI's shortcut (a unix socket path
		// is limited to about 100 bytes): the CLI then says the node holds
		// the data dir, and the HTTP admin API still works.
		log.Warn("operator control socket unavailable; the CLI cannot reach this node", "err", err)
		stopControl = func() {}
	}
	defer stopControl()
	if cfg.Bundle != "" {
		bundleCtx, stopBundle := context.WithCancel(context.Background())
		bf := startBundleFile(bundleCtx, cfg.Bundle, nodeEnv, log)
		srv.AddGauge("uptimizr_fleet_revision", func() float64 { n, _ := bf.stats(); return float64(n) })
		srv.AddGauge("uptimizr_fleet_revisions_refused", func() float64 { _, n := bf.stats(); return float64(n) })
		defer stopBundle()
	}
	if cfg.ControlURL != "" {
		followCtx, stopFollowing := context.WithCancel(context.Background())
		var lag func() int64
		if fw := store.Forward(); fw != nil && cfg.ForwardURL != "" {
			lag = func() int64 { return fw.Stats().BacklogBytes }
		}
		fl, err := startFollower(followCtx, cfg.ControlURL, cfg.NodeID, cfg.DataDir, nodeEnv, store, lag, log)
		if err != nil {
			stopFollowing()
			return err
		}
		fleetStat.f.Store(fl)
		srv.AddGauge("uptimizr_fleet_revision", func() float64 { return float64(fl.Revision()) })
		srv.AddGauge("uptimizr_fleet_revisions_refused", func() float64 { return float64(fl.Refused()) })
		defer func() { stopFollowing(); fl.close() }()
	}

	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr(), err)
	}
	if devKeys != nil {
		printDevBanner(c.out, &cfg, ln.Addr().String(), devKeys)
	} else if cfg.DevMode {
		fmt.Fprintf(c.out, "Uptimizr Edge in dev mode (data in %s), listening on %s%s; the dev project's keys were printed on its first start.\n", cfg.DataDir, ln.Addr().String(), loopbackNote(ln.Addr().String()))
	}
	log.Info("uptimizr-edge listening", "addr", ln.Addr().String(), "data_dir", cfg.DataDir,
		"dev_mode", cfg.DevMode, "raw_retention", cfg.RawRetention, "sync_writes", cfg.SyncWrites)

	if cfg.PprofAddr != "" {
		stopPprof, err := servePprof(cfg.PprofAddr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	select {
	case err := <-errc:
		return fmt.Errorf("server stopped: %w", err)
	case sig := <-sigs:
		log.Info("shutting down: finishing in-flight requests", "signal", sig.String())
	}
	// Whatever is stuck (a disk gone, a data dir removed under the node), the
	// process ends: a second signal ends it at once, and so does twice the
	// shutdown timeout.
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTimer(2*cfg.ShutdownTimeout + time.Second)
		defer t.Stop()
		select {
		case sig := <-sigs:
			log.Error("second signal: exiting at once, without closing storage cleanly", "signal", sig.String())
		case <-t.C:
			log.Error("shutdown is stuck: exiting without closing storage cleanly")
		case <-done:
			return
		}
		os.Exit(2)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("shutdown did not finish in time", "err", err)
	}
	stopControl()
	hubs.close()
	if err := fwd.close(ctx); err != nil {
		log.Warn("forwarding did not settle what was in flight in time; it is sent again at the next start", "err", err)
	}
	storeClosing = true
	closed := make(chan error, 1)
	go func() { closed <- store.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			return fmt.Errorf("close storage: %w", err)
		}
	case <-time.After(cfg.ShutdownTimeout):
		return fmt.Errorf("storage did not close within %s (COLLECTOR_SHUTDOWN_TIMEOUT): is the data dir %s still there and its disk writable? Exiting without a clean close; the next start recovers what was committed", cfg.ShutdownTimeout, cfg.DataDir)
	}
	log.Info("stopped cleanly")
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func newLogger(cfg *core.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

const sampleBatch = `{"schemaVersion":"1.0","events":[` +
	`{"type":"session_start","projectId":"dev","sessionId":"demo-session-1","ts":%d,"sdkVersion":"0.5.0","sceneId":"showroom","connector":{"name":"babylon","version":"9.13.0"}},` +
	`{"type":"camera_sample","projectId":"dev","sessionId":"demo-session-1","ts":%d,"sdkVersion":"0.5.0","sceneId":"showroom","position":[4.5,2.2,1.9],"direction":[-0.84,-0.41,-0.35]},` +
	`{"type":"pointer_click","projectId":"dev","sessionId":"demo-session-1","ts":%d,"sdkVersion":"0.5.0","sceneId":"showroom","screen":[0.3,0.15],"button":0,"source":"mouse"}]}`

func printDevBanner(w io.Writer, cfg *core.Config, addr string, k *storage.NewKeys) {
	host, port, _ := net.SplitHostPort(addr)
	if host == "0.0.0.0" || host == "::" || host == "" {
		host = "127.0.0.1"
	}
	base := "http://" + net.JoinHostPort(host, port)
	now := time.Now().UnixMilli()
	body := fmt.Sprintf(sampleBatch, now, now+100, now+200)
	fmt.Fprintf(w, `Uptimizr Edge — dev mode
Data dir: %s (visitor seed generated in %s)
Listening on %s%s
Project "dev" created. Its API keys are shown only now:
  ingest: %s
  query:  %s
  admin:  %s

Send a sample batch:
curl -sS -X POST '%s/api/v1/collect' -H 'x-api-key: %s' -H 'content-type: application/json' -d '%s'

`, cfg.DataDir, storage.VisitorSeedFile, addr, loopbackNote(addr), k.Ingest, k.Query, k.Admin, base, k.Ingest, body)
}

// loopbackNote says how to listen beyond loopback, for an address on it.
func loopbackNote(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return " (loopback only; --addr 0.0.0.0:" + port + " listens on every interface)"
	}
	return ""
}

// gcInterval maps the config (≤ 0 = never) to the store's option (negative =
// never, zero = its default).
func gcInterval(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
