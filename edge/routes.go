package edge

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// readRoute dispatches the read API and scene registry below /api/v1/ (rest
// is the path after that prefix) and returns the route label for metrics.
func (s *Server) readRoute(ctx *fasthttp.RequestCtx, rest []byte) route {
	if ok, retry := s.apiLim.Allow(HashIP(s.clientAddr(ctx)), s.now()); !ok {
		s.tooMany(ctx, retry, "client address")
		return routeRead
	}
	switch {
	case bytes.HasPrefix(rest, []byte("sessions/")):
		id, tail, ok := bytes.Cut(rest[len("sessions/"):], []byte("/"))
		switch {
		case ok && len(id) > 0 && string(tail) == "events":
			s.sessionEvents(ctx, id)
			return routeSessionRaw
		case ok && len(id) > 0 && string(tail) == "meta":
			s.sessionMeta(ctx, id)
			return routeSessionMeta
		}
	case bytes.HasPrefix(rest, []byte("scenes/")):
		id, tail, ok := bytes.Cut(rest[len("scenes/"):], []byte("/"))
		if ok && len(id) > 0 && string(tail) == "representation" {
			s.sceneRepresentation(ctx, id)
			return routeScenes
		}
	case string(rest) == "scene-representations":
		s.sceneRepresentations(ctx)
		return routeScenes
	default:
		if s.aggregateEndpoint(ctx, rest) {
			return routeRead
		}
	}
	s.fail(ctx, fasthttp.StatusNotFound, "not found")
	return routeOther
}

func (s *Server) notImplemented(ctx *fasthttp.RequestCtx) {
	s.fail(ctx, fasthttp.StatusNotImplemented, "not available on this node")
}
