package core

import (
	"strings"
	"testing"
	"time"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"536870912": 536870912, "512MiB": 512 << 20, "512M": 512 << 20, "512mb": 512 << 20,
		"2GiB": 2 << 30, " 1.5G ": 3 << 29, "64KiB": 64 << 10, "1T": 1 << 40, "0": 0,
	} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "12 parsecs", "-1G", "1e3", "9999999T"} {
		if n, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) = %d, want an error", in, n)
		}
	}
}

func TestPluginBudgetSettings(t *testing.T) {
	env := map[string]string{
		"COLLECTOR_PLUGIN_MEMORY_BUDGET":              "256MiB",
		"COLLECTOR_PLUGIN_MAX_INSTANCES":              "40",
		"COLLECTOR_PLUGIN_PROJECT_CONCURRENCY":        "2",
		"COLLECTOR_PLUGIN_WAIT":                       "300ms",
		"COLLECTOR_MAX_CONCURRENT_INGEST_PER_PROJECT": "3",
	}
	c := DefaultConfig()
	c.DevMode = true
	if err := c.LoadEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.PluginMemoryBudget != 256<<20 || c.PluginMaxInstances != 40 || c.PluginProjectConcurrency != 2 ||
		c.PluginWait != 300*time.Millisecond || c.MaxProjectIngest != 3 {
		t.Fatalf("%+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	env["COLLECTOR_PLUGIN_MEMORY_BUDGET"] = "lots"
	if err := c.LoadEnv(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "COLLECTOR_PLUGIN_MEMORY_BUDGET") {
		t.Fatalf("a bad budget: %v", err)
	}
	c.PluginMemoryBudget, c.PluginWait, c.MaxProjectIngest = 1000, -time.Second, -1
	err := c.Validate()
	for _, name := range []string{"COLLECTOR_PLUGIN_MEMORY_BUDGET", "COLLECTOR_PLUGIN_WAIT", "COLLECTOR_MAX_CONCURRENT_INGEST_PER_PROJECT"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Validate does not name %s: %v", name, err)
		}
	}
}

// TestPluginNiceSetting: plugin calls run under SCHED_IDLE unless told
// otherwise; "idle", a nice value and 0 are read, anything else is refused
// with the variable's name.
func TestPluginNiceSetting(t *testing.T) {
	if c := DefaultConfig(); c.PluginNice != PluginNiceIdle {
		t.Fatalf("default PluginNice %d, want idle (%d)", c.PluginNice, PluginNiceIdle)
	}
	for in, want := range map[string]int{"idle": PluginNiceIdle, " IDLE ": PluginNiceIdle, "10": 10, "19": 19, "0": 0} {
		c := DefaultConfig()
		c.DevMode = true
		c.PluginNice = 5
		if err := c.LoadEnv(func(k string) string {
			if k == "COLLECTOR_PLUGIN_NICE" {
				return in
			}
			return ""
		}); err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if c.PluginNice != want {
			t.Errorf("COLLECTOR_PLUGIN_NICE=%q gives %d, want %d", in, c.PluginNice, want)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%q: %v", in, err)
		}
	}
	for _, in := range []string{"20", "-1", "-5", "lowest"} {
		c := DefaultConfig()
		c.DevMode = true
		err := c.LoadEnv(func(k string) string {
			if k == "COLLECTOR_PLUGIN_NICE" {
				return in
			}
			return ""
		})
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), "COLLECTOR_PLUGIN_NICE") {
			t.Errorf("COLLECTOR_PLUGIN_NICE=%q: %v, want an error naming it", in, err)
		}
	}
}
