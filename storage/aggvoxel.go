package storage

import (
	"math"
	"sort"

	"github.com/uptimizr/edge/core"
)

// Spatial heatmaps rebin base voxels (appendVoxel: 0.1 units for hits,
// 0.25 for camera positions) to the cell size a query asks for. A cell
// size that is a multiple of the base is exact; another one places each
// base voxel by its middle, so a point is at most half a base voxel per
// axis from the cell it is counted in. A region keeps the base voxels
// whose middle lies in it (inclusive).

// Region is core's box filter.
type Region = core.Region

// voxelBin is where base voxels of edge base go at cell size cs.
type voxelBin struct {
	base, cs float64
	factor   int64 // cs / base when that is whole, else 0
}

func newVoxelBin(base, cs float64) voxelBin {
	f := math.Round(cs / base)
	if f >= 1 && math.Abs(f*base-cs) <= 1e-9*math.Max(1, cs) {
		return voxelBin{base, cs, int64(f)}
	}
	return voxelBin{base, cs, 0}
}

// of is the cell of a base voxel item, with the voxel's middle.
func (vb voxelBin) of(item string) (cell [3]int64, mid [3]float64, ok bool) {
	mid, ok = voxelCenter(item, vb.base)
	if !ok {
		return cell, mid, false
	}
	for i := range cell {
		if vb.factor > 0 {
			cell[i] = floorDiv(int64(math.Floor(mid[i]/vb.base)), vb.factor)
		} else {
			cell[i] = int64(math.Floor(mid[i] / vb.cs))
		}
	}
	return cell, mid, true
}

// voxelAcc is one cell's samples and the sum of their heights.
type voxelAcc struct {
	n    int64
	sumY float64
}

// rebinVoxels merges the base voxels of c (each item skip bytes of prefix,
// then the voxel; keep says whether a prefix is wanted) into cells.
func rebinVoxels(c cell, skip int, keep func(prefix string) bool, base, cs float64, region *Region) map[[3]int64]*voxelAcc {
	vb := newVoxelBin(base, cs)
	out := map[[3]int64]*voxelAcc{}
	for it, row := range c {
		if len(it) != skip+12 || keep != nil && !keep(it[:skip]) {
			continue
		}
		cellID, mid, ok := vb.of(it[skip:])
		if !ok || !region.Holds(mid) {
			continue
		}
		a := out[cellID]
		if a == nil {
			a = &voxelAcc{}
			out[cellID] = a
		}
		a.n += int64(row[0])
		a.sumY += row[0] * mid[1]
	}
	return out
}

func voxelRows(acc map[[3]int64]*voxelAcc, limit int) []core.GazeVoxelRow {
	rows := make([]core.GazeVoxelRow, 0, len(acc))
	for k, a := range acc {
		rows = append(rows, core.GazeVoxelRow{VX: k[0], VY: k[1], VZ: k[2], Count: a.n})
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.VX != b.VX {
			return a.VX < b.VX
		}
		if a.VY != b.VY {
			return a.VY < b.VY
		}
		return a.VZ < b.VZ
	})
	return limitRows(rows, limit)
}

func voxelStats(acc map[[3]int64]*voxelAcc, cs float64) core.VoxelStatsRow {
	st := core.VoxelStatsRow{CellSize: cs, Cells: int64(len(acc))}
	for _, a := range acc {
		st.Hits += a.n
	}
	return st
}

// worldVoxels is the pointer hit voxels of the query, by cell.
func (r *Reader) worldVoxels(pnum uint32, q *core.Query, cs float64, region *Region) (map[[3]int64]*voxelAcc, error) {
	src, all, err := sourceFilter(q)
	if err != nil {
		return nil, err
	}
	c, err := r.merged(pnum, kindHeatWorld, q)
	if err != nil {
		return nil, err
	}
	return rebinVoxels(c, 1, func(p string) bool { return all || p[0] == src }, GazeVoxel, cs, region), nil
}

// HeatWorld is GET /api/v1/heatmaps/world: pointer_move and pointer_click
// hitPoint voxels of cs units, busiest first.
func (r *Reader) HeatWorld(pnum uint32, q core.Query, cs float64, region *Region) ([]core.GazeVoxelRow, error) {
	acc, err := r.worldVoxels(pnum, &q, cs, region)
	if err != nil {
		return nil, err
	}
	return voxelRows(acc, q.Limit), nil
}

// WorldStats is GET /api/v1/heatmaps/world/stats: the occupied cells and
// hits behind HeatWorld, without its limit.
func (r *Reader) WorldStats(pnum uint32, q core.Query, cs float64, region *Region) (core.VoxelStatsRow, error) {
	acc, err := r.worldVoxels(pnum, &q, cs, region)
	if err != nil {
		return core.VoxelStatsRow{}, err
	}
	return voxelStats(acc, cs), nil
}

// HeatGaze is GET /api/v1/heatmaps/gaze: camera_sample hitPoint voxels of
// cs units, busiest first.
func (r *Reader) HeatGaze(pnum uint32, q core.Query, cs float64, region *Region) ([]core.GazeVoxelRow, error) {
	c, err := r.merged(pnum, kindHeatGaze, &q)
	if err != nil {
		return nil, err
	}
	return voxelRows(rebinVoxels(c, 0, nil, GazeVoxel, cs, region), q.Limit), nil
}

// GazeStats is GET /api/v1/heatmaps/gaze/stats.
func (r *Reader) GazeStats(pnum uint32, q core.Query, cs float64, region *Region) (core.VoxelStatsRow, error) {
	c, err := r.merged(pnum, kindHeatGaze, &q)
	if err != nil {
		return core.VoxelStatsRow{}, err
	}
	return voxelStats(rebinVoxels(c, 0, nil, GazeVoxel, cs, region), cs), nil
}

// Coverage is GET /api/v1/coverage: camera_sample position voxels of cs
// units, busiest first.
func (r *Reader) Coverage(pnum uint32, q core.Query, cs float64) ([]core.GazeVoxelRow, error) {
	c, err := r.merged(pnum, kindCameraPos, &q)
	if err != nil {
		return nil, err
	}
	return voxelRows(rebinVoxels(c, 0, nil, CameraVoxel, cs, nil), q.Limit), nil
}

// HeatPosition is GET /api/v1/heatmaps/position: camera_sample positions on
// the floor plan (x, z) in cells of cs units, with their mean height (of
// the voxels' middles: within 0.125), busiest first.
func (r *Reader) HeatPosition(pnum uint32, q core.Query, cs float64, region *Region) ([]core.PositionCellRow, error) {
	c, err := r.merged(pnum, kindCameraPos, &q)
	if err != nil {
		return nil, err
	}
	acc := map[[2]int64]*voxelAcc{}
	for k, a := range rebinVoxels(c, 0, nil, CameraVoxel, cs, region) {
		p := [2]int64{k[0], k[2]}
		b := acc[p]
		if b == nil {
			b = &voxelAcc{}
			acc[p] = b
		}
		b.n += a.n
		b.sumY += a.sumY
	}
	rows := make([]core.PositionCellRow, 0, len(acc))
	for k, a := range acc {
		rows = append(rows, core.PositionCellRow{GX: k[0], GZ: k[1], AvgY: a.sumY / float64(a.n), Count: a.n})
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.GX != b.GX {
			return a.GX < b.GX
		}
		return a.GZ < b.GZ
	})
	return limitRows(rows, q.Limit), nil
}
