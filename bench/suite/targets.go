package suite

import (
	"fmt"

	"github.com/uptimizr/edge/bench/report"
)

// The performance targets of a 2-core node with the load generator on the
// same machine (200-event batches, retention off, commits durable against
// a crash of the process).
const (
	TargetEvents       = 600_000   // events/s without plugins
	TargetFloorShare   = 0.25      // of the floor's events/s
	TargetPluginEvents = 300_000   // events/s with the AssemblyScript redaction plugin
	TargetP99Millis    = 10        // p99 at half the maximum
	TargetRSS          = 256 << 20 // steady-state RSS at that load, one project
)

// Targets checks the rows of a run against the targets; a check whose
// scenarios did not run is left out.
func Targets(rows []report.Row) []report.Check {
	by := map[string]report.Row{}
	for _, r := range rows {
		by[r.Scenario] = r
	}
	var out []report.Check
	if r, ok := by["ingest"]; ok {
		out = append(out, report.Check{Name: "ingest, no plugin (identity)", Want: fmt.Sprintf("≥ %s events/s", report.Thousands(TargetEvents)),
			Got: report.Thousands(r.EventsPerSec) + " events/s", OK: r.EventsPerSec >= TargetEvents})
		if f, ok := by["floor"]; ok && f.EventsPerSec > 0 {
			share := r.EventsPerSec / f.EventsPerSec
			out = append(out, report.Check{Name: "ingest vs the floor (identity)", Want: fmt.Sprintf("≥ %.0f%%", TargetFloorShare*100),
				Got: fmt.Sprintf("%.1f%% of %s events/s", share*100, report.Thousands(f.EventsPerSec)), OK: share >= TargetFloorShare})
		}
	}
	if r, ok := by["ingest-gzip"]; ok {
		if f, ok := by["floor-gzip"]; ok && f.EventsPerSec > 0 {
			share := r.EventsPerSec / f.EventsPerSec
			out = append(out, report.Check{Name: "ingest vs the floor (gzip)", Want: fmt.Sprintf("≥ %.0f%%", TargetFloorShare*100),
				Got: fmt.Sprintf("%.1f%% of %s events/s", share*100, report.Thousands(f.EventsPerSec)), OK: share >= TargetFloorShare})
		}
	}
	if r, ok := by["plugin-1"]; ok {
		out = append(out, report.Check{Name: "ingest, AssemblyScript pii-redact", Want: fmt.Sprintf("≥ %s events/s", report.Thousands(TargetPluginEvents)),
			Got: report.Thousands(r.EventsPerSec) + " events/s", OK: r.EventsPerSec >= TargetPluginEvents})
	}
	if r, ok := by["ingest-half-load"]; ok {
		out = append(out, report.Check{Name: "p99 at half the maximum", Want: fmt.Sprintf("< %d ms", TargetP99Millis),
			Got: fmt.Sprintf("%.2f ms", float64(r.P99)/1e6), OK: r.P99.Milliseconds() < TargetP99Millis && r.P99 > 0})
		out = append(out, report.Check{Name: "steady-state RSS at half the maximum, one project", Want: fmt.Sprintf("< %d MiB", TargetRSS>>20),
			Got: fmt.Sprintf("%.0f MiB (median), %.0f MiB (peak)", float64(r.ServerMedianRSS)/(1<<20), float64(r.ServerPeakRSS)/(1<<20)),
			OK:  r.ServerMedianRSS > 0 && r.ServerMedianRSS < TargetRSS})
	}
	return out
}
