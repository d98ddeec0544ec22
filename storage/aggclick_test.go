package storage

import (
	"fmt"
	"math"
	"testing"

	"github.com/uptimizr/edge/core"
)

// TestClickRaysAndFlow joins clicks to the camera before them: a near-
// plane point under the pointer, a click's own ray origin, and a camera
// kept by the session's record from an earlier fold; a click without any
// camera is left out.
func TestClickRaysAndFlow(t *testing.T) {
	s := openTest(t, Options{DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	t0 := int64(1795892400000)
	ev := func(typ, sess string, dt int64, extra string) [3]string {
		return [3]string{typ, sess, fmt.Sprint(t0+dt) + extra}
	}
	commitEvents(t, s, pnum, [][3]string{
		ev("camera_sample", "s1", 0, fmt.Sprintf(`,"position":[0,0,-10],"direction":[0.3,0,1],"fov":%v,"aspect":1,"near":1`, math.Pi/2)),
		ev("pointer_click", "s1", 10, `,"screen":[0.5,0.5],"hitPoint":[0,0,0],"hitMesh":"door"`),
		ev("pointer_click", "s1", 20, `,"hitPoint":[1,2,4],"ray":{"origin":[1,2,3],"direction":[0,0,1]},"source":"xr-controller"`),
		ev("camera_sample", "s2", 0, `,"position":[5,5,5],"direction":[1,0,0.2]`),
		ev("pointer_click", "s3", 0, `,"hitPoint":[9,9,9],"hitMesh":"lamp"`),
	})
	commitEvents(t, s, pnum, [][3]string{
		ev("pointer_click", "s2", 100, `,"hitPoint":[6,5,5],"hitMesh":"lamp"`),
	})
	rd := s.Reader()
	q := core.DefaultQuery()
	rows, err := rd.ClickRays(pnum, q, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("click rays %+v", rows)
	}
	// The near-plane origin of s1's centred click: P + d·near/|d|.
	dl := math.Sqrt(0.3*0.3 + 1)
	near := [3]float64{0.3 / dl, 0, -10 + 1/dl}
	byMesh := map[string]core.ClickRayRow{}
	for _, r := range rows {
		byMesh[r.Mesh] = r
	}
	d := byMesh["door"]
	if math.Abs(d.OriginX-near[0]) > 1e-9 || math.Abs(d.OriginZ-near[2]) > 1e-9 || d.HitVX != 0 || d.CamVZ != int64(math.Floor(near[2]/0.5)) || d.Count != 1 {
		t.Errorf("door ray %+v, want origin %v", d, near)
	}
	if r := byMesh[""]; r.OriginX != 1 || r.OriginY != 2 || r.OriginZ != 3 || r.HitVZ != 8 {
		t.Errorf("ray-origin click %+v", r)
	}
	if r := byMesh["lamp"]; r.OriginX != 5 || r.OriginY != 5 || r.HitX != 6 || r.Count != 1 {
		t.Errorf("lamp (camera from the record) %+v", r)
	}
	q.Source = "xr-controller"
	if rows, _ := rd.ClickRays(pnum, q, 0.5); len(rows) != 1 || rows[0].Mesh != "" {
		t.Errorf("xr-controller only: %+v", rows)
	}
	flow, err := rd.Flow(pnum, core.DefaultQuery(), 36, 0.5, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []core.FlowRow{{AzimuthBin: 19, ElevationBin: 18, Mesh: "lamp", Count: 1}, {AzimuthBin: 25, ElevationBin: 18, Mesh: "door", Count: 1}}
	if fmt.Sprint(flow) != fmt.Sprint(want) {
		t.Errorf("flow %+v, want %+v", flow, want)
	}
	flow, _ = rd.Flow(pnum, core.DefaultQuery(), 36, 1, true, nil)
	if len(flow) != 2 || flow[0].OriginVX == nil || *flow[0].OriginX != 5 || *flow[0].OriginVX != 5 {
		t.Errorf("flow by origin %+v", flow)
	}
	o := [3]int64{0, 0, -10}
	flow, _ = rd.Flow(pnum, core.DefaultQuery(), 36, 1, false, &o)
	if len(flow) != 1 || flow[0].Mesh != "door" {
		t.Errorf("flow at origin voxel %v: %+v", o, flow)
	}
}
