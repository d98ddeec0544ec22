package main

import (
	"context"
	"os"
	"testing"

	"github.com/uptimizr/edge/plugins"
)

// TestPluginGauges: the budget's figures reach the gauges main registers:
// an instance made shows as one live instance holding its memory.
func TestPluginGauges(t *testing.T) {
	ctx := context.Background()
	host, err := plugins.NewHost(ctx, plugins.Options{MemoryBudget: 64 << 20, MaxInstances: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close(ctx)
	got := map[string]func() float64{}
	pluginGauges(func(name string, f func() float64) { got[name] = f }, host, plugins.NewFilter(nil, nil))
	for _, name := range []string{"uptimizr_plugin_instances", "uptimizr_plugin_memory_bytes", "uptimizr_plugin_budget_waits",
		"uptimizr_plugin_budget_refusals", "uptimizr_plugin_evictions", "uptimizr_plugin_project_waits"} {
		if got[name] == nil {
			t.Fatalf("no gauge %s", name)
		}
	}
	if v := got["uptimizr_plugin_instances_max"](); v != 7 {
		t.Fatalf("instances_max %v", v)
	}
	wasm, err := os.ReadFile("../../plugins/examples/pii-redact/pii-redact.wasm")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := host.Compile(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	p, err := host.NewPlugin(ctx, "pii", 1, mod, nil, plugins.PolicyQuarantine)
	if err != nil {
		t.Fatal(err)
	}
	if n, b := got["uptimizr_plugin_instances"](), got["uptimizr_plugin_memory_bytes"](); n != 1 || b < 64<<10 {
		t.Fatalf("with one instance: %v instances, %v bytes", n, b)
	}
	p.Close()
	if n, b := got["uptimizr_plugin_instances"](), got["uptimizr_plugin_memory_bytes"](); n != 0 || b != 0 {
		t.Fatalf("after close: %v instances, %v bytes", n, b)
	}
}
