package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	cfg, err := c.config()
	if err != nil {
		return err
	}
	freshDev := false
	if implicit && cfg.VisitorHashSecret == "" {
		if dirEmpty(cfg.DataDir) {
			freshDev = true
			cfg.DevMode = true
		} else if _, err := os.Stat(devSecretPath(cfg.DataDir)); err == nil {
			cfg.DevMode = true
		}
	}
	if cfg.DevMode {
		secret, err := devSecret(cfg.DataDir, freshDev)
		if err != nil {
			return err
		}
		cfg.VisitorHashSecret = secret
	}
	if err := cfg.Validate(); err != nil {
		return err
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
	})
	if err != nil {
		return err
	}
	defer store.Close()

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

	hasher, err := core.NewVisitorHasher([]byte(cfg.VisitorHashSecret))
	if err != nil {
		return err
	}
	srv, err := edge.New(&cfg, edge.Deps{
		Keys: store.Registry(),
		Sink: store.Sink(),
		// The validator locates what the aggregator reads.
		Capture: storage.Capture(),
		Ready:   store.Writable,
		Hasher:  hasher,
		Logger:  log,

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
	if agg := store.Aggregator(); agg != nil {
		srv.AddGauge("uptimizr_aggregator_lag_records", func() float64 { return float64(agg.Stats().Lag) })
		srv.AddGauge("uptimizr_aggregator_folded_events", func() float64 { return float64(agg.Stats().Events) })
		srv.AddGauge("uptimizr_aggregator_errors", func() float64 { return float64(agg.Stats().Errors) })
		srv.AddGauge("uptimizr_aggregator_orphan_records_dropped", func() float64 { return float64(agg.Stats().Orphaned) })
	}
	stopControl, err := serveControl(cfg.DataDir, &opEnv{reg: store.Registry(),
		plugins: func() (*plugins.Manager, error) { return pluginMgr, nil }}, log)
	if err != nil {
		// Serving matters more than the CLI's shortcut (a unix socket path
		// is limited to about 100 bytes): the CLI then says the node holds
		// the data dir, and the HTTP admin API still works.
		log.Warn("operator control socket unavailable; the CLI cannot reach this node", "err", err)
		stopControl = func() {}
	}
	defer stopControl()

	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr(), err)
	}
	if devKeys != nil {
		printDevBanner(c.out, &cfg, ln.Addr().String(), devKeys)
	} else if cfg.DevMode {
		fmt.Fprintf(c.out, "Uptimizr Edge in dev mode (data in %s); the dev project's keys were printed on its first start.\n", cfg.DataDir)
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
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("shutdown did not finish in time", "err", err)
	}
	stopControl()
	if err := store.Close(); err != nil {
		return fmt.Errorf("close storage: %w", err)
	}
	log.Info("stopped cleanly")
	return nil
}

// devSecret reads the dev visitor-hash secret kept in the data dir, creating
// it on a fresh start.
func devSecret(dir string, create bool) (string, error) {
	p := devSecretPath(dir)
	if b, err := os.ReadFile(p); err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < 16 {
			return "", fmt.Errorf("%s: secret too short", p)
		}
		return s, nil
	} else if !errors.Is(err, os.ErrNotExist) || !create {
		return "", err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	s := hex.EncodeToString(raw[:])
	if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
		return "", err
	}
	return s, nil
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
Data dir: %s (visitor-hash secret generated in %s)
Project "dev" created. Its API keys are shown only now:
  ingest: %s
  query:  %s
  admin:  %s

Send a sample batch:
curl -sS -X POST '%s/api/v1/collect' -H 'x-api-key: %s' -H 'content-type: application/json' -d '%s'

`, cfg.DataDir, devSecretFile, k.Ingest, k.Query, k.Admin, base, k.Ingest, body)
}

// gcInterval maps the config (≤ 0 = never) to the store's option (negative =
// never, zero = its default).
func gcInterval(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
