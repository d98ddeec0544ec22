package edge

import (
	"math"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/uptimizr/edge/core"
)

// Interactions answers the interaction routes: input sources, mesh
// interactions, clicks, shortcuts and camera navigation (docs/API.md,
// "Interaction"). A query's Source is one of core's input sources or "".
type Interactions interface {
	InteractionSources(pnum uint32, q core.Query) ([]core.InteractionSourceRow, error)
	XRSources(pnum uint32, q core.Query) ([]core.XRSourceRow, error)
	XRAbandonment(pnum uint32, q core.Query) ([]core.XRAbandonmentRow, error)
	XRRotation(pnum uint32, q core.Query, rapidTurnRad float64) ([]core.XRRotationRow, error)
	MeshKinds(pnum uint32, q core.Query) ([]core.MeshKindRow, error)
	MeshSources(pnum uint32, q core.Query) ([]core.MeshSourceRow, error)
	MeshTrend(pnum uint32, q core.Query, intervalMs int64) ([]core.MeshTrendRow, error)
	DeadClicks(pnum uint32, q core.Query) (core.DeadClickRow, error)
	RageClicks(pnum uint32, q core.Query, intervalSec, minRepeats int) ([]core.RageClickRow, error)
	InputActions(pnum uint32, q core.Query) ([]core.InputActionRow, error)
	CameraGestures(pnum uint32, q core.Query) ([]core.CameraGestureRow, error)
	CameraDistance(pnum uint32, q core.Query, center [3]float64, bucketSize float64) ([]core.CameraDistanceRow, error)
}

// inputSources are the values of the source parameter.
var inputSources = []string{"mouse", "touch", "stylus", "pen", "keyboard", "gamepad", "xr-controller", "hand", "gaze", "transient", "other"}

var errSourceParam = paramError{"source must be one of " + strings.Join(inputSources, ", ")}

// withSource reads the source parameter into q.
func withSource(q core.Query, args *fasthttp.Args) (core.Query, error) {
	v := args.Peek("source")
	if v == nil {
		return q, nil
	}
	for _, s := range inputSources {
		if s == string(v) {
			q.Source = s
			return q, nil
		}
	}
	return q, errSourceParam
}

// Limits of the interaction routes' own parameters.
const (
	maxTrendLimit       = 5000
	maxTrendIntervalSec = 31_536_000
)

// floatParam reads a finite number parameter in [lo, hi] (above lo only,
// when loOpen).
func floatParam(args *fasthttp.Args, name string, def, lo, hi float64, loOpen bool) (float64, error) {
	v := args.Peek(name)
	if v == nil {
		return def, nil
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsNaN(f) || f < lo || f > hi || loOpen && f == lo {
		op := "from"
		if loOpen {
			op = "above"
		}
		return 0, paramError{name + " must be a number " + op + " " + strconv.FormatFloat(lo, 'g', -1, 64) + " to " + strconv.FormatFloat(hi, 'g', -1, 64)}
	}
	return f, nil
}

type readRun = func(pnum uint32, q core.Query, args *fasthttp.Args) (any, error)

// sourced wraps a route that takes the source parameter.
func sourced(f readRun) readRun {
	return func(p uint32, q core.Query, args *fasthttp.Args) (any, error) {
		q, err := withSource(q, args)
		if err != nil {
			return nil, err
		}
		return f(p, q, args)
	}
}

// moreRoutes returns the runner and the default and largest limit of the
// routes beyond the first ones (aggregateEndpoint), and false for a path
// that names none. meshes/trend takes a larger limit than the others: the
// dashboard asks it for 2000 points.
func (s *readAPI) moreRoutes(path string) (readRun, int, int, bool) {
	a := s.aggregates
	switch path {
	case "interactions/sources":
		return sourced(func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return a.InteractionSources(p, q) }), 100, maxLimit, true
	case "xr/sources":
		return func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return a.XRSources(p, q) }, 50, maxLimit, true
	case "xr/abandonment":
		return func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return a.XRAbandonment(p, q) }, 500, maxLimit, true
	case "xr/rotation":
		return func(p uint32, q core.Query, args *fasthttp.Args) (any, error) {
			rapid := 0.5
			if v := args.Peek("rapidTurn"); v != nil {
				f, err := strconv.ParseFloat(string(v), 64)
				if err != nil || !(f >= 0 && f <= math.Pi) {
					return nil, paramError{"rapidTurn must be a number of radians from 0 to π"}
				}
				rapid = f
			}
			return a.XRRotation(p, q, rapid)
		}, 500, maxLimit, true
	case "camera/distance":
		return func(p uint32, q core.Query, args *fasthttp.Args) (any, error) {
			var center [3]float64
			for i, name := range []string{"centerX", "centerY", "centerZ"} {
				f, err := floatParam(args, name, 0, -1e15, 1e15, false)
				if err != nil {
					return nil, err
				}
				center[i] = f
			}
			size, err := floatParam(args, "bucketSize", 1, 0, 1000, true)
			if err != nil {
				return nil, err
			}
			return a.CameraDistance(p, q, center, size)
		}, 1000, maxLimit, true
	case "meshes/kinds":
		return sourced(func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return a.MeshKinds(p, q) }), 100, maxLimit, true
	case "meshes/sources":
		return sourced(func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return a.MeshSources(p, q) }), 200, maxLimit, true
	case "meshes/trend":
		return sourced(func(p uint32, q core.Query, args *fasthttp.Args) (any, error) {
			secs, err := intParam(args, "interval", 3600, minIntervalSecs, maxTrendIntervalSec)
			if err != nil {
				return nil, err
			}
			if secs%60 != 0 {
				return nil, paramError{"interval must be a whole number of minutes, in seconds (60, 300, 3600, …)"}
			}
			return a.MeshTrend(p, q, secs*1000)
		}), 2000, maxTrendLimit, true
	case "clicks/dead":
		return sourced(func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) {
			row, err := a.DeadClicks(p, q)
			return []core.DeadClickRow{row}, err
		}), 100, maxLimit, true
	case "clicks/rage":
		return sourced(func(p uint32, q core.Query, args *fasthttp.Args) (any, error) {
			iv, err := intParam(args, "interval", 2, 1, 60)
			if err != nil {
				return nil, err
			}
			reps, err := intParam(args, "minRepeats", 3, 2, 100)
			if err != nil {
				return nil, err
			}
			return a.RageClicks(p, q, int(iv), int(reps))
		}), 100, maxLimit, true
	case "input-actions/top":
		return sourced(func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return a.InputActions(p, q) }), 100, maxLimit, true
	case "camera-gestures":
		return sourced(func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return a.CameraGestures(p, q) }), 25, maxLimit, true
	}
	return s.perfRoutes(path)
}
