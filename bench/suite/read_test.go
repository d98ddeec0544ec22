package suite

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uptimizr/edge/bench/report"
)

// The plan of the default scenario: 10,000 sessions of five 200-event
// batches, starting evenly over the week before Now.
func TestReadPlanShape(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	o := ReadOptions{Now: now, Bodies: 8}
	o.defaults()
	p, err := newReadPlan(o)
	if err != nil {
		t.Fatal(err)
	}
	if p.sessions != 10_000 || p.perSession != 5 || p.batches != 50_000 {
		t.Fatalf("%d sessions × %d batches = %d", p.sessions, p.perSession, p.batches)
	}
	if p.to != now.UnixMilli() || p.to-p.from != week.Milliseconds() {
		t.Fatalf("timestamps %d–%d", p.from, p.to)
	}
	last := p.sessionStart(p.sessions-1) + int64(p.perSession)*p.stride
	if p.sessionStart(0) != p.from || last > p.to || last < p.to-p.stride {
		t.Fatalf("first session at %d, the last ends at %d (week %d–%d)", p.sessionStart(0), last, p.from, p.to)
	}
	// The batches in flight at once are those of a window of sessions.
	if s, j := p.at(0); s != 0 || j != 0 {
		t.Fatalf("batch 0: session %d batch %d", s, j)
	}
	if s, j := p.at(int64(p.inFlight)); s != 0 || j != 1 {
		t.Fatalf("batch %d: session %d batch %d", p.inFlight, s, j)
	}
}

// Every batch of a small plan is sent once, each session gets its batches
// in order, with its own id on every event and timestamps that rise from
// one batch to the next within the week.
func TestReadPlanRewritesSessionsAndTimes(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	o := ReadOptions{Now: now, Events: 21_000, SessionEvents: 1000, BatchSize: 200, Bodies: 16, Concurrency: 2}
	o.defaults()
	p, err := newReadPlan(o)
	if err != nil {
		t.Fatal(err)
	}
	// 21,000 events round to 21 sessions of 5 batches; 64 sessions in
	// flight at most, so one window, smaller than the others would be.
	if p.sessions != 21 || p.perSession != 5 || p.inFlight != 21 {
		t.Fatalf("%d sessions × %d batches, %d in flight", p.sessions, p.perSession, p.inFlight)
	}
	type seen struct {
		batches int
		lastTS  int64
	}
	bySession := map[string]*seen{}
	var buf []byte
	for k := range p.batches {
		var s int
		buf, s = p.body(buf, k)
		var doc struct {
			Events []struct {
				Type      string `json:"type"`
				SessionID string `json:"sessionId"`
				TS        int64  `json:"ts"`
			} `json:"events"`
		}
		if err := json.Unmarshal(buf, &doc); err != nil {
			t.Fatalf("batch %d: %v", k, err)
		}
		if len(doc.Events) != 200 {
			t.Fatalf("batch %d: %d events", k, len(doc.Events))
		}
		id := sessionID(s)
		st := bySession[id]
		if st == nil {
			st = &seen{}
			bySession[id] = st
		}
		if _, j := p.at(k); j != st.batches {
			t.Fatalf("batch %d is session %d's batch %d, after %d", k, s, j, st.batches)
		}
		for i, e := range doc.Events {
			if e.SessionID != id {
				t.Fatalf("batch %d event %d: session %q, want %q", k, i, e.SessionID, id)
			}
			if e.TS < p.from || e.TS > p.to {
				t.Fatalf("batch %d event %d: ts %d outside the week %d–%d", k, i, e.TS, p.from, p.to)
			}
			if i == 0 && e.TS <= st.lastTS {
				t.Fatalf("session %d batch %d starts at %d, before its previous batch ended (%d)", s, st.batches, e.TS, st.lastTS)
			}
			st.lastTS = max(st.lastTS, e.TS)
		}
		st.batches++
	}
	if len(bySession) != p.sessions {
		t.Fatalf("%d sessions", len(bySession))
	}
	for id, st := range bySession {
		if st.batches != p.perSession {
			t.Errorf("%s: %d batches", id, st.batches)
		}
	}
	if p.userAgent(0) == p.userAgent(1) || !strings.HasPrefix(p.userAgent(0), "Mozilla/5.0") {
		t.Errorf("user agents %q, %q", p.userAgent(0), p.userAgent(1))
	}
}

// routeName is a route's name without its variant: "event-counts (one
// day)" is event-counts.
func routeName(n string) string {
	n, _, _ = strings.Cut(n, " (")
	return n
}

// The routes cover every GET read route of docs/API.md and of the
// readRoutes table of edge/read_interact_test.go, and name no other.
func TestReadRoutesCoverTheAPI(t *testing.T) {
	ours := map[string]bool{}
	for _, r := range ReadRoutes("s-1", "lobby", 1, 2) {
		if r.Path == "" || r.Shown == "" || strings.Contains(r.Path, "{") {
			t.Errorf("%s: path %q, shown %q", r.Name, r.Path, r.Shown)
		}
		ours[routeName(r.Name)] = true
	}
	docs, err := os.ReadFile("../../docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	// Not read routes for a query key, or not one answer: the collect
	// endpoint, the admin key's routes (the fleet's too), and the Server-Sent Event streams.
	skip := regexp.MustCompile(`^(collect|keys|plugins|quarantine|fleet|live/stream|live/sessions/:id)$`)
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`(GET |POST |PUT |DELETE )?/api/v1/([^`? ]*)").FindAllStringSubmatch(string(docs), -1) {
		method, path := strings.TrimSpace(m[1]), strings.ReplaceAll(m[2], ":sceneId", ":id")
		if method != "" && method != "GET" || strings.Contains(path, "%") || skip.MatchString(path) {
			continue
		}
		documented[path] = true
	}
	src, err := os.ReadFile("../../edge/read_interact_test.go")
	if err != nil {
		t.Fatal(err)
	}
	table := regexp.MustCompile(`(?s)var readRoutes = \[\]struct \{.*?\n\}\n`).Find(src)
	if table == nil {
		t.Fatal("no readRoutes table in edge/read_interact_test.go")
	}
	tested := regexp.MustCompile(`\{"([^"]+)", \[\]string`).FindAllSubmatch(table, -1)
	if len(documented) < 50 || len(tested) < 40 {
		t.Fatalf("%d documented routes, %d in readRoutes: the patterns no longer match", len(documented), len(tested))
	}
	for _, m := range tested {
		if !ours[string(m[1])] {
			t.Errorf("%s (readRoutes) is not measured", m[1])
		}
	}
	for p := range documented {
		if !ours[p] {
			t.Errorf("%s (docs/API.md) is not measured", p)
		}
	}
	for p := range ours {
		if !documented[p] {
			t.Errorf("%s is not a documented GET route", p)
		}
	}
}

// buildCollector builds uptimizr-edge from this checkout.
func buildCollector(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "uptimizr-edge")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/uptimizr-edge")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the collector: %v\n%s", err, out)
	}
	return bin
}

// TestReadScenario runs the scenario at a tiny scale against the real
// collector, with raw retention off and on: every route answers 200, or
// the documented 403 of the raw routes without retention; the report has
// one row per route, and each route's percentiles are ordered.
func TestReadScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the collector")
	}
	bin := buildCollector(t)
	for _, retention := range []bool{false, true} {
		name := map[bool]string{false: "retention-off", true: "retention-on"}[retention]
		t.Run(name, func(t *testing.T) {
			const requests = 3
			r, err := RunRead(t.Context(), ReadOptions{Collector: bin, Events: 20_000, Requests: requests, Concurrency: 4, Retention: retention})
			if err != nil {
				t.Fatal(err)
			}
			if r.Events != 20_000 || r.Accepted != r.Events || r.Rejected != 0 || r.Sessions != 20 || r.Batches != 100 {
				t.Fatalf("%d events in %d batches, %d sessions: %d accepted, %d rejected", r.Events, r.Batches, r.Sessions, r.Accepted, r.Rejected)
			}
			if r.FoldedEvents < r.Accepted || r.CatchUp <= 0 || r.LoadTime <= 0 || r.EventsPerSec() <= 0 {
				t.Fatalf("folded %d of %d, catch-up %v, load %v", r.FoldedEvents, r.Accepted, r.CatchUp, r.LoadTime)
			}
			want := ReadRoutes(r.Session, r.Scene, r.From.UnixMilli(), r.To.UnixMilli())
			if len(r.Routes) != len(want) {
				t.Fatalf("%d routes measured, %d listed", len(r.Routes), len(want))
			}
			byDesign := 0
			for i, rt := range r.Routes {
				if rt.Name != want[i].Name || rt.Path != want[i].Path {
					t.Errorf("route %d: %s %s, want %s %s", i, rt.Name, rt.Path, want[i].Name, want[i].Path)
				}
				if len(rt.Statuses) != requests || len(rt.Latencies) != requests || len(rt.Sizes) != requests {
					t.Errorf("%s: %d statuses, %d latencies, %d sizes", rt.Name, len(rt.Statuses), len(rt.Latencies), len(rt.Sizes))
				}
				wantStatus := 200
				if rt.Raw && !retention {
					wantStatus = 403
				}
				for _, st := range rt.Statuses {
					if st != wantStatus {
						t.Errorf("%s: %v, want %d (%s)", rt.Name, rt.Statuses, wantStatus, rt.FirstError)
						break
					}
				}
				if rt.FirstError != "" || rt.Errors(retention) != 0 {
					t.Errorf("%s: %d errors, first %s", rt.Name, rt.Errors(retention), rt.FirstError)
				}
				if rt.ByDesign(retention) {
					byDesign++
				}
				if p50, p99, mx := rt.P50(), rt.P99(), rt.Max(); p50 <= 0 || p50 > p99 || p99 > mx {
					t.Errorf("%s: p50 %v, p99 %v, max %v", rt.Name, p50, p99, mx)
				}
				if rt.Bytes() <= 2 && wantStatus == 200 && rt.Name != "clicks/rage" {
					t.Errorf("%s: a %d-byte answer over 20,000 events", rt.Name, rt.Bytes())
				}
			}
			if wantDesign := map[bool]int{false: 2, true: 0}[retention]; byDesign != wantDesign {
				t.Errorf("%d routes 403 by design, want %d", byDesign, wantDesign)
			}

			var md bytes.Buffer
			if err := report.ReadMarkdown(&md, r); err != nil {
				t.Fatal(err)
			}
			rows := 0
			for _, line := range strings.Split(md.String(), "\n") {
				if strings.HasPrefix(line, "| ") && strings.Contains(line, " | `") {
					rows++
				}
			}
			if rows != len(r.Routes) {
				t.Errorf("%d route rows in the markdown, %d routes:\n%s", rows, len(r.Routes), md.String())
			}
			var js bytes.Buffer
			if err := report.ReadJSON(&js, r); err != nil {
				t.Fatal(err)
			}
			var doc struct {
				EventsPerSec float64 `json:"events_per_sec"`
				Routes       []struct {
					Route   string  `json:"route"`
					P50     float64 `json:"p50_ms"`
					P99     float64 `json:"p99_ms"`
					Max     float64 `json:"max_ms"`
					Verdict string  `json:"verdict"`
				} `json:"routes"`
			}
			if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc.Routes) != len(r.Routes) || doc.EventsPerSec <= 0 {
				t.Fatalf("JSON: %d routes, %v events/s", len(doc.Routes), doc.EventsPerSec)
			}
			var names []string
			for i, jr := range doc.Routes {
				names = append(names, jr.Route)
				if !slices.Contains([]string{"PASS", "FAIL", "403 by design"}, jr.Verdict) || jr.P50 > jr.P99 || jr.P99 > jr.Max {
					t.Errorf("JSON %s: %+v", jr.Route, jr)
				}
				if i > 0 && jr.Verdict != "403 by design" && doc.Routes[i-1].Verdict != "403 by design" && jr.P99 > doc.Routes[i-1].P99 {
					t.Errorf("JSON routes not sorted by p99: %s %.3f after %s %.3f", jr.Route, jr.P99, doc.Routes[i-1].Route, doc.Routes[i-1].P99)
				}
			}
			slices.Sort(names)
			if len(slices.Compact(names)) != len(r.Routes) {
				t.Errorf("route names repeat: %v", names)
			}
		})
	}
}
