package edge

import (
	"github.com/valyala/fasthttp"

	"github.com/uptimizr/edge/core"
)

// PerfStats answers the performance routes: per-session fps and frame-time
// distributions, jank, device and scene breakdowns, resource percentiles,
// stability, render scale, compile stalls, graphics diagnostics and
// rendering technology (docs/API.md, "Performance").
type PerfStats interface {
	PerfDistribution(pnum uint32, q core.Query) (core.PerfDistributionRow, error)
	FPSHistogram(pnum uint32, q core.Query, width int) ([]core.FPSHistogramRow, error)
	FrameTime(pnum uint32, q core.Query) (core.FrameTimeRow, error)
	Jank(pnum uint32, q core.Query) (core.JankRow, error)
	PerfByDevice(pnum uint32, q core.Query) ([]core.PerfByDeviceRow, error)
	PerfByScene(pnum uint32, q core.Query) ([]core.PerfBySceneRow, error)
	ResourcePercentiles(pnum uint32, q core.Query) (core.ResourcePercentileRow, error)
	Stability(pnum uint32, q core.Query) (core.StabilityRow, error)
	RenderScale(pnum uint32, q core.Query) (core.RenderScaleRow, error)
	CompileStalls(pnum uint32, q core.Query) ([]core.CompileStallRow, error)
	GraphicsDiagnostics(pnum uint32, q core.Query) ([]core.GraphicsDiagnosticRow, error)
	RenderingTechnology(pnum uint32, q core.Query) ([]core.RenderingTechnologyRow, error)
}

// one answers a one-row route as the reference does: an array of one row.
func one[T any](row T, err error) (any, error) { return []T{row}, err }

// perfRoutes is moreRoutes for the performance routes.
func (s *readAPI) perfRoutes(path string) (readRun, int, int, bool) {
	a := s.aggregates
	var run readRun
	lim := maxLimit
	switch path {
	case "perf/distribution":
		run = func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return one(a.PerfDistribution(p, q)) }
	case "perf/fps-histogram":
		run = func(p uint32, q core.Query, args *fasthttp.Args) (any, error) {
			w, err := intParam(args, "bucket", 10, 1, 240)
			if err != nil {
				return nil, err
			}
			return a.FPSHistogram(p, q, int(w))
		}
	case "perf/frame-time":
		run = func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return one(a.FrameTime(p, q)) }
	case "perf/jank":
		run = func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return one(a.Jank(p, q)) }
	case "perf/by-device":
		run = func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return a.PerfByDevice(p, q) }
	case "perf/by-scene":
		run = func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return a.PerfByScene(p, q) }
	case "perf/resource-percentiles":
		run = func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return one(a.ResourcePercentiles(p, q)) }
	case "perf/stability":
		run = func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return one(a.Stability(p, q)) }
	case "perf/render-scale":
		run = func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return one(a.RenderScale(p, q)) }
	case "perf/compile-stalls":
		return func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return a.CompileStalls(p, q) }, 25, lim, true
	case "graphics-diagnostics":
		run = func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return a.GraphicsDiagnostics(p, q) }
	case "rendering-technology":
		run = func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return a.RenderingTechnology(p, q) }
	default:
		return s.spatialRoutes(path)
	}
	// These routes take no limit in the reference; rows are bounded by
	// what they group (sessions, device classes, scenes).
	return run, maxLimit, lim, true
}
