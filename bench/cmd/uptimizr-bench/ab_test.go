package main

import (
	"strings"
	"testing"
	"time"

	"github.com/uptimizr/edge/bench/report"
	"github.com/uptimizr/edge/bench/suite"
)

// TestWriteAB: the report gives each round's figures, the medians (of an
// odd and an even number of rounds), and the ratios of the medians.
func TestWriteAB(t *testing.T) {
	row := func(eps, cpu float64, p99ms int, rssMiB int64) report.Row {
		return report.Row{Scenario: "ingest", EventsPerSec: eps, ServerCPU: cpu, P99: time.Duration(p99ms) * time.Millisecond, ServerMedianRSS: rssMiB << 20}
	}
	results := map[string]map[string][]report.Row{
		"base": {"ingest": {row(400_000, 1.6, 20, 100), row(500_000, 1.5, 10, 120), row(300_000, 1.8, 30, 110)}},
		"head": {"ingest": {row(800_000, 1.6, 12, 90), row(1_000_000, 1.5, 8, 130)}},
	}
	var b strings.Builder
	writeAB(&b, report.Machine{CPUModel: "test", Cores: 2}, "main", "0123456789abcdef", 3, []suite.Scenario{{Name: "ingest"}}, results)
	out := b.String()
	for _, want := range []string{
		"| ingest | base | 400000, 500000, 300000 | 4.00, 3.00, 6.00 | 20.0, 10.0, 30.0 | 100, 120, 110 | 400000 | 4.00 | 20.0 | 110 |",
		"| ingest | work tree | 800000, 1000000 | 2.00, 1.50 | 12.0, 8.0 | 90, 130 | 900000 | 1.75 | 10.0 | 110 |",
		"| ingest | 2.25× | 0.44× | 0.50× | 1.00× |",
		"main (0123456789ab)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if m := median(nil); m != 0 {
		t.Errorf("median of nothing: %v", m)
	}
}
