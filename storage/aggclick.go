package storage

import (
	"encoding/binary"
	"math"
	"sort"

	"github.com/uptimizr/edge/core"
)

// kindClickRays is the click-rays and flow routes': per hour, pointer_click
// events joined to the latest camera_sample of their session before them
// (as the reference's as-of join), in the order events are folded. Rows
// are [clicks, Σ origin x, y, z, Σ hit x, y, z].
//
//	rayItem  + source + origin voxel + hit voxel (0.1 units) + hitMesh
//	flowItem + view direction cell (1°, as kindHeatCamera) + 1 and the
//	           standpoint voxel (0.1 units), or 0 without one + hitMesh
//	           (clicks on a mesh only)
const kindClickRays aggKind = 'R'

const (
	rayItem  = 1
	flowItem = 2
)

// camState is a session's latest camera_sample as a click joins it.
type camState struct {
	Set    bool       `json:"-"`
	Pos    [3]float64 `json:"pos"`
	Dir    [3]float64 `json:"dir"`
	HasPos bool       `json:"hasPos,omitempty"`
	HasDir bool       `json:"hasDir,omitempty"`
	FOV    float64    `json:"fov,omitempty"`
	Aspect float64    `json:"aspect,omitempty"`
	Near   float64    `json:"near,omitempty"`

	// The fov, aspect and near tokens as folded, parsed only when a click
	// needs them (parseOptics): most camera samples are never joined.
	raw    [3][24]byte
	rawLen [3]uint8
	parsed bool
}

// parseOptics parses the raw fov, aspect and near tokens (once).
func (c *camState) parseOptics() {
	if c.parsed {
		return
	}
	c.parsed = true
	for i, dst := range []*float64{&c.FOV, &c.Aspect, &c.Near} {
		*dst, _ = parseNum(c.raw[i][:c.rawLen[i]])
	}
}

// pendingClick is a click folded before any camera_sample of its session
// in the fold: it joins the camera its session's record kept, at commit.
type pendingClick struct {
	src            byte
	hit            [3]float64
	screen         [2]float64
	ray            [3]float64
	hasRay, hasScr bool
	mesh, scene    string
	ts             int64
}

const maxPendingClicks = 64

// foldCamera remembers a camera_sample as its session's latest: its
// position and direction as foldEvent parsed them, its optics as tokens.
func (sd *sessionDelta) foldCamera(e *logEvent, pos [3]float64, hasPos bool, dir [3]float64, hasDir bool) {
	c := &sd.cam
	c.Set, c.Pos, c.HasPos, c.Dir, c.HasDir, c.parsed = true, pos, hasPos, dir, hasDir, false
	for i, f := range [3]uint8{fFOV, fAspect, fNear} {
		t := e.f[f]
		if len(t) > len(c.raw[i]) {
			t = nil // not a number a camera sends; ignored
		}
		c.rawLen[i] = uint8(copy(c.raw[i][:], t))
	}
}

// foldClick folds a pointer_click that hit something (hitPoint) into the
// click rays, joined to the session's latest camera.
func (st *foldState) foldClick(e *logEvent, sd *sessionDelta, src byte, mesh []byte, sess, scene string, ts int64) {
	var p pendingClick
	if !tokVec(e.f[fHitPoint], p.hit[:]) {
		return
	}
	p.src, p.ts, p.scene = src, ts, scene
	p.hasScr = tokVec(e.f[fScreen], p.screen[:])
	if x := e.f[fRay]; x != nil && st.members.index(x) == nil {
		p.hasRay = st.members.vec("origin", p.ray[:])
	}
	if sd.cam.Set {
		sd.cam.parseOptics()
		st.addClick(sess, &p, mesh, &sd.cam)
		return
	}
	if len(sd.pendingClicks) < maxPendingClicks {
		p.mesh = string(mesh)
		sd.pendingClicks = append(sd.pendingClicks, p)
	}
}

// clickOrigin is where a click's ray starts: its own ray's origin, else a
// point on the camera's near plane under the pointer (world up +y, no
// roll), else the camera's position.
func clickOrigin(p *pendingClick, c *camState) ([3]float64, bool) {
	if p.hasRay {
		return p.ray, true
	}
	d := c.Dir
	dlen := math.Sqrt(d[0]*d[0] + d[1]*d[1] + d[2]*d[2])
	hlen := math.Sqrt(d[0]*d[0] + d[2]*d[2])
	if p.hasScr && c.HasPos && c.HasDir && c.FOV > 0 && c.Aspect > 0 && c.Near > 0 && hlen > 1e-6*dlen {
		t := math.Tan(c.FOV / 2)
		offR := (2*p.screen[0] - 1) * c.Near * t * c.Aspect
		offU := (1 - 2*p.screen[1]) * c.Near * t
		r := [3]float64{d[2] / hlen, 0, -d[0] / hlen}
		u := [3]float64{-d[0] * d[1] / (dlen * hlen), hlen / dlen, -d[1] * d[2] / (dlen * hlen)}
		var o [3]float64
		for i := range o {
			o[i] = c.Pos[i] + d[i]*c.Near/dlen + r[i]*offR + u[i]*offU
		}
		return o, true
	}
	return c.Pos, c.HasPos
}

// addClick adds a click joined to camera c.
func (st *foldState) addClick(sess string, p *pendingClick, mesh []byte, c *camState) {
	bump := func(item []byte, row ...float64) { st.bump(kindClickRays, sess, p.scene, p.ts, item, row...) }
	if o, ok := clickOrigin(p, c); ok {
		b := appendGazeVoxel(appendGazeVoxel(append(st.buf[:0], rayItem, p.src), o), p.hit)
		bump(st.item(append(b, mesh...)), 1, o[0], o[1], o[2], p.hit[0], p.hit[1], p.hit[2])
	}
	if len(mesh) == 0 || !c.HasDir {
		return
	}
	cellB, ok := appendCameraCell(append(st.buf[:0], flowItem), c.Dir)
	if !ok {
		return
	}
	o, hasO := p.ray, p.hasRay
	if !hasO {
		o, hasO = c.Pos, c.HasPos
	}
	b := append(cellB, 0)
	if hasO {
		b[len(b)-1] = 1
		b = appendGazeVoxel(b, o)
	} else {
		o = [3]float64{}
	}
	bump(st.item(append(b, mesh...)), 1, o[0], o[1], o[2], 0, 0, 0)
}

// ClickRays is GET /api/v1/heatmaps/click-rays: clicks by ray origin cell,
// hit cell (of cs units, rebinned from 0.1-unit voxels by their middles)
// and mesh, with their mean origin and hit points, most first.
func (r *Reader) ClickRays(pnum uint32, q core.Query, cs float64) ([]core.ClickRayRow, error) {
	src, all, err := sourceFilter(&q)
	if err != nil {
		return nil, err
	}
	c, err := r.merged(pnum, kindClickRays, &q)
	if err != nil {
		return nil, err
	}
	vb := newVoxelBin(GazeVoxel, cs)
	type key struct {
		cam, hit [3]int64
		mesh     string
	}
	acc := map[key][]float64{}
	for it, row := range c {
		if len(it) < 2+24 || it[0] != rayItem || (!all && it[1] != src) {
			continue
		}
		oc, _, ok1 := vb.of(it[2:14])
		hc, _, ok2 := vb.of(it[14:26])
		if !ok1 || !ok2 {
			continue
		}
		k := key{oc, hc, it[26:]}
		a := acc[k]
		if a == nil {
			a = make([]float64, 7)
			acc[k] = a
		}
		for i := range a {
			a[i] += row[i]
		}
	}
	rows := make([]core.ClickRayRow, 0, len(acc))
	for k, a := range acc {
		n := a[0]
		rows = append(rows, core.ClickRayRow{CamVX: k.cam[0], CamVY: k.cam[1], CamVZ: k.cam[2],
			OriginX: a[1] / n, OriginY: a[2] / n, OriginZ: a[3] / n,
			HitVX: k.hit[0], HitVY: k.hit[1], HitVZ: k.hit[2],
			HitX: a[4] / n, HitY: a[5] / n, HitZ: a[6] / n, Mesh: k.mesh, Count: int64(n)})
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.Mesh != b.Mesh {
			return a.Mesh < b.Mesh
		}
		return lessInts([]int64{a.CamVX, a.CamVY, a.CamVZ, a.HitVX, a.HitVY, a.HitVZ}, []int64{b.CamVX, b.CamVY, b.CamVZ, b.HitVX, b.HitVY, b.HitVZ})
	})
	return limitRows(rows, q.Limit), nil
}

func lessInts(a, b []int64) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// Flow is GET /api/v1/heatmaps/flow: clicks on a mesh by the view direction
// of the camera before them (in the reference's camera bins, as
// HeatCamera) and mesh; byOrigin also groups them by the standpoint cell
// (cs units: the click's ray origin, else the camera's position), and with
// origin only that cell's.
func (r *Reader) Flow(pnum uint32, q core.Query, bins int, cs float64, byOrigin bool, origin *[3]int64) ([]core.FlowRow, error) {
	c, err := r.merged(pnum, kindClickRays, &q)
	if err != nil {
		return nil, err
	}
	bins = max(1, bins)
	vb := newVoxelBin(GazeVoxel, cs)
	type key struct {
		az, el int
		o      [3]int64
		mesh   string
	}
	acc := map[key][]float64{}
	for it, row := range c {
		if len(it) < 6 || it[0] != flowItem {
			continue
		}
		az := float64(binary.BigEndian.Uint16([]byte(it[1:3])))
		el := float64(binary.BigEndian.Uint16([]byte(it[3:5])))
		rest := it[5:]
		k := key{az: min(bins-1, int(math.Mod(269.5-az+360, 360)/360*float64(bins))), el: min(bins-1, int((el+0.5)/180*float64(bins)))}
		switch {
		case len(rest) >= 13 && rest[0] == 1:
			oc, _, ok := vb.of(rest[1:13])
			if !ok || origin != nil && oc != *origin {
				continue
			}
			if byOrigin || origin != nil {
				k.o = oc
			}
			k.mesh = rest[13:]
		case len(rest) >= 1 && rest[0] == 0:
			if byOrigin || origin != nil {
				continue // position-aware answers need a standpoint
			}
			k.mesh = rest[1:]
		default:
			continue
		}
		a := acc[k]
		if a == nil {
			a = make([]float64, 4)
			acc[k] = a
		}
		for i := range a {
			a[i] += row[i]
		}
	}
	rows := make([]core.FlowRow, 0, len(acc))
	for k, a := range acc {
		row := core.FlowRow{AzimuthBin: k.az, ElevationBin: k.el, Mesh: k.mesh, Count: int64(a[0])}
		if byOrigin || origin != nil {
			n := a[0]
			ox, oy, oz := k.o[0], k.o[1], k.o[2]
			mx, my, mz := a[1]/n, a[2]/n, a[3]/n
			row.OriginVX, row.OriginVY, row.OriginVZ = &ox, &oy, &oz
			row.OriginX, row.OriginY, row.OriginZ = &mx, &my, &mz
		}
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.AzimuthBin != b.AzimuthBin {
			return a.AzimuthBin < b.AzimuthBin
		}
		if a.ElevationBin != b.ElevationBin {
			return a.ElevationBin < b.ElevationBin
		}
		return a.Mesh < b.Mesh
	})
	return limitRows(rows, q.Limit), nil
}
