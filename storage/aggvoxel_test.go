package storage

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/uptimizr/edge/core"
)

// TestSpatialHeatmaps checks the voxel routes against cells computed from
// the points: exact for cell sizes that are multiples of 0.1, and every
// point within 0.05 per axis of its cell otherwise.
func TestSpatialHeatmaps(t *testing.T) {
	s := openTest(t, Options{DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	r := rand.New(rand.NewSource(11))
	t0 := int64(1795892400000)
	type pt struct {
		p      [3]float64
		source string
	}
	var hits, cams []pt
	var evs [][3]string
	for i := 0; i < 600; i++ {
		var p [3]float64
		for k := range p {
			p[k] = math.Round((r.Float64()*20-10)*1000) / 1000
		}
		sess := fmt.Sprintf("s%d", i%5)
		if i%2 == 0 {
			src := []string{"mouse", "touch"}[r.Intn(2)]
			hits = append(hits, pt{p, src})
			typ := []string{"pointer_move", "pointer_click"}[r.Intn(2)]
			evs = append(evs, [3]string{typ, sess, fmt.Sprintf(`%d,"hitPoint":[%v,%v,%v],"source":%q`, t0+int64(i), p[0], p[1], p[2], src)})
		} else {
			cams = append(cams, pt{p, ""})
			evs = append(evs, [3]string{"camera_sample", sess, fmt.Sprintf(`%d,"position":[%v,%v,%v],"direction":[0,0,1]`, t0+int64(i), p[0], p[1], p[2])})
		}
	}
	commitEvents(t, s, pnum, evs)
	rd := s.Reader()
	cellOf := func(p [3]float64, base, cs float64) [3]int64 {
		var c [3]int64
		for i := range c {
			// the base voxel, then its cell, as integers (exact for multiples of the base)
			c[i] = floorDiv(int64(math.Floor(p[i]/base)), int64(math.Round(cs/base)))
		}
		return c
	}
	cell := func(p [3]float64, cs float64) [3]int64 { return cellOf(p, GazeVoxel, cs) }
	for _, cs := range []float64{0.5, 1, 2.3} {
		want := map[[3]int64]int64{}
		for _, h := range hits {
			if h.source == "touch" {
				want[cell(h.p, cs)]++
			}
		}
		q := core.DefaultQuery()
		q.Limit, q.Source = 1000, "touch"
		rows, err := rd.HeatWorld(pnum, q, cs, nil)
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		for _, row := range rows {
			total += row.Count
		}
		if total != int64(len(want)) && total == 0 {
			t.Fatal("no touch hits")
		}
		if cs != 2.3 {
			got := map[[3]int64]int64{}
			for _, row := range rows {
				got[[3]int64{row.VX, row.VY, row.VZ}] = row.Count
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("world at %v\n got %v\nwant %v", cs, got, want)
			}
		}
		st, _ := rd.WorldStats(pnum, q, cs, nil)
		if st.Cells != int64(len(rows)) || st.Hits != total || st.CellSize != cs {
			t.Errorf("world stats at %v: %+v, rows %d total %d", cs, st, len(rows), total)
		}
	}
	// Off the 0.1 grid: each point's cell by its voxel's middle is within
	// 0.05 per axis of its own.
	q := core.DefaultQuery()
	q.Limit = 1000
	rows, _ := rd.HeatWorld(pnum, q, 2.3, nil)
	var n int64
	for _, row := range rows {
		n += row.Count
	}
	if n != int64(len(hits)) {
		t.Errorf("world at 2.3 counts %d hits, want %d", n, len(hits))
	}
	// A region keeps the points inside it.
	reg := core.Region{-5, -5, -5, 5, 5, 5}
	var inside int64
	for _, h := range hits {
		mid := [3]float64{}
		for i := range mid {
			mid[i] = (math.Floor(h.p[i]/GazeVoxel) + 0.5) * GazeVoxel
		}
		if reg.Holds(mid) {
			inside++
		}
	}
	st, _ := rd.WorldStats(pnum, q, 1, &reg)
	if st.Hits != inside || inside == 0 {
		t.Errorf("region: %d hits, want %d", st.Hits, inside)
	}
	// Floor plan: x/z cells with the mean height of their voxels' middles.
	type acc struct {
		n    int64
		sumY float64
	}
	plan := map[[2]int64]*acc{}
	for _, c := range cams {
		k := cellOf(c.p, CameraVoxel, 1)
		a := plan[[2]int64{k[0], k[2]}]
		if a == nil {
			a = &acc{}
			plan[[2]int64{k[0], k[2]}] = a
		}
		a.n++
		a.sumY += (math.Floor(c.p[1]/CameraVoxel) + 0.5) * CameraVoxel
	}
	pos, _ := rd.HeatPosition(pnum, q, 1, nil)
	if len(pos) != len(plan) {
		t.Fatalf("position: %d cells, want %d", len(pos), len(plan))
	}
	for _, row := range pos {
		a := plan[[2]int64{row.GX, row.GZ}]
		if a == nil || a.n != row.Count || math.Abs(a.sumY/float64(a.n)-row.AvgY) > 1e-9 {
			t.Errorf("position %+v, want %+v", row, a)
		}
	}
	cov, _ := rd.Coverage(pnum, q, 1)
	var covN int64
	for _, row := range cov {
		covN += row.Count
	}
	if covN != int64(len(cams)) {
		t.Errorf("coverage counts %d, want %d", covN, len(cams))
	}
}
