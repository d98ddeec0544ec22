package suite

import (
	"strings"
	"testing"
	"time"

	"github.com/uptimizr/edge/bench/report"
	"github.com/uptimizr/edge/storage"
)

func TestSelectKeepsTheBaselineOfAHalfLoadScenario(t *testing.T) {
	got, err := Select(Default(), "^ingest-half-load$")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "ingest,ingest-half-load" {
		t.Fatalf("selected %v", names)
	}
	if _, err := Select(Default(), "^nothing$"); err == nil {
		t.Fatal("an empty selection is not an error")
	}
	all, _ := Select(Default(), "")
	if len(all) != len(Default()) {
		t.Fatalf("the empty pattern selected %d of %d", len(all), len(Default()))
	}
}

func TestDefaultCoversTheMatrix(t *testing.T) {
	enc := map[string]bool{}
	var floor, retention, thousand, one, three bool
	for _, s := range Default() {
		enc[s.Encoding] = true
		floor = floor || s.Floor
		retention = retention || s.Retention
		thousand = thousand || s.Projects == 1000
		one = one || len(s.Plugins) == 1
		three = three || len(s.Plugins) == 3
	}
	for _, e := range []string{"identity", "gzip", "zstd", "br"} {
		if !enc[e] {
			t.Errorf("no scenario with %s", e)
		}
	}
	if !floor || !retention || !thousand || !one || !three {
		t.Fatalf("floor %v retention %v 1000 projects %v one plugin %v three %v", floor, retention, thousand, one, three)
	}
}

func TestTargets(t *testing.T) {
	rows := []report.Row{
		{Scenario: "floor", EventsPerSec: 2_000_000},
		{Scenario: "ingest", EventsPerSec: 610_000},
		{Scenario: "plugin-1", EventsPerSec: 290_000},
		{Scenario: "ingest-half-load", P99: 9 * time.Millisecond, ServerMedianRSS: 300 << 20, ServerPeakRSS: 310 << 20},
	}
	want := map[string]bool{
		"ingest, no plugin (identity)":                      true,
		"ingest vs the floor (identity)":                    true, // 30.5%
		"ingest, AssemblyScript pii-redact":                 false,
		"p99 at half the maximum":                           true,
		"steady-state RSS at half the maximum, one project": false,
	}
	got := Targets(rows)
	if len(got) != len(want) {
		t.Fatalf("%d checks: %+v", len(got), got)
	}
	for _, c := range got {
		if ok, known := want[c.Name]; !known || ok != c.OK {
			t.Errorf("%s: ok=%v (%s)", c.Name, c.OK, c.Got)
		}
	}
}

// TestProvision creates projects in a real store: keys that resolve to
// their own project, with every channel on.
func TestProvision(t *testing.T) {
	dir := t.TempDir()
	keys, admin, err := Provision(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 || admin == "" {
		t.Fatalf("%d keys, admin %q", len(keys), admin)
	}
	st, err := storage.Open(storage.Options{Dir: dir, DisableAggregation: true, MinFreeDisk: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ps := st.Registry().Projects()
	if len(ps) != 3 {
		t.Fatalf("%d projects", len(ps))
	}
	for _, p := range ps {
		if ch := p.Channels(); !ch.MeshVisibility || !ch.HoverDwell || !ch.Gaze || !ch.CaptureErrors {
			t.Errorf("%s: channels %+v", p.ID, ch)
		}
	}
	if keys[0] == keys[1] {
		t.Fatal("two projects share a key")
	}
}
