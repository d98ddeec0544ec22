package edge

import "github.com/valyala/fasthttp"

// RawSessions reads raw per-session streams (retention on).
type RawSessions interface{}

// sessionEvents is GET /api/v1/sessions/:id/events.
func (s *Server) sessionEvents(ctx *fasthttp.RequestCtx, sessionID []byte) { s.notImplemented(ctx) }
