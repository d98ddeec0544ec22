package storage

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
	"time"

	"github.com/uptimizr/edge/core"
)

// TestRollupsAgreeWithMinutes folds random events over a day and checks, for
// random ranges, that answers read from hourly roll-ups plus ragged minute
// ends equal a count of the events whose minute overlaps the range.
func TestRollupsAgreeWithMinutes(t *testing.T) {
	s := openTest(t, Options{DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	r := rand.New(rand.NewSource(3))
	base := int64(1795892400000) // an hour boundary
	type ev struct {
		ts  int64
		fps float64
	}
	var evs []ev
	for batch := 0; batch < 40; batch++ {
		b := &core.Batch{ProjectID: "p", ProjectNum: pnum}
		for i := 0; i < 100; i++ {
			ts := base + r.Int63n(26*hourMs)
			fps := float64(r.Intn(120))
			evs = append(evs, ev{ts, fps})
			js := fmt.Sprintf(`{"type":"frame_perf","sessionId":"s%d","ts":%d,"sceneId":"sc","fps":%v}`, i%3, ts, fps)
			b.AppendEvent(core.TypeFramePerf, ts, []byte(fmt.Sprintf("s%d", i%3)), []byte(js))
		}
		if err := s.Sink().Commit(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	rd := s.Reader()
	check := func(since, until int64) {
		t.Helper()
		q := core.DefaultQuery()
		q.Since, q.Until = since, until
		var want int64
		var sum float64
		minFPS := math.Inf(1)
		for _, e := range evs {
			m := e.ts - e.ts%minuteMs
			if m+minuteMs > since && m <= until {
				want++
				sum += e.fps
				minFPS = math.Min(minFPS, e.fps)
			}
		}
		rows, err := rd.EventCounts(pnum, q)
		if err != nil {
			t.Fatal(err)
		}
		var got int64
		for _, row := range rows {
			got += row.Count
		}
		perf, err := rd.Perf(pnum, q)
		if err != nil {
			t.Fatal(err)
		}
		ts, err := rd.Timeseries(pnum, q, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		var tsSum int64
		for _, row := range ts {
			tsSum += row.Events
		}
		if got != want || perf.Samples != want || tsSum != want {
			t.Fatalf("[%d, %d]: counts %d perf %d timeseries %d, want %d", since-base, until-base, got, perf.Samples, tsSum, want)
		}
		if want > 0 && (math.Abs(*perf.AvgFPS-sum/float64(want)) > 1e-9 || *perf.MinFPS != minFPS) {
			t.Fatalf("[%d, %d]: perf %+v, want avg %v min %v", since-base, until-base, perf, sum/float64(want), minFPS)
		}
	}
	check(0, math.MaxInt64)
	check(base, base+hourMs-1)                    // exactly one hour
	check(base+30*minuteMs, base+90*minuteMs)     // ragged both ends
	check(base+5*minuteMs+17, base+5*minuteMs+20) // inside one minute
	for i := 0; i < 200; i++ {
		a := base - hourMs + r.Int63n(28*hourMs)
		b := a + r.Int63n(10*hourMs)
		check(a, b)
	}
}

// TestSessionIndexFollowsEarlierEvents: when a session's earlier events are
// folded after later ones, the session is listed once, under its new start.
func TestSessionIndexFollowsEarlierEvents(t *testing.T) {
	s := openTest(t, Options{DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	commit := func(sess string, ts ...int64) {
		b := &core.Batch{ProjectID: "p", ProjectNum: pnum}
		for _, x := range ts {
			b.AppendEvent(core.TypeSceneChange, x, []byte(sess), []byte(fmt.Sprintf(`{"type":"scene_change","sessionId":%q,"ts":%d,"sceneId":"a"}`, sess, x)))
		}
		if err := s.Sink().Commit(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		if err := s.Aggregator().Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	commit("late", 5000, 6000)
	commit("other", 3000)
	commit("late", 1000)
	q := core.DefaultQuery()
	rows, err := s.Reader().Sessions(pnum, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].SessionID != "other" || rows[1].SessionID != "late" || rows[1].Events != 3 ||
		rows[1].StartedAt != time.UnixMilli(1000).UTC().Format("2006-01-02T15:04:05.000Z") {
		t.Fatalf("rows %+v", rows)
	}
	q.Since, q.Until = 5500, 5600 // inside "late" only
	if rows, _ := s.Reader().Sessions(pnum, q); len(rows) != 1 || rows[0].SessionID != "late" {
		t.Fatalf("overlap: %+v", rows)
	}
	q = core.DefaultQuery()
	q.Limit = 1
	if rows, _ := s.Reader().Sessions(pnum, q); len(rows) != 1 || rows[0].SessionID != "other" {
		t.Fatalf("limit 1: %+v", rows)
	}
}

// TestAggregatorLag: lag counts committed records until they are folded,
// including a backlog left by an earlier process.
func TestAggregatorLag(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir, DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	commit := func(s *Store) {
		b := &core.Batch{ProjectID: "p", ProjectNum: pnum}
		b.AppendEvent(core.TypeSceneChange, 1, []byte("s"), []byte(`{"type":"scene_change","sessionId":"s","ts":1,"sceneId":"a"}`))
		if err := s.Sink().Commit(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	commit(s)
	commit(s)
	if lag := s.Aggregator().Stats().Lag; lag != 2 {
		t.Fatalf("lag %d, want 2", lag)
	}
	s.Close()
	s2 := openTest(t, Options{Dir: dir, DisableAggregation: true})
	commit(s2)
	if lag := s2.Aggregator().Stats().Lag; lag != 3 {
		t.Fatalf("lag after reopen %d, want 3 (2 left over + 1)", lag)
	}
	if err := s2.Aggregator().Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := s2.Aggregator().Stats(); st.Lag != 0 || st.Records != 3 || st.Events != 3 {
		t.Fatalf("after sync %+v", st)
	}
}
