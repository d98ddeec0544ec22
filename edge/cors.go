package edge

import (
	"github.com/valyala/fasthttp"
)

// corsPolicy implements SPEC §11: only listed origins get CORS headers, and
// they get credentials echoed (navigator.sendBeacon sends credentialed
// requests). "*" allows any origin, still echoed (never a literal "*", which
// browsers refuse with credentials). An empty list means no cross-origin.
type corsPolicy struct {
	any     bool
	origins map[string]struct{}
}

func newCORSPolicy(list []string) corsPolicy {
	p := corsPolicy{origins: map[string]struct{}{}}
	for _, o := range list {
		if o == "*" {
			p.any = true
			continue
		}
		p.origins[o] = struct{}{}
	}
	return p
}

func (p corsPolicy) allows(origin []byte) bool {
	if p.any {
		return true
	}
	_, ok := p.origins[string(origin)]
	return ok
}

const (
	corsMethods = "GET, POST, PUT, DELETE, OPTIONS"
	corsHeaders = "Content-Type, Content-Encoding, X-Api-Key"
)

func (p corsPolicy) apply(ctx *fasthttp.RequestCtx, origin []byte) {
	h := &ctx.Response.Header
	h.SetBytesV("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Add("Vary", "Origin")
}

// preflight answers OPTIONS. An allowed origin gets 204 with the methods and
// headers the API uses; any other origin gets 403 without CORS headers, so
// the browser blocks the request and the caller learns why.
func (s *Server) preflight(ctx *fasthttp.RequestCtx, origin []byte, allowed bool) {
	if len(origin) == 0 {
		ctx.Response.Header.Set("Allow", corsMethods)
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	if !allowed {
		s.fail(ctx, fasthttp.StatusForbidden, "origin not allowed: add it to COLLECTOR_CORS_ORIGINS")
		return
	}
	h := &ctx.Response.Header
	h.Set("Access-Control-Allow-Methods", corsMethods)
	h.Set("Access-Control-Allow-Headers", corsHeaders)
	h.Set("Access-Control-Max-Age", "600")
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}
