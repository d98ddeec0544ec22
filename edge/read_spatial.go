package edge

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/uptimizr/edge/core"
)

// Spatial answers the scene-space routes: voxel heatmaps of pointer and
// gaze hits, camera positions on the floor plan, and coverage
// (docs/API.md, "Spatial").
type Spatial interface {
	HeatWorld(pnum uint32, q core.Query, cellSize float64, region *core.Region) ([]core.GazeVoxelRow, error)
	WorldStats(pnum uint32, q core.Query, cellSize float64, region *core.Region) (core.VoxelStatsRow, error)
	HeatGaze(pnum uint32, q core.Query, cellSize float64, region *core.Region) ([]core.GazeVoxelRow, error)
	GazeStats(pnum uint32, q core.Query, cellSize float64, region *core.Region) (core.VoxelStatsRow, error)
	HeatPosition(pnum uint32, q core.Query, cellSize float64, region *core.Region) ([]core.PositionCellRow, error)
	Coverage(pnum uint32, q core.Query, cellSize float64) ([]core.GazeVoxelRow, error)
	Navigation(pnum uint32, q core.Query, moveThreshold float64) ([]core.NavigationRow, error)
	Capabilities(pnum uint32, q core.Query) ([]core.CapabilityChangeRow, error)
	Trajectory(pnum uint32, q core.Query, session string) ([]core.TrajectoryRow, error)
	Paths(pnum uint32, q core.Query, cellSize float64) ([]core.PathPointRow, error)
	ClickRays(pnum uint32, q core.Query, cellSize float64) ([]core.ClickRayRow, error)
	Flow(pnum uint32, q core.Query, bins int, cellSize float64, byOrigin bool, origin *[3]int64) ([]core.FlowRow, error)
}

// Cell sizes of the spatial routes.
const (
	defaultVoxelCell = 0.5 // world and gaze, without cellSize, region or scene bounds
	cellsPerLongAxis = 64  // a region or scene's longest side spans this many cells
	maxCellSize      = 1000
)

var errRegionParam = paramError{"region must be 6 comma-separated finite numbers: minX,minY,minZ,maxX,maxY,maxZ, max ≥ min on every axis"}

// regionParam reads the region parameter (nil when absent).
func regionParam(args *fasthttp.Args) (*core.Region, error) {
	v := args.Peek("region")
	if v == nil {
		return nil, nil
	}
	parts := strings.Split(string(v), ",")
	if len(parts) != 6 {
		return nil, errRegionParam
	}
	var r core.Region
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, errRegionParam
		}
		r[i] = f
	}
	if r[3] < r[0] || r[4] < r[1] || r[5] < r[2] {
		return nil, errRegionParam
	}
	return &r, nil
}

// cellForBox is a box's longest side over cellsPerLongAxis; 0 for a box
// with no extent.
func cellForBox(b [6]float64) float64 {
	longest := max(b[3]-b[0], b[4]-b[1], b[5]-b[2])
	if !(longest > 0) || math.IsInf(longest, 0) {
		return 0
	}
	return longest / cellsPerLongAxis
}

// spatialCell resolves the cell size of the world and gaze heatmaps, as
// the reference does: cellSize, else the region's, else the bounds of the
// scene's registered representation, else 0.5.
func (s *readAPI) spatialCell(pnum uint32, q core.Query, args *fasthttp.Args, region *core.Region) (float64, error) {
	if args.Peek("cellSize") != nil {
		return floatParam(args, "cellSize", defaultVoxelCell, 0, maxCellSize, true)
	}
	if region != nil {
		if c := cellForBox(*region); c > 0 {
			return c, nil
		}
		return defaultVoxelCell, nil
	}
	if q.Scene != "" && s.scenes != nil {
		doc, ok, err := s.scenes.Get(pnum, q.Scene)
		if err != nil {
			return 0, err
		}
		var rep struct{ Bounds *[6]float64 }
		if ok && json.Unmarshal(doc, &rep) == nil && rep.Bounds != nil {
			if c := cellForBox(*rep.Bounds); c > 0 {
				return c, nil
			}
		}
	}
	return defaultVoxelCell, nil
}

// spatialRoutes is moreRoutes for the spatial routes.
func (s *readAPI) spatialRoutes(path string) (readRun, int, int, bool) {
	a := s.aggregates
	// voxels wraps a route that takes a resolved cell size and a region.
	voxels := func(derived bool, def float64, f func(p uint32, q core.Query, cs float64, r *core.Region) (any, error)) readRun {
		return func(p uint32, q core.Query, args *fasthttp.Args) (any, error) {
			region, err := regionParam(args)
			if err != nil {
				return nil, err
			}
			var cs float64
			if derived {
				cs, err = s.spatialCell(p, q, args, region)
			} else {
				cs, err = floatParam(args, "cellSize", def, 0, maxCellSize, true)
			}
			if err != nil {
				return nil, err
			}
			return f(p, q, cs, region)
		}
	}
	switch path {
	case "heatmaps/world":
		return sourced(voxels(true, 0, func(p uint32, q core.Query, cs float64, r *core.Region) (any, error) {
			return a.HeatWorld(p, q, cs, r)
		})), 1000, maxLimit, true
	case "heatmaps/world/stats":
		return sourced(voxels(true, 0, func(p uint32, q core.Query, cs float64, r *core.Region) (any, error) {
			return a.WorldStats(p, q, cs, r)
		})), maxLimit, maxLimit, true
	case "heatmaps/gaze":
		return voxels(true, 0, func(p uint32, q core.Query, cs float64, r *core.Region) (any, error) {
			return a.HeatGaze(p, q, cs, r)
		}), 1000, maxLimit, true
	case "heatmaps/gaze/stats":
		return voxels(true, 0, func(p uint32, q core.Query, cs float64, r *core.Region) (any, error) {
			return a.GazeStats(p, q, cs, r)
		}), maxLimit, maxLimit, true
	case "heatmaps/position":
		return voxels(false, 1, func(p uint32, q core.Query, cs float64, r *core.Region) (any, error) {
			return a.HeatPosition(p, q, cs, r)
		}), 2000, 10000, true
	case "navigation":
		return func(p uint32, q core.Query, args *fasthttp.Args) (any, error) {
			move, err := floatParam(args, "moveThreshold", 0.05, 0, 1000, false)
			if err != nil {
				return nil, err
			}
			return a.Navigation(p, q, move)
		}, 500, maxLimit, true
	case "capabilities":
		return func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return a.Capabilities(p, q) }, 50, maxLimit, true
	case "paths":
		return func(p uint32, q core.Query, args *fasthttp.Args) (any, error) {
			cs, err := floatParam(args, "cellSize", 1, 0, maxCellSize, true)
			if err != nil {
				return nil, err
			}
			return a.Paths(p, q, cs)
		}, 20000, 50000, true
	case "heatmaps/click-rays":
		return sourced(func(p uint32, q core.Query, args *fasthttp.Args) (any, error) {
			cs, err := floatParam(args, "cellSize", 0.5, 0, maxCellSize, true)
			if err != nil {
				return nil, err
			}
			return a.ClickRays(p, q, cs)
		}), 500, maxLimit, true
	case "heatmaps/flow":
		return func(p uint32, q core.Query, args *fasthttp.Args) (any, error) {
			bins, err := intParam(args, "bins", 24, 1, 500)
			if err != nil {
				return nil, err
			}
			cs, err := floatParam(args, "cellSize", 0.5, 0, maxCellSize, true)
			if err != nil {
				return nil, err
			}
			byOrigin := false
			if v := args.Peek("groupByOrigin"); v != nil {
				switch string(v) {
				case "true", "1":
					byOrigin = true
				case "false", "0":
				default:
					return nil, paramError{"groupByOrigin must be true, false, 1 or 0"}
				}
			}
			origin, err := originVoxelParam(args)
			if err != nil {
				return nil, err
			}
			if origin == nil && args.Peek("originVoxel") != nil {
				return []core.FlowRow{}, nil // a voxel index that is not whole matches nothing
			}
			return a.Flow(p, q, int(bins), cs, byOrigin, origin)
		}, 150, maxLimit, true
	case "funnel":
		return s.funnelOf(false), maxLimit, maxLimit, true // aggregateEndpoint: the project's choice
	case "coverage":
		return func(p uint32, q core.Query, args *fasthttp.Args) (any, error) {
			cs, err := floatParam(args, "cellSize", 1, 0, maxCellSize, true)
			if err != nil {
				return nil, err
			}
			return a.Coverage(p, q, cs)
		}, 5000, 10000, true
	}
	return nil, 0, 0, false
}

// sessionTrajectory is GET /api/v1/sessions/:id/trajectory.
func (s *readAPI) sessionTrajectory(ctx *fasthttp.RequestCtx, sessionID []byte) {
	project, ok := s.readAuth(ctx)
	if !ok {
		return
	}
	if s.aggregates == nil {
		s.notImplemented(ctx)
		return
	}
	q, err := parseQuery(ctx.QueryArgs(), 5000, 10000)
	if err != nil {
		s.fail(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	rows, err := s.aggregates.Trajectory(project.ProjectNum(), q, string(sessionID))
	s.writeRows(ctx, rows, err)
}

// originVoxelParam reads originVoxel, "x,y,z" voxel indices; nil when
// absent or when an index is not whole (which matches no voxel).
func originVoxelParam(args *fasthttp.Args) (*[3]int64, error) {
	v := args.Peek("originVoxel")
	if v == nil {
		return nil, nil
	}
	parts := strings.Split(string(v), ",")
	bad := paramError{"originVoxel must be three comma-separated numbers: vx,vy,vz"}
	if len(parts) != 3 {
		return nil, bad
	}
	var o [3]int64
	whole := true
	for i, p := range parts {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || strings.ContainsAny(p, "eE+ ") {
			return nil, bad
		}
		if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			whole = false
		}
		o[i] = int64(f)
	}
	if !whole {
		return nil, nil
	}
	return &o, nil
}
