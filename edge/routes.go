package edge

import (
	"github.com/valyala/fasthttp"
)

// readRoute dispatches the read API and scene registry below /api/v1/ (rest
// is the path after that prefix) to the read part, and a scene
// representation PUT to the ingest part; it returns the route label for
// metrics.
func (s *Server) readRoute(ctx *fasthttp.RequestCtx, rest []byte) route {
	if ok, retry := s.apiLim.Allow(HashIP(s.clientAddr(ctx)), s.now()); !ok {
		s.tooMany(ctx, retry, "client address")
		return routeRead
	}
	if r, ok := s.live.route(ctx, rest); ok {
		return r
	}
	// Routes with an id read it from the raw path (pathid.go): an id may
	// hold an encoded "/" or dot segment that the decoded path has split
	// or resolved.
	if id, tail, hasTail, ok := routeID(ctx, "/api/v1/sessions/", rest, "sessions/"); ok {
		switch {
		case hasTail && len(id) > 0 && string(tail) == "events":
			s.read.sessionEvents(ctx, id)
			return routeSessionRaw
		case hasTail && len(id) > 0 && string(tail) == "meta":
			s.read.sessionMeta(ctx, id)
			return routeSessionMeta
		case hasTail && len(id) > 0 && string(tail) == "trajectory":
			s.read.sessionTrajectory(ctx, id)
			return routeRead
		}
		s.fail(ctx, fasthttp.StatusNotFound, "not found")
		return routeOther
	}
	if id, tail, hasTail, ok := routeID(ctx, "/api/v1/scenes/", rest, "scenes/"); ok {
		if hasTail && len(id) > 0 && string(tail) == "representation" {
			if ctx.IsPut() {
				s.ingest.putSceneRepresentation(ctx, id)
			} else {
				s.read.sceneRepresentation(ctx, id)
			}
			return routeScenes
		}
		s.fail(ctx, fasthttp.StatusNotFound, "not found")
		return routeOther
	}
	switch {
	case string(rest) == "scene-representations":
		s.read.sceneRepresentations(ctx)
		return routeScenes
	default:
		if s.read.aggregateEndpoint(ctx, rest) {
			return routeRead
		}
	}
	s.fail(ctx, fasthttp.StatusNotFound, "not found")
	return routeOther
}

func (s *base) notImplemented(ctx *fasthttp.RequestCtx) {
	s.fail(ctx, fasthttp.StatusNotImplemented, "not available on this node")
}
