package edge

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/uptimizr/edge/core"
)

// SessionLister lists a project's sessions for the routes that walk each
// session's raw events (funnel).
type SessionLister interface {
	SessionIDs(pnum uint32, q core.Query, fn func(id string) error) error
}

// Bounds of a funnel's steps, as the reference's.
const (
	maxStepsParam = 8192
	minSteps      = 2
	maxSteps      = 20
)

// funnelStep is one step: an event of type, with name and mesh when given.
type funnelStep struct {
	Type  string  `json:"type"`
	Name  *string `json:"name"`
	Mesh  *string `json:"mesh"`
	Label *string `json:"label"`
	typ   core.EventType
}

// parseSteps reads the steps parameter.
func parseSteps(args *fasthttp.Args) ([]funnelStep, error) {
	v := args.Peek("steps")
	if len(v) == 0 || len(v) > maxStepsParam {
		return nil, paramError{"steps is required: a JSON array of 2–20 steps, at most 8192 characters"}
	}
	var steps []funnelStep
	if err := json.Unmarshal(v, &steps); err != nil {
		return nil, paramError{"steps must be a JSON array of steps {type, name?, mesh?, label?}"}
	}
	if len(steps) < minSteps || len(steps) > maxSteps {
		return nil, paramError{"invalid funnel steps: there must be 2 to 20"}
	}
	for i := range steps {
		s := &steps[i]
		t, ok := core.ParseEventType([]byte(s.Type))
		bad := !ok ||
			s.Name != nil && (len(*s.Name) < 1 || len(*s.Name) > 128) ||
			s.Mesh != nil && (len(*s.Mesh) < 1 || len(*s.Mesh) > 256) ||
			s.Label != nil && (len(*s.Label) < 1 || len(*s.Label) > 120)
		if bad {
			return nil, paramError{"invalid funnel steps: step " + strconv.Itoa(i) + " needs a known event type, name of 1–128, mesh of 1–256 and label of 1–120 characters"}
		}
		s.typ = t
	}
	return steps, nil
}

// funnelEvent is what a step reads of an event.
type funnelEvent struct {
	Type, SceneID             string
	Name, Phase, Kind, Action *string
	Mesh, HitMesh             *string
}

// name is the reference's promoted name: name, phase, kind or action.
func (e *funnelEvent) name() string {
	for _, p := range []*string{e.Name, e.Phase, e.Kind, e.Action} {
		if p != nil {
			return *p
		}
	}
	return ""
}

func (e *funnelEvent) mesh() string {
	if e.Mesh != nil {
		return *e.Mesh
	}
	if e.HitMesh != nil {
		return *e.HitMesh
	}
	return ""
}

func (s *funnelStep) matches(e *funnelEvent) bool {
	return e.Type == s.Type && (s.Name == nil || e.name() == *s.Name) && (s.Mesh == nil || e.mesh() == *s.Mesh)
}

var errFunnelStop = errors.New("funnel: session done")

// errRetentionOff is a 403: the route needs the raw session stream.
var errRetentionOff = errors.New("raw session retention is disabled")

// funnelOf is GET /api/v1/funnel for a project whose raw stream is kept
// (retained) or not: per step, the sessions that reached it in order. It
// walks each session's raw events, so it needs raw retention.
func (s *readAPI) funnelOf(retained bool) readRun {
	return func(p uint32, q core.Query, args *fasthttp.Args) (any, error) { return s.funnel(p, q, args, retained) }
}

func (s *readAPI) funnel(p uint32, q core.Query, args *fasthttp.Args, retained bool) (any, error) {
	steps, err := parseSteps(args)
	if err != nil {
		return nil, err
	}
	if !retained {
		return nil, errRetentionOff
	}
	lister, ok := s.aggregates.(SessionLister)
	if !ok || s.raw == nil {
		return nil, errors.New("funnel: no raw sessions on this node")
	}
	reached := make([]int64, len(steps))
	err = lister.SessionIDs(p, q, func(id string) error {
		k := 0
		err := s.raw.SessionEvents(p, []byte(id), q.Since, q.Until, func(ts int64, event []byte) error {
			var e funnelEvent
			if json.Unmarshal(event, &e) != nil {
				return nil
			}
			if e.SceneID == "" {
				e.SceneID = "default"
			}
			if q.Scene != "" && e.SceneID != q.Scene {
				return nil
			}
			// An event reaching a step may reach the next ones as well
			// (the reference's "at or after").
			for k < len(steps) && steps[k].matches(&e) {
				reached[k]++
				k++
			}
			if k == len(steps) {
				return errFunnelStop
			}
			return nil
		})
		if errors.Is(err, errFunnelStop) {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	rows := make([]core.FunnelStepRow, len(steps))
	for i := range rows {
		rows[i] = core.FunnelStepRow{Step: i, Sessions: reached[i]}
	}
	return rows, nil
}
