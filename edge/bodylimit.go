package edge

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// wireCap names the cap on a request's bytes on the wire, chosen from its
// path before the body is read (bodyLimit).
type wireCap uint8

const (
	capDefault wireCap = iota // ingest and everything else: COLLECTOR_COMPRESSED_BODY_LIMIT
	capPlugin                 // /api/v1/plugins…: COLLECTOR_PLUGIN_MAX_MODULE_MB
	capScene                  // /api/v1/scenes…: SceneBodyLimit, or the ingest cap when larger
)

// wireCapOf returns the cap of a request to path (its URI without query).
func wireCapOf(path []byte) wireCap {
	switch {
	case hasPathPrefix(path, "/api/v1/plugins"):
		return capPlugin
	case hasPathPrefix(path, "/api/v1/scenes"):
		return capScene
	}
	return capDefault
}

// capBytes is the cap c in bytes.
func (s *Server) capBytes(c wireCap) int {
	switch c {
	case capPlugin:
		return s.maxPluginUpload()
	case capScene:
		return max(s.cfg.MaxWireBody(), SceneBodyLimit)
	}
	return s.cfg.MaxWireBody()
}

// capRoute is the metrics label of a request refused by cap c.
func capRoute(c wireCap) route {
	switch c {
	case capPlugin:
		return routePlugins
	case capScene:
		return routeScenes
	}
	return routeCollect
}

// tooLargeMsg is the 413 message of a body over cap c: the limit in bytes
// (and MiB) and the setting it comes from.
func (s *Server) tooLargeMsg(c wireCap) string {
	n := s.capBytes(c)
	limit := strconv.Itoa(n) + " bytes"
	if n >= 1<<20 {
		limit += " (" + sizeText(uint64(n)) + ")"
	}
	switch c {
	case capPlugin:
		return "plugin upload exceeds " + limit + ", the module size limit set by COLLECTOR_PLUGIN_MAX_MODULE_MB=" +
			strconv.Itoa(s.cfg.PluginModuleMiB) + " on this server: send a smaller module, or raise the limit (1–256 MiB)"
	case capScene:
		if s.cfg.MaxWireBody() > SceneBodyLimit {
			return "scene representation body exceeds " + limit + " on the wire, the limit set by " + s.wireVar()
		}
		return "scene representation body exceeds " + limit + " on the wire, the scene representation limit (8 MiB): compress the body"
	}
	return "request body exceeds " + limit + " on the wire, the limit set by " + s.wireVar()
}

// wireVar names the setting that decides the ingest wire cap, with its value.
func (s *Server) wireVar() string {
	if s.cfg.CompressedBodyLimit > 0 {
		return "COLLECTOR_COMPRESSED_BODY_LIMIT=" + strconv.Itoa(s.cfg.CompressedBodyLimit)
	}
	return "COLLECTOR_BODY_LIMIT=" + strconv.Itoa(s.cfg.BodyLimit) + " (COLLECTOR_COMPRESSED_BODY_LIMIT is 0)"
}

// chunkedCaps remembers which cap bodyLimit chose for a chunked request.
//
// fasthttp refuses a chunked body over the cap while reading it, and then
// resets the request, header included, before the error handler runs: the
// path that decided the cap is gone. (A body with Content-Length is refused
// from its header, which is still there.) So bodyLimit notes the cap of a
// chunked request that is not the default one, keyed by the address of the
// request's header (which identifies the connection's request context while
// it is in use, and is never turned back into a pointer, so nothing is kept
// alive by it), and the error handler takes it back. Every chunked request
// sets or clears its own entry; requests with a Content-Length, nearly all,
// never touch it. Entries left by requests that ended without an error are
// overwritten when their context serves its next chunked request, and
// dropped once older than any body read can last.
type chunkedCaps struct {
	n      atomic.Int32 // entries in m
	mu     sync.Mutex
	m      map[uintptr]chunkedCap
	pruned int // len(m) after the last prune
	maxAge time.Duration
}

type chunkedCap struct {
	c  wireCap
	at time.Time
}

func headerKey(h *fasthttp.RequestHeader) uintptr { return uintptr(unsafe.Pointer(h)) }

// note records cap c of the request whose header h was just received.
func (cc *chunkedCaps) note(h *fasthttp.RequestHeader, c wireCap) {
	if h.ContentLength() != -1 { // not chunked
		return
	}
	if c == capDefault && cc.n.Load() == 0 {
		return
	}
	now := time.Now()
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if c == capDefault {
		delete(cc.m, headerKey(h))
	} else {
		if cc.m == nil {
			cc.m = make(map[uintptr]chunkedCap)
		}
		cc.m[headerKey(h)] = chunkedCap{c, now}
	}
	if len(cc.m) > 2*cc.pruned+8 {
		for k, e := range cc.m {
			if now.Sub(e.at) > cc.maxAge {
				delete(cc.m, k)
			}
		}
		cc.pruned = len(cc.m)
	}
	cc.n.Store(int32(len(cc.m)))
}

// take returns the cap noted for the chunked request of header h (the
// default when none was), and forgets it.
func (cc *chunkedCaps) take(h *fasthttp.RequestHeader) wireCap {
	if cc.n.Load() == 0 {
		return capDefault
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	e, ok := cc.m[headerKey(h)]
	delete(cc.m, headerKey(h))
	cc.n.Store(int32(len(cc.m)))
	if !ok || time.Since(e.at) > cc.maxAge {
		return capDefault
	}
	return e.c
}

// refusedCap returns the cap of the request ctx whose body fasthttp refused
// as too large: from its path when the header is still there (a
// Content-Length over the cap), else as noted for a chunked body.
func (s *Server) refusedCap(ctx *fasthttp.RequestCtx) wireCap {
	h := &ctx.Request.Header
	if h.ContentLength() > 0 {
		return wireCapOf(requestPath(h))
	}
	return s.chunked.take(h)
}

// requestPath is the request URI of h without its query.
func requestPath(h *fasthttp.RequestHeader) []byte {
	path := h.RequestURI()
	if i := indexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	return path
}
