package storage

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/uptimizr/edge/core"
)

// TestCameraDistance: positions at voxel middles are measured exactly;
// others land within half a voxel's diagonal, and every sample is counted.
func TestCameraDistance(t *testing.T) {
	s := openTest(t, Options{DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	r := rand.New(rand.NewSource(4))
	t0 := int64(1795892400000)
	center := [3]float64{1, -2, 0.5}
	want := map[int64]int64{}
	var evs [][3]string
	for i := 0; i < 400; i++ {
		var p [3]float64
		for k := range p {
			p[k] = (float64(r.Intn(200)-100) + 0.5) * CameraVoxel // a voxel's middle
		}
		d := math.Sqrt((p[0]-center[0])*(p[0]-center[0]) + (p[1]-center[1])*(p[1]-center[1]) + (p[2]-center[2])*(p[2]-center[2]))
		want[int64(math.Floor(d/2.5))]++
		evs = append(evs, [3]string{"camera_sample", fmt.Sprintf("s%d", i%4), fmt.Sprintf(`%d,"position":[%v,%v,%v],"direction":[0,0,1]`, t0+int64(i), p[0], p[1], p[2])})
	}
	commitEvents(t, s, pnum, evs)
	rows, err := s.Reader().CameraDistance(pnum, core.DefaultQuery(), center, 2.5)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]int64{}
	for i, row := range rows {
		got[row.Bucket] = row.Count
		if i > 0 && rows[i-1].Bucket >= row.Bucket {
			t.Errorf("not nearest first: %+v", rows)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("buckets\n got %v\nwant %v", got, want)
	}
	q := core.DefaultQuery()
	q.Session, q.Limit = "s1", 2
	if rows, _ := s.Reader().CameraDistance(pnum, q, center, 2.5); len(rows) != 2 {
		t.Errorf("limit 2: %+v", rows)
	}
}
