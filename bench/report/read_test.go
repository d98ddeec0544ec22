package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func msd(v ...float64) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x * 1e6)
	}
	return out
}

func TestQuantileInterpolates(t *testing.T) {
	// 1..50 ms, shuffled: p50 is 25.5 ms, p99 lies between 49 and 50.
	var v []float64
	for i := 50; i >= 1; i-- {
		v = append(v, float64(i))
	}
	ds := msd(v...)
	if got := Quantile(ds, 0.5); got != 25500*time.Microsecond {
		t.Errorf("p50 %v", got)
	}
	if got := Quantile(ds, 0.99); got != 49510*time.Microsecond {
		t.Errorf("p99 %v", got)
	}
	if got := Quantile(ds, 1); got != 50*time.Millisecond {
		t.Errorf("p100 %v", got)
	}
	if ds[0] != 50*time.Millisecond {
		t.Error("Quantile sorted its argument")
	}
	if Quantile(nil, 0.5) != 0 || Quantile(msd(3), 0.99) != 3*time.Millisecond {
		t.Error("empty or single")
	}
}

func TestReadVerdicts(t *testing.T) {
	target := 50 * time.Millisecond
	ok := ReadRoute{Name: "ok", Path: "ok", Latencies: msd(1, 2, 3), Statuses: []int{200, 200, 200}, Sizes: []int{10, 30, 20}}
	slow := ReadRoute{Name: "slow", Path: "slow", Latencies: msd(40, 60, 70), Statuses: []int{200, 200, 200}}
	broken := ReadRoute{Name: "broken", Path: "broken", Latencies: msd(1, 1, 1), Statuses: []int{200, 500, 200}, FirstError: "500 boom"}
	raw := ReadRoute{Name: "funnel", Path: "funnel", Raw: true, Latencies: msd(1, 1, 1), Statuses: []int{403, 403, 403}}
	rawOther := ReadRoute{Name: "events", Path: "events", Raw: true, Latencies: msd(1, 1, 1), Statuses: []int{403, 403, 403}, FirstError: "403 no query capability"}
	for _, c := range []struct {
		r         ReadRoute
		retention bool
		want      string
		errors    int
	}{
		{ok, false, "PASS", 0},
		{slow, false, "FAIL", 0},
		{broken, false, "FAIL", 1},
		{raw, false, "403 by design", 0},
		{raw, true, "FAIL", 3}, // with retention a 403 is an error
		{rawOther, false, "FAIL", 1},
	} {
		if got := c.r.Verdict(c.retention, target); got != c.want {
			t.Errorf("%s (retention %v): %s, want %s", c.r.Name, c.retention, got, c.want)
		}
		if got := c.r.Errors(c.retention); got != c.errors {
			t.Errorf("%s (retention %v): %d errors, want %d", c.r.Name, c.retention, got, c.errors)
		}
	}
	if ok.Bytes() != 20 || ok.Max() != 3*time.Millisecond {
		t.Errorf("bytes %d, max %v", ok.Bytes(), ok.Max())
	}
	if got := statusCounts([]int{200, 503, 200, 0}); got != "net×1 200×2 503×1" {
		t.Errorf("statuses %q", got)
	}

	run := &Read{Machine: Machine{CPUModel: "test", Cores: 2}, Requests: 3, Target: target, Events: 1000, Batches: 5, BatchSize: 200,
		LoadTime: 2 * time.Second, Week: "since=1&until=2", Day: "since=1&until=2",
		Routes: []ReadRoute{raw, ok, broken, slow}}
	sorted := run.SortedRoutes()
	var names []string
	for _, r := range sorted {
		names = append(names, r.Name)
	}
	if strings.Join(names, ",") != "slow,ok,broken,funnel" {
		t.Errorf("sorted %v", names)
	}
	pass, fail, byDesign, withErrors := run.Tally()
	if pass != 1 || fail != 2 || byDesign != 1 || withErrors != 1 {
		t.Errorf("tally %d %d %d %d", pass, fail, byDesign, withErrors)
	}
	var md bytes.Buffer
	if err := ReadMarkdown(&md, run); err != nil {
		t.Fatal(err)
	}
	out := md.String()
	for _, want := range []string{
		"| **events/s** | **500** (3 req/s) |",
		"1 of 3 meet the 50.00 ms p99 target, 2 fail (1 with errors, below).",
		"1 read raw session events and answer 403 by design",
		"| slow | `slow` | 60.00 | 69.80 | 70.00 | 0 | 200×3 | **FAIL** |",
		"| funnel | `funnel` | 1.00 | 1.00 | 1.00 | 0 | 403×3 | 403 by design |",
		"## Errors",
		"| broken | 200×2 500×1 | 500 boom |",
		"`{week}` is `since=1&until=2`",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	var js bytes.Buffer
	if err := ReadJSON(&js, run); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Routes []struct {
			Route     string    `json:"route"`
			Verdict   string    `json:"verdict"`
			P99       float64   `json:"p99_ms"`
			Latencies []float64 `json:"latencies_ms"`
		} `json:"routes"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Routes) != 4 || doc.Routes[0].Route != "slow" || doc.Routes[0].P99 != 69.8 || len(doc.Routes[0].Latencies) != 3 || doc.Routes[3].Verdict != "403 by design" {
		t.Errorf("JSON %+v", doc.Routes)
	}
}
