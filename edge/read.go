package edge

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/uptimizr/edge/core"
)

// Aggregates answers the aggregate read endpoints for one project (its
// number comes from the caller's key). The storage reader implements it.
type Aggregates interface {
	EventCounts(pnum uint32, q core.Query) ([]core.EventCountRow, error)
	Timeseries(pnum uint32, q core.Query, interval time.Duration) ([]core.TimeseriesRow, error)
	Sessions(pnum uint32, q core.Query) ([]core.SessionRow, error)
	SessionMeta(pnum uint32, session string) (core.SessionMetaRow, error)
	Scenes(pnum uint32, q core.Query) ([]core.SceneRow, error)
	MeshTop(pnum uint32, q core.Query) ([]core.MeshCountRow, error)
	MeshDwell(pnum uint32, q core.Query) ([]core.MeshDwellRow, error)
	HoverDwell(pnum uint32, q core.Query) ([]core.HoverDwellRow, error)
	Perf(pnum uint32, q core.Query) (core.PerfRow, error)
	Resources(pnum uint32, q core.Query) (core.ResourceRow, error)
	HeatPointer(pnum uint32, q core.Query, bins int) ([]core.PointerCellRow, error)
	HeatCamera(pnum uint32, q core.Query, bins int) ([]core.CameraCellRow, error)

	Interactions // read_interact.go
	PerfStats    // read_perf.go
	Spatial      // read_spatial.go
}

// ErrNotFound is what an Aggregates implementation returns (wrapped or
// as its own sentinel with this message) for an unknown session.
var errSessionNotFound = "session not found"

// paramError is a 400 about one query parameter.
type paramError struct{ msg string }

func (e paramError) Error() string { return e.msg }

// Limits of the read parameters (see docs/API.md).
const (
	maxLimit        = 1000
	defaultLimit    = 100
	maxPointerBins  = 500 // as the reference; the grid kept is 100 × 100 (docs/API.md)
	maxCameraBins   = 500 // as the reference; directions are kept in 1° cells
	minIntervalSecs = 60
	maxIntervalSecs = 31 * 24 * 3600
)

// parseQuery reads the shared parameters. Unknown parameters (projectId
// among them) are ignored: the project always comes from the key.
func parseQuery(args *fasthttp.Args, defLimit, maxLim int) (core.Query, error) {
	q := core.DefaultQuery()
	var err error
	if q.Since, err = intParam(args, "since", 0, 0, math.MaxInt64); err != nil {
		return q, err
	}
	if q.Until, err = intParam(args, "until", math.MaxInt64, 0, math.MaxInt64); err != nil {
		return q, err
	}
	if q.Until < q.Since {
		return q, paramError{"until must not be before since"}
	}
	lim, err := intParam(args, "limit", int64(defLimit), 1, int64(maxLim))
	if err != nil {
		return q, err
	}
	q.Limit = int(lim)
	if v := args.Peek("scene"); v != nil {
		if !core.ValidSceneID(v) {
			return q, paramError{"scene must match ^[A-Za-z0-9._:-]{1,64}$"}
		}
		q.Scene = string(v)
	}
	if v := args.Peek("session"); v != nil {
		if len(v) == 0 || len(v) > maxSessionIDBytes {
			return q, paramError{"session must be 1–128 characters"}
		}
		q.Session = string(v)
	}
	return q, nil
}

func intParam(args *fasthttp.Args, name string, def, lo, hi int64) (int64, error) {
	v := args.Peek(name)
	if v == nil {
		return def, nil
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n < lo || n > hi {
		if hi == math.MaxInt64 {
			return 0, paramError{name + " must be an integer ≥ " + strconv.FormatInt(lo, 10)}
		}
		return 0, paramError{name + " must be an integer from " + strconv.FormatInt(lo, 10) + " to " + strconv.FormatInt(hi, 10)}
	}
	return n, nil
}

// aggregateEndpoint serves one of the aggregate endpoints; false when rest
// names none.
func (s *readAPI) aggregateEndpoint(ctx *fasthttp.RequestCtx, rest []byte) bool {
	var run func(pnum uint32, q core.Query, args *fasthttp.Args) (any, error)
	defLimit, maxLim := defaultLimit, maxLimit
	a := s.aggregates
	switch string(rest) {
	case "event-counts":
		run = func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return a.EventCounts(p, q) }
	case "timeseries":
		run = func(p uint32, q core.Query, args *fasthttp.Args) (any, error) {
			secs, err := intParam(args, "interval", 3600, minIntervalSecs, maxIntervalSecs)
			if err != nil {
				return nil, err
			}
			if secs%60 != 0 {
				return nil, paramError{"interval must be a whole number of minutes, in seconds (60, 300, 3600, …)"}
			}
			return a.Timeseries(p, q, time.Duration(secs)*time.Second)
		}
	case "sessions":
		run = func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return a.Sessions(p, q) }
	case "scenes":
		run = func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return a.Scenes(p, q) }
	case "meshes/top":
		run = func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return a.MeshTop(p, q) }
	case "meshes/dwell":
		run = func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return a.MeshDwell(p, q) }
	case "hover/dwell":
		run = func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) { return a.HoverDwell(p, q) }
	case "perf":
		run = func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) {
			row, err := a.Perf(p, q)
			return []core.PerfRow{row}, err
		}
	case "perf/resources":
		run = func(p uint32, q core.Query, _ *fasthttp.Args) (any, error) {
			row, err := a.Resources(p, q)
			return []core.ResourceRow{row}, err
		}
	case "heatmaps/pointer":
		run = func(p uint32, q core.Query, args *fasthttp.Args) (any, error) {
			bins, err := intParam(args, "bins", 50, 1, maxPointerBins)
			if err != nil {
				return nil, err
			}
			return a.HeatPointer(p, q, int(bins))
		}
	case "heatmaps/camera":
		run = func(p uint32, q core.Query, args *fasthttp.Args) (any, error) {
			bins, err := intParam(args, "bins", 36, 1, maxCameraBins)
			if err != nil {
				return nil, err
			}
			return a.HeatCamera(p, q, int(bins))
		}
	default:
		var ok bool
		if run, defLimit, maxLim, ok = s.moreRoutes(string(rest)); !ok {
			return false
		}
	}
	project, ok := s.readAuth(ctx)
	if !ok {
		return true
	}
	if string(rest) == "funnel" {
		// The one route of the raw stream: its project's retention.
		run = s.funnelOf(retainsRaw(project, s.rawRetention))
	}
	if a == nil {
		s.notImplemented(ctx)
		return true
	}
	args := ctx.QueryArgs()
	q, err := parseQuery(args, defLimit, maxLim)
	if err != nil {
		s.fail(ctx, fasthttp.StatusBadRequest, err.Error())
		return true
	}
	rows, err := run(project.ProjectNum(), q, args)
	s.writeRows(ctx, rows, err)
	return true
}

// readAuth checks method and key for a read endpoint.
func (s *readAPI) readAuth(ctx *fasthttp.RequestCtx) (core.Project, bool) {
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set("Allow", "GET, HEAD")
		s.fail(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed: use GET")
		return nil, false
	}
	var h [32]byte
	return s.authenticate(ctx, core.CapQuery, nil, false, &h)
}

func (s *readAPI) writeRows(ctx *fasthttp.RequestCtx, rows any, err error) {
	var pe paramError
	switch {
	case errors.As(err, &pe):
		s.fail(ctx, fasthttp.StatusBadRequest, pe.msg)
		return
	case errors.Is(err, errRetentionOff):
		s.fail(ctx, fasthttp.StatusForbidden, errRetentionOff.Error())
		return
	case err != nil && err.Error() == errSessionNotFound:
		s.fail(ctx, fasthttp.StatusNotFound, errSessionNotFound)
		return
	case err != nil:
		s.log.Error("read failed", "err", err)
		s.unavailable(ctx, "could not read the aggregates", 5)
		return
	}
	b, jerr := json.Marshal(rows)
	if jerr != nil {
		s.fail(ctx, fasthttp.StatusInternalServerError, "could not encode the answer")
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

// sessionMeta is GET /api/v1/sessions/:id/meta.
func (s *readAPI) sessionMeta(ctx *fasthttp.RequestCtx, sessionID []byte) {
	project, ok := s.readAuth(ctx)
	if !ok {
		return
	}
	if s.aggregates == nil {
		s.notImplemented(ctx)
		return
	}
	row, err := s.aggregates.SessionMeta(project.ProjectNum(), string(sessionID))
	s.writeRows(ctx, row, err)
}
