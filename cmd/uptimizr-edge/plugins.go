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
	host, err := plugins.NewHost(ctx, plugins.Options{
		CacheDir:         filepath.Join(cfg.DataDir, "wasm-cache"),
		MemoryLimitPages: uint32(cfg.PluginMemoryMiB) * 16,
		MaxModuleSize:    cfg.PluginModuleMiB << 20,
		CallTimeout:      cfg.PluginTimeout,
		Logger:           log,
	})
	if err != nil {
		return nil, nil, err
	}
	filter := plugins.NewFilter(store.Quarantine(), log)
	filter.SetCapture(storage.Capture())
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
