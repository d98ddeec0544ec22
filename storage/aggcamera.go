package storage

import (
	"encoding/binary"
	"math"
	"sort"

	"github.com/uptimizr/edge/core"
)

// voxelCenter is the middle of a base voxel item of edge size (appendVoxel)
// in scene units; false for an item that is not one.
func voxelCenter(item string, size float64) ([3]float64, bool) {
	var c [3]float64
	if len(item) != 12 {
		return c, false
	}
	for i := range c {
		c[i] = (float64(int32(binary.BigEndian.Uint32([]byte(item[4*i:4*i+4])))) + 0.5) * size
	}
	return c, true
}

// CameraDistance is GET /api/v1/camera/distance: camera_sample positions by
// their distance from center, in buckets of bucketSize (bucket n holds
// [n·size, (n+1)·size)), nearest first. Positions are kept in 0.25-unit
// voxels and measured from a voxel's middle: a distance is within 0.22
// units (half a voxel's diagonal) of the exact one.
func (r *Reader) CameraDistance(pnum uint32, q core.Query, center [3]float64, bucketSize float64) ([]core.CameraDistanceRow, error) {
	c, err := r.merged(pnum, kindCameraPos, &q)
	if err != nil {
		return nil, err
	}
	acc := map[int64]int64{}
	for item, row := range c {
		p, ok := voxelCenter(item, CameraVoxel)
		if !ok {
			continue
		}
		dx, dy, dz := p[0]-center[0], p[1]-center[1], p[2]-center[2]
		acc[int64(math.Floor(math.Sqrt(dx*dx+dy*dy+dz*dz)/bucketSize))] += int64(row[0])
	}
	rows := make([]core.CameraDistanceRow, 0, len(acc))
	for b, n := range acc {
		rows = append(rows, core.CameraDistanceRow{Bucket: b, Count: n})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Bucket < rows[j].Bucket })
	return limitRows(rows, q.Limit), nil
}
