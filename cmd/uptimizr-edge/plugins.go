package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/plugins"
	"github.com/uptimizr/edge/storage"
)

// newPluginManager builds the plugin host (compiled code cached in the data
// dir), the filter the edge calls and the lifecycle manager, and loads every
// project's chain.
func newPluginManager(ctx context.Context, cfg *core.Config, store *storage.Store, log *slog.Logger) (*plugins.Host, *plugins.Manager, error) {
	host, err := newPluginHost(ctx, cfg, filepath.Join(cfg.DataDir, "wasm-cache"), log)
	if err != nil {
		return nil, nil, err
	}
	st := host.Budget().Stats()
	log.Info("plugin budget", "memory_bytes", st.MaxBytes, "max_instances", st.MaxInstances, "memory_limit_bytes", plugins.MemoryLimit())
	filter := plugins.NewFilter(store.Quarantine(), log)
	filter.SetCapture(storage.Capture())
	conc := cfg.PluginProjectConcurrency
	if conc == 0 {
		conc = plugins.DefaultProjectConcurrency()
	}
	wait := cfg.PluginWait
	if wait == 0 {
		wait = 10 * cfg.PluginTimeout
	}
	filter.SetProjectConcurrency(conc, wait)
	mgr := plugins.NewManager(host, store.Plugins(), filter, log)
	var nums []uint32
	for _, p := range store.Registry().Projects() {
		nums = append(nums, p.Num)
	}
	mgr.Load(ctx, nums)
	return host, mgr, nil
}

// quarantineAdmin joins the quarantine store and the manager for the edge.
type quarantineAdmin struct {
	q    *storage.QuarantineStore
	mgr  *plugins.Manager
	sink core.Sink
}

func (a quarantineAdmin) List(pnum uint32, limit int) ([]core.QuarantineEntry, int, error) {
	return a.q.List(pnum, limit)
}

func (a quarantineAdmin) Delete(pnum uint32, id string) error { return a.q.Delete(pnum, id) }

func (a quarantineAdmin) Replay(ctx context.Context, p core.Project, id string) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return a.mgr.Replay(ctx, a.q, a.sink, p, id)
}

// pluginGauges exposes the plugin budget's and the per-project gates'
// figures on /metrics.
func pluginGauges(add func(string, func() float64), host *plugins.Host, f *plugins.Filter) {
	b := host.Budget()
	for name, get := range map[string]func(plugins.BudgetStats) int64{
		"uptimizr_plugin_instances":            func(s plugins.BudgetStats) int64 { return s.Instances },
		"uptimizr_plugin_instances_max":        func(s plugins.BudgetStats) int64 { return s.MaxInstances },
		"uptimizr_plugin_memory_bytes":         func(s plugins.BudgetStats) int64 { return s.Bytes },
		"uptimizr_plugin_memory_budget_bytes":  func(s plugins.BudgetStats) int64 { return s.MaxBytes },
		"uptimizr_plugin_memory_peak_bytes":    func(s plugins.BudgetStats) int64 { return s.PeakBytes },
		"uptimizr_plugin_budget_waits":         func(s plugins.BudgetStats) int64 { return s.Waits },
		"uptimizr_plugin_budget_refusals":      func(s plugins.BudgetStats) int64 { return s.Refusals },
		"uptimizr_plugin_evictions":            func(s plugins.BudgetStats) int64 { return s.Evictions },
		"uptimizr_plugin_memory_grow_refusals": func(s plugins.BudgetStats) int64 { return s.GrowRefusals },
	} {
		add(name, func() float64 { return float64(get(b.Stats())) })
	}
	add("uptimizr_plugin_project_waits", func() float64 { return float64(f.Stats().Waits) })
	add("uptimizr_plugin_project_refusals", func() float64 { return float64(f.Stats().Refusals) })
}

// newPluginHost builds a plugin host with the node's sandbox settings,
// its compiled code cached in cacheDir.
func newPluginHost(ctx context.Context, cfg *core.Config, cacheDir string, log *slog.Logger) (*plugins.Host, error) {
	return plugins.NewHost(ctx, plugins.Options{
		CacheDir:         cacheDir,
		MemoryLimitPages: uint32(cfg.PluginMemoryMiB) * 16,
		MaxModuleSize:    cfg.PluginModuleMiB << 20,
		CallTimeout:      cfg.PluginTimeout,
		MemoryBudget:     cfg.PluginMemoryBudget,
		MaxInstances:     cfg.PluginMaxInstances,
		Wait:             cfg.PluginWait,
		Nice:             cfg.PluginNice,
		Logger:           log,
	})
}
