package storage

import (
	"fmt"
	"math"
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
