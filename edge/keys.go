package edge

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/uptimizr/edge/core"
)

// keys is the key administration API of the calling key's project (admin
// capability): GET /api/v1/keys lists live keys (ids and capabilities, never
// the keys), POST /api/v1/keys {"caps":"ingest"} creates one and shows it
// once, DELETE /api/v1/keys/<id> revokes one — effective at the next request.
func (s *adminAPI) keys(ctx *fasthttp.RequestCtx, rest []byte) {
	if ok, retry := s.apiLim.Allow(HashIP(s.clientAddr(ctx)), s.now()); !ok {
		s.tooMany(ctx, retry, "client address")
		return
	}
	var h [32]byte
	p, ok := s.authenticate(ctx, core.CapAdmin, nil, false, &h)
	if !ok || s.fleetOwned(ctx) {
		return
	}
	kid, tail, hasTail, _ := routeID(ctx, "/api/v1/keys/", rest, "/")
	id := string(kid)
	switch {
	case ctx.IsGet() && id == "":
		b, _ := json.Marshal(s.keyAdmin.KeyInfos(p.ProjectID()))
		ctx.SetContentType("application/json")
		ctx.SetBody(b)
	case ctx.IsPost() && id == "":
		var req struct {
			Caps string `json:"caps"`
		}
		if err := json.Unmarshal(ctx.Request.Body(), &req); err != nil || req.Caps == "" {
			s.fail(ctx, fasthttp.StatusBadRequest, `send {"caps":"ingest"} (ingest, query, admin; comma separated)`)
			return
		}
		caps, err := core.ParseCapabilities(req.Caps)
		if err != nil {
			s.fail(ctx, fasthttp.StatusBadRequest, err.Error())
			return
		}
		secret, kid, err := s.keyAdmin.CreateKey(p.ProjectID(), caps)
		if err != nil {
			s.log.Error("create key failed", "project", p.ProjectID(), "err", err)
			s.unavailable(ctx, "could not create the key", 5)
			return
		}
		b, _ := json.Marshal(map[string]string{"id": kid, "caps": caps.String(), "key": secret})
		ctx.SetStatusCode(fasthttp.StatusCreated)
		ctx.SetContentType("application/json")
		ctx.SetBody(b)
	case ctx.IsDelete() && id != "" && !hasTail && len(tail) == 0:
		kid, err := s.keyAdmin.RevokeKey(p.ProjectID(), id)
		if err != nil {
			if strings.Contains(err.Error(), "not found") {
				s.fail(ctx, fasthttp.StatusNotFound, "no live key with that id in this project")
				return
			}
			s.log.Error("revoke key failed", "project", p.ProjectID(), "err", err)
			s.unavailable(ctx, "could not revoke the key", 5)
			return
		}
		b, _ := json.Marshal(map[string]string{"revoked": kid})
		ctx.SetContentType("application/json")
		ctx.SetBody(b)
	default:
		ctx.Response.Header.Set("Allow", "GET, POST, DELETE, OPTIONS")
		s.fail(ctx, fasthttp.StatusMethodNotAllowed, "use GET or POST on /api/v1/keys, DELETE on /api/v1/keys/<id>")
	}
}

// fleetStatus is GET /api/v1/fleet (an admin key): the fleet's current
// revision and each node's last heartbeat (node id, revision, forward
// lag), from the control plane the node follows.
func (s *adminAPI) fleetStatus(ctx *fasthttp.RequestCtx) {
	if ok, retry := s.apiLim.Allow(HashIP(s.clientAddr(ctx)), s.now()); !ok {
		s.tooMany(ctx, retry, "client address")
		return
	}
	var h [32]byte
	if _, ok := s.authenticate(ctx, core.CapAdmin, nil, false, &h); !ok {
		return
	}
	if !ctx.IsGet() {
		s.fail(ctx, fasthttp.StatusMethodNotAllowed, "use GET /api/v1/fleet")
		return
	}
	if s.fleet == nil {
		s.fail(ctx, fasthttp.StatusNotFound, "this node follows no fleet control plane (COLLECTOR_CONTROL_URL)")
		return
	}
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := s.fleet.FleetStatus(c)
	if err != nil {
		s.log.Warn("fleet status", "err", err)
		s.unavailable(ctx, "the fleet's control plane cannot be reached", 5)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, v)
}
