package storage

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/uptimizr/edge/core"
)

// TestXRRotation folds one session's view directions over two folds (the
// turn between them measured from the first fold's last direction) and
// another's in one, and checks the turns against their angles.
func TestXRRotation(t *testing.T) {
	s := openTest(t, Options{DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	t0 := int64(1795892400000)
	cam := func(sess string, dt int64, x, y, z float64) [3]string {
		return [3]string{"camera_sample", sess, fmt.Sprintf(`%d,"position":[0,0,0],"direction":[%v,%v,%v]`, t0+dt, x, y, z)}
	}
	// s1: +z, +x (90°), then in the next fold -z (90°), -z (0°), and a
	// zero vector that counts nothing.
	commitEvents(t, s, pnum, [][3]string{cam("s1", 0, 0, 0, 1), cam("s1", 100, 1, 0, 0), cam("s2", 0, 0, 0, 1), cam("s2", 50, 0, 1, 1)})
	commitEvents(t, s, pnum, [][3]string{cam("s1", 200, 0, 0, -1), cam("s1", 300, 0, 0, -1), cam("s1", 400, 0, 0, 0)})
	rows, err := s.Reader().XRRotation(pnum, core.DefaultQuery(), 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("rows %+v", rows)
	}
	s1, s2 := rows[0], rows[1]
	if s1.SessionID != "s1" || s1.Samples != 3 || math.Abs(s1.TotalTurnRad-math.Pi) > 1e-9 || math.Abs(s1.MaxTurnRad-math.Pi/2) > 1e-9 ||
		math.Abs(s1.AvgTurnRad-math.Pi/3) > 1e-9 || s1.RapidSegments != 2 {
		t.Errorf("s1 %+v", s1)
	}
	if s2.SessionID != "s2" || s2.Samples != 1 || math.Abs(s2.TotalTurnRad-math.Pi/4) > 1e-9 || s2.RapidSegments != 1 {
		t.Errorf("s2 %+v", s2)
	}
	// A threshold above 45° leaves s2's turn out.
	if rows, _ := s.Reader().XRRotation(pnum, core.DefaultQuery(), 0.8); rows[1].RapidSegments != 0 || rows[0].RapidSegments != 2 {
		t.Errorf("rapid at 0.8: %+v", rows)
	}
}

// TestNavigation folds one session's positions over two folds and checks
// the steps, their total and the active ones against the distances.
func TestNavigation(t *testing.T) {
	s := openTest(t, Options{DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	t0 := int64(1795892400000)
	cam := func(sess string, dt int64, x, y, z float64) [3]string {
		return [3]string{"camera_sample", sess, fmt.Sprintf(`%d,"position":[%v,%v,%v],"direction":[0,0,1]`, t0+dt, x, y, z)}
	}
	// Steps: 3 (3-4-5 triangle... 0→(3,4,0) = 5), then 0.01, then (next
	// fold) 2, and 0.
	commitEvents(t, s, pnum, [][3]string{cam("s1", 0, 0, 0, 0), cam("s1", 10, 3, 4, 0), cam("s1", 20, 3, 4, 0.01)})
	commitEvents(t, s, pnum, [][3]string{cam("s1", 30, 3, 4, 2.01), cam("s1", 40, 3, 4, 2.01), cam("s2", 0, 1, 1, 1)})
	rows, err := s.Reader().Navigation(pnum, core.DefaultQuery(), 0.05)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("rows %+v (s2 has no step)", rows)
	}
	r := rows[0]
	if r.SessionID != "s1" || r.Segments != 4 || math.Abs(r.TotalDistance-7.01) > 1e-9 || r.ActiveSegments != 2 || math.Abs(r.ActiveDistance-7) > 1e-9 {
		t.Errorf("navigation %+v", r)
	}
	all, _ := s.Reader().Navigation(pnum, core.DefaultQuery(), 0)
	if all[0].ActiveSegments != 4 {
		t.Errorf("threshold 0: %+v", all)
	}
	commitEvents(t, s, pnum, [][3]string{{"capability_change", "s1", fmt.Sprint(t0) + `,"kind":"quality","from":"high","to":"low"`},
		{"capability_change", "s2", fmt.Sprint(t0) + `,"kind":"quality","from":"high","to":"low"`},
		{"capability_change", "s2", fmt.Sprint(t0) + `,"kind":"feature"`}})
	caps, _ := s.Reader().Capabilities(pnum, core.DefaultQuery())
	if fmt.Sprint(caps) != fmt.Sprint([]core.CapabilityChangeRow{{Kind: "quality", From: "high", To: "low", Changes: 2}, {Kind: "feature", Changes: 1}}) {
		t.Errorf("capabilities %+v", caps)
	}
}

// TestPaths: a session's path is one position per second, in time order
// across folds; paths cut them to floor cells.
func TestPaths(t *testing.T) {
	s := openTest(t, Options{DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	t0 := int64(1795892400000)
	cam := func(sess string, dt int64, x, y, z float64) [3]string {
		return [3]string{"camera_sample", sess, fmt.Sprintf(`%d,"position":[%v,%v,%v],"direction":[0,0,1]`, t0+dt, x, y, z)}
	}
	commitEvents(t, s, pnum, [][3]string{cam("b", 2500, 4, 0, 4), cam("b", 100, 0, 1, 0), cam("b", 300, 2, 3, 2.5)})
	commitEvents(t, s, pnum, [][3]string{cam("a", 0, -1.5, 0, 0.5), cam("b", hourMs+10, 9, 9, 9)})
	rd := s.Reader()
	tr, err := rd.Trajectory(pnum, core.DefaultQuery(), "b")
	if err != nil {
		t.Fatal(err)
	}
	// One point per second: the first the fold saw in it.
	want := []core.TrajectoryRow{{TS: t0 + 100, Y: 1}, {TS: t0 + 2500, X: 4, Z: 4}, {TS: t0 + hourMs + 10, X: 9, Y: 9, Z: 9}}
	if fmt.Sprint(tr) != fmt.Sprint(want) {
		t.Fatalf("trajectory %+v, want %+v", tr, want)
	}
	q := core.DefaultQuery()
	q.Until = t0 + 1999 // seconds overlapping the range are in it
	if tr, _ := rd.Trajectory(pnum, q, "b"); len(tr) != 1 {
		t.Errorf("until +1.999 s: %+v", tr)
	}
	q = core.DefaultQuery()
	q.Limit = 3
	ps, _ := rd.Paths(pnum, q, 2)
	wantP := []core.PathPointRow{{SessionID: "a", TS: t0, GX: -1, GZ: 0}, {SessionID: "b", TS: t0 + 100, GX: 0, GZ: 0}, {SessionID: "b", TS: t0 + 2500, GX: 2, GZ: 2}}
	if fmt.Sprint(ps) != fmt.Sprint(wantP) {
		t.Errorf("paths %+v, want %+v", ps, wantP)
	}
	if tr, _ := rd.Trajectory(pnum, core.DefaultQuery(), "nobody"); tr == nil || len(tr) != 0 {
		t.Errorf("unknown session: %v", tr)
	}
}

// TestStepBins: every distance falls in the bin whose bounds hold it, and
// the default threshold is a bound.
func TestStepBins(t *testing.T) {
	for _, d := range []float64{0.05, 0.0625, 0.074, 0.075, 0.1, 1, 0.01, 1e-9, 123, 0.049999} {
		b := stepBin(d)
		if !(stepBinLow(b) <= d*(1+1e-12) && stepBinLow(b+1) > d) {
			t.Errorf("%v: bin %d [%v, %v)", d, b, stepBinLow(b), stepBinLow(b+1))
		}
	}
	if stepBinLow(stepBin(stepAnchor)) != stepAnchor {
		t.Errorf("the default threshold is no bin bound")
	}
}

// activeSteps gives, for every bin, what the per-item test it replaces
// gave: at the default threshold, on and around bin bounds, at random
// thresholds, and at the ends of the range.
func TestActiveStepsAgree(t *testing.T) {
	old := func(move float64, b uint16, longest float64) bool {
		lo, hi := stepBinLow(b), stepBinLow(b+1)
		return move == 0 || lo >= move*(1-1e-9) || hi > move && longest >= move
	}
	moves := []float64{0, 0.05, 1e-300, 1e300, math.MaxFloat64, 0.0499999999, 0.0500000001}
	for b := uint16(2); b < 400; b += 7 {
		lo := stepBinLow(b)
		moves = append(moves, lo, math.Nextafter(lo, 0), math.Nextafter(lo, math.Inf(1)), lo*(1-1e-9), lo*(1-2e-9))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		moves = append(moves, math.Exp(r.Float64()*60-30))
	}
	for _, move := range moves {
		a := newActiveSteps(move)
		for b := 0; b < 1<<16; b++ {
			for _, longest := range []float64{0, move, math.Nextafter(move, 0), move * 2, stepBinLow(uint16(b)), stepBinLow(uint16(b + 1))} {
				if got, want := a.of(uint16(b), longest), old(move, uint16(b), longest); got != want {
					t.Fatalf("move %g bin %d longest %g: %v, want %v", move, b, longest, got, want)
				}
			}
		}
	}
}
