package edge

import "github.com/valyala/fasthttp"

// Aggregates answers the aggregate read endpoints.
type Aggregates interface{}

// aggregateEndpoint serves one of the aggregate endpoints; false when rest
// names none.
func (s *Server) aggregateEndpoint(ctx *fasthttp.RequestCtx, rest []byte) bool { return false }

// sessionMeta is GET /api/v1/sessions/:id/meta.
func (s *Server) sessionMeta(ctx *fasthttp.RequestCtx, sessionID []byte) { s.notImplemented(ctx) }
