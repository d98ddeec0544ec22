package load

import (
	"context"
	"testing"
	"time"
)

// collectWindows returns an OnWindow that keeps a copy of every window.
func collectWindows(got *[]WindowStats) func(*WindowStats) {
	return func(w *WindowStats) { *got = append(*got, *w) }
}

// checkWindows holds the windows to the run's result: consecutive, every
// one but the last as long as asked, and together exactly the measured
// requests, outcomes and latencies of the run.
func checkWindows(t *testing.T, ws []WindowStats, res *Result, every time.Duration) {
	t.Helper()
	if len(ws) == 0 {
		t.Fatal("no window")
	}
	var sum WindowStats
	for i, w := range ws {
		if w.Index != i {
			t.Errorf("window %d has index %d", i, w.Index)
		}
		if i > 0 && !w.Start.Equal(ws[i-1].End) {
			t.Errorf("window %d starts at %v, the previous one ended at %v", i, w.Start, ws[i-1].End)
		}
		if d := w.End.Sub(w.Start); i < len(ws)-1 && d != every {
			t.Errorf("window %d lasts %v, want %v", i, d, every)
		} else if d < 0 || d > every+time.Second {
			t.Errorf("last window lasts %v", d)
		}
		if w.Latency.Count() != w.Requests || w.OK+w.Errors != w.Requests {
			t.Errorf("window %d: %d latencies, %d requests, %d ok, %d errors", i, w.Latency.Count(), w.Requests, w.OK, w.Errors)
		}
		sum.Requests += w.Requests
		sum.OK += w.OK
		sum.Errors += w.Errors
		sum.Dropped += w.Dropped
		sum.Events += w.Events
		sum.Accepted += w.Accepted
		sum.Latency.Merge(&w.Latency)
	}
	if sum.Requests != res.Requests || sum.OK != res.OK || sum.Errors != res.ErrorCount() || sum.Dropped != res.Dropped ||
		sum.Events != res.Events || sum.Accepted != res.Accepted {
		t.Errorf("windows add up to %d requests, %d ok, %d errors, %d dropped, %d events, %d accepted; the run: %d, %d, %d, %d, %d, %d",
			sum.Requests, sum.OK, sum.Errors, sum.Dropped, sum.Events, sum.Accepted,
			res.Requests, res.OK, res.ErrorCount(), res.Dropped, res.Events, res.Accepted)
	}
	if sum.Latency != res.Latency {
		t.Errorf("the windows' latencies merged (p99 %v, %d values) are not the run's (p99 %v, %d values)",
			sum.Latency.Percentile(0.99), sum.Latency.Count(), res.Percentile(0.99), res.Latency.Count())
	}
}

func TestWindowsAddUpToTheRun(t *testing.T) {
	c := startCollector(t, &collector{reply: func(key string) (int, string) {
		if key == "down" {
			return 503, `{"error":"storage cannot take writes"}`
		}
		return 200, `{"accepted":4}`
	}})
	b := mustEncode(t, batch(1, 5), "identity", 5)
	tgt := Target{URL: c.url, Keys: []string{"ok", "down"}}
	const every = 100 * time.Millisecond

	var closed []WindowStats
	res, err := Run(context.Background(), tgt, []Body{b}, Options{Concurrency: 3, Duration: 550 * time.Millisecond,
		Warmup: 100 * time.Millisecond, Window: every, OnWindow: collectWindows(&closed)})
	if err != nil {
		t.Fatal(err)
	}
	checkWindows(t, closed, res, every)
	if len(closed) < 5 || res.WarmupRequests == 0 || res.Errors[503] == 0 || res.Accepted == 0 {
		t.Errorf("%d windows, %d warmup requests, errors %v, %d accepted", len(closed), res.WarmupRequests, res.Errors, res.Accepted)
	}
	if res.Accepted != 4*res.OK {
		t.Errorf("%d accepted for %d answers of 4", res.Accepted, res.OK)
	}

	var open []WindowStats
	res, err = Run(context.Background(), tgt, []Body{b}, Options{Rate: 400, Duration: 500 * time.Millisecond,
		Warmup: 100 * time.Millisecond, Window: every, OnWindow: collectWindows(&open)})
	if err != nil {
		t.Fatal(err)
	}
	checkWindows(t, open, res, every)
	if len(open) < 5 || res.Requests < 100 {
		t.Errorf("%d windows, %d requests at 400/s for 0.5 s", len(open), res.Requests)
	}
}

// A cancelled run still closes its last window, and the windows add up to
// what the run returns.
func TestWindowsOfACancelledRun(t *testing.T) {
	c := startCollector(t, &collector{})
	b := mustEncode(t, batch(1, 1), "identity", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 350*time.Millisecond)
	defer cancel()
	var ws []WindowStats
	res, err := Run(ctx, Target{URL: c.url, Keys: []string{"k"}}, []Body{b}, Options{Rate: 200, Duration: 30 * time.Second,
		Window: 100 * time.Millisecond, OnWindow: collectWindows(&ws)})
	if err == nil || res == nil {
		t.Fatalf("err %v res %v", err, res)
	}
	checkWindows(t, ws, res, 100*time.Millisecond)
	if len(ws) < 3 || len(ws) > 6 || res.Requests == 0 {
		t.Errorf("%d windows, %d requests in a run cancelled after 350 ms", len(ws), res.Requests)
	}
}

func TestWindowOptions(t *testing.T) {
	c := startCollector(t, &collector{})
	b := mustEncode(t, batch(1, 1), "identity", 1)
	tgt := Target{URL: c.url, Keys: []string{"k"}}
	for _, o := range []Options{
		{Requests: 1, Window: time.Second},
		{Requests: 1, OnWindow: func(*WindowStats) {}},
		{Requests: 1, Window: -time.Second, OnWindow: func(*WindowStats) {}},
	} {
		if _, err := Run(context.Background(), tgt, []Body{b}, o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	if c.total.Load() != 0 {
		t.Errorf("%d requests sent with bad options", c.total.Load())
	}
	// A run shorter than a window still reports its requests, in one
	// window that ends with its last request.
	var ws []WindowStats
	res, err := Run(context.Background(), tgt, []Body{b}, Options{Requests: 5, Window: time.Hour, OnWindow: collectWindows(&ws)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || ws[0].Requests != 5 || ws[0].End.Sub(ws[0].Start) > time.Minute {
		t.Fatalf("%d windows: %+v", len(ws), ws)
	}
	checkWindows(t, ws, res, time.Hour)
}
