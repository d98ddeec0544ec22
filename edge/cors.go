package edge

import (
	"strconv"

	"github.com/valyala/fasthttp"
)

// corsPolicy implements docs/API.md, "CORS and the origin allow-list": only listed origins get CORS headers, and
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

// checkOrigin enforces COLLECTOR_CORS_ORIGINS on the API (docs/API.md, "CORS and the origin allow-list"): a
// request whose Origin is present and not allowed is refused with 403 before
// anything is read from it or stored, and so is a request without Origin when
// COLLECTOR_REQUIRE_ORIGIN is set. It reports whether the request may go on;
// if not, it has written the response.
func (s *Server) checkOrigin(ctx *fasthttp.RequestCtx, origin []byte, allowed bool) bool {
	switch {
	case allowed:
		s.m.origins[originAllowed].Inc()
		return true
	case len(origin) > 0:
		s.m.origins[originRefused].Inc()
		o := origin
		if len(o) > 200 {
			o = o[:200]
		}
		s.fail(ctx, fasthttp.StatusForbidden, "origin "+strconvQuote(o)+" is not allowed: add it to COLLECTOR_CORS_ORIGINS")
		return false
	case s.cfg.RequireOrigin:
		s.m.origins[originAbsentDenied].Inc()
		s.fail(ctx, fasthttp.StatusForbidden, "requests without an Origin header are refused on this node (COLLECTOR_REQUIRE_ORIGIN=true)")
		return false
	}
	s.m.origins[originAbsent].Inc()
	return true
}

// isAPIPath is true for the routes the origin allow-list guards: the API and
// the /k/<key>/ ingest base; not the probes (/health, /ready, /metrics).
func isAPIPath(path []byte) bool {
	return hasPathPrefix(path, "/api") || len(path) > 3 && string(path[:3]) == "/k/"
}

func isCollectPath(path []byte) bool {
	if string(path) == "/api/v1/collect" {
		return true
	}
	return len(path) > 3 && string(path[:3]) == "/k/" && len(path) > len("/api/v1/collect") &&
		string(path[len(path)-len("/api/v1/collect"):]) == "/api/v1/collect"
}

func strconvQuote(b []byte) string { return strconv.Quote(string(b)) }

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
