package edge

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// Ids in request paths (session ids, scene ids, plugin names, quarantine
// and key ids) are percent-encoded by the client, so that an id may hold
// any character: a session id "a/b" is sent as "a%2Fb". fasthttp's
// ctx.Path() is already decoded (and cleaned of dot segments and doubled
// slashes), which would split such an id, or resolve it away; so a route
// with an id splits the raw path, as sent, into segments and decodes each.

// idRoutes are the path prefixes of the routes that take an id.
var idRoutes = [...]string{"/api/v1/sessions/", "/api/v1/scenes/", "/api/v1/plugins/", "/api/v1/quarantine/", "/api/v1/keys/", "/api/v1/live/sessions/"}

// routePath is the path the server routes ctx by: the decoded path, except
// for a route with an id, whose raw path is kept as it was sent (the
// decoded one may have resolved an id such as "../.." into another route).
func routePath(ctx *fasthttp.RequestCtx) []byte {
	if raw := ctx.URI().PathOriginal(); len(raw) > len("/api/v1/") {
		for _, p := range idRoutes {
			if bytes.HasPrefix(raw, []byte(p)) {
				return raw
			}
		}
	}
	return ctx.Path()
}

// routeID splits the path of a route "<prefix><id>[/<tail>]". It reads the
// raw request path when that starts with rawPrefix (e.g.
// "/api/v1/sessions/"), percent-decoding the id and the tail; otherwise
// (a path written with encoded letters, dot segments or doubled slashes
// that the decoded path resolves) it reads decoded, the decoded path after
// the route's fixed part, when that starts with decodedPrefix, as before.
// ok is false when neither has the prefix.
func routeID(ctx *fasthttp.RequestCtx, rawPrefix string, decoded []byte, decodedPrefix string) (id, tail []byte, hasTail, ok bool) {
	if raw := ctx.URI().PathOriginal(); bytes.HasPrefix(raw, []byte(rawPrefix)) {
		id, tail, hasTail = bytes.Cut(raw[len(rawPrefix):], []byte("/"))
		return unescapePath(id), unescapePath(tail), hasTail, true
	}
	if !bytes.HasPrefix(decoded, []byte(decodedPrefix)) {
		return nil, nil, false, false
	}
	id, tail, hasTail = bytes.Cut(decoded[len(decodedPrefix):], []byte("/"))
	return id, tail, hasTail, true
}

// unescapePath percent-decodes a path segment: %XX is the byte XX; a "%"
// not followed by two hex digits is kept as it is, as fasthttp keeps it in
// the decoded path; "+" is a plus (it means a space only in a query). A
// segment without "%" is returned as it is, without copying.
func unescapePath(s []byte) []byte {
	i := bytes.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	out := make([]byte, 0, len(s))
	out = append(out, s[:i]...)
	for ; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		out = append(out, s[i])
	}
	return out
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
