package edge

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/uptimizr/edge/core"
)

// PluginAdmin is the plugin lifecycle of a project; the plugin manager
// implements it.
type PluginAdmin interface {
	Upload(ctx context.Context, pnum uint32, projectID, name string, wasm, config []byte, policy string) (*core.PluginRecord, error)
	SetConfig(ctx context.Context, pnum uint32, projectID, name string, config []byte, policy string) (*core.PluginRecord, error)
	Activate(ctx context.Context, pnum uint32, name string, v int) (*core.PluginRecord, error)
	Rollback(ctx context.Context, pnum uint32, name string) (*core.PluginRecord, error)
	Remove(ctx context.Context, pnum uint32, name string) error
	SetOrder(ctx context.Context, pnum uint32, names []string) error
	List(pnum uint32) ([]core.PluginRecord, error)
}

// QuarantineAdmin lists, replays and discards a project's quarantined
// batches.
type QuarantineAdmin interface {
	List(pnum uint32, limit int) ([]core.QuarantineEntry, int, error)
	Delete(pnum uint32, id string) error
	Replay(ctx context.Context, project core.Project, id string) (any, error)
}

// maxPluginUpload bounds a plugin module on the wire
// (COLLECTOR_PLUGIN_MAX_MODULE_MB).
func (s *Server) maxPluginUpload() int { return s.cfg.PluginModuleMiB << 20 }

// adminError maps a lifecycle error to a status.
func (s *adminAPI) adminError(ctx *fasthttp.RequestCtx, err error) {
	switch {
	case errors.Is(err, core.ErrRejected):
		s.fail(ctx, fasthttp.StatusBadRequest, err.Error())
	case errors.Is(err, core.ErrNotFound):
		s.fail(ctx, fasthttp.StatusNotFound, err.Error())
	case errors.Is(err, core.ErrUnavailable):
		s.unavailable(ctx, errText(err), 5)
	default:
		s.log.Error("plugin administration failed", "err", err)
		s.unavailable(ctx, "could not complete the change", 5)
	}
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, _ := json.Marshal(v)
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

type pluginRow struct {
	Name     string               `json:"name"`
	Active   int                  `json:"active"`
	Position int                  `json:"position"`
	Versions []core.PluginVersion `json:"versions"`
}

// plugins serves /api/v1/plugins[/NAME[/rollback|/activate|/config]] with an
// admin key (docs/API.md, "Plugins").
func (s *adminAPI) plugins(ctx *fasthttp.RequestCtx, rest string) {
	var h [32]byte
	p, ok := s.authenticate(ctx, core.CapAdmin, nil, false, &h)
	if !ok || s.fleetOwned(ctx) {
		return
	}
	pa := s.pluginAdmin
	if pa == nil {
		s.notImplemented(ctx)
		return
	}
	n, a, _, _ := routeID(ctx, "/api/v1/plugins/", []byte(rest), "/")
	name, action := string(n), string(a)
	pnum := p.ProjectNum()
	switch {
	case name == "" && ctx.IsGet():
		recs, err := pa.List(pnum)
		if err != nil {
			s.adminError(ctx, err)
			return
		}
		rows := make([]pluginRow, len(recs))
		for i, r := range recs {
			rows[i] = pluginRow{Name: r.Name, Active: r.Active, Position: i + 1, Versions: r.Versions}
		}
		writeJSON(ctx, fasthttp.StatusOK, rows)
	case name == "" && ctx.IsPut():
		var body struct {
			Order []string `json:"order"`
		}
		if err := json.Unmarshal(ctx.Request.Body(), &body); err != nil || body.Order == nil {
			s.fail(ctx, fasthttp.StatusBadRequest, `send {"order":["first","second",…]} naming every plugin of the chain`)
			return
		}
		if err := pa.SetOrder(ctx, pnum, body.Order); err != nil {
			s.adminError(ctx, err)
			return
		}
		writeJSON(ctx, fasthttp.StatusOK, map[string][]string{"order": body.Order})
	case name != "" && action == "" && ctx.IsPut():
		wasm := ctx.Request.Body()
		if len(wasm) == 0 {
			s.fail(ctx, fasthttp.StatusBadRequest, "send the module as the body (Content-Type: application/wasm)")
			return
		}
		args := ctx.QueryArgs()
		rec, err := pa.Upload(ctx, pnum, p.ProjectID(), name, wasm, args.Peek("config"), string(args.Peek("policy")))
		if err != nil {
			s.adminError(ctx, err)
			return
		}
		writeJSON(ctx, fasthttp.StatusCreated, map[string]any{"name": rec.Name, "version": rec.Active})
	case name != "" && action == "config" && ctx.IsPut():
		rec, err := pa.SetConfig(ctx, pnum, p.ProjectID(), name, ctx.Request.Body(), string(ctx.QueryArgs().Peek("policy")))
		if err != nil {
			s.adminError(ctx, err)
			return
		}
		writeJSON(ctx, fasthttp.StatusOK, map[string]any{"name": rec.Name, "version": rec.Active})
	case name != "" && action == "rollback" && ctx.IsPost():
		rec, err := pa.Rollback(ctx, pnum, name)
		if err != nil {
			s.adminError(ctx, err)
			return
		}
		writeJSON(ctx, fasthttp.StatusOK, map[string]any{"name": rec.Name, "version": rec.Active})
	case name != "" && action == "activate" && ctx.IsPost():
		v, err := strconv.Atoi(string(ctx.QueryArgs().Peek("version")))
		if err != nil || v < 1 {
			s.fail(ctx, fasthttp.StatusBadRequest, "version must be a positive integer (?version=N)")
			return
		}
		rec, err := pa.Activate(ctx, pnum, name, v)
		if err != nil {
			s.adminError(ctx, err)
			return
		}
		writeJSON(ctx, fasthttp.StatusOK, map[string]any{"name": rec.Name, "version": rec.Active})
	case name != "" && action == "" && ctx.IsDelete():
		if err := pa.Remove(ctx, pnum, name); err != nil {
			s.adminError(ctx, err)
			return
		}
		writeJSON(ctx, fasthttp.StatusOK, map[string]string{"removed": name})
	default:
		s.fail(ctx, fasthttp.StatusMethodNotAllowed, "use GET or PUT /api/v1/plugins, PUT or DELETE /api/v1/plugins/NAME, PUT …/NAME/config, POST …/NAME/rollback or …/NAME/activate?version=N")
	}
}

// quarantine serves /api/v1/quarantine[/ID[/replay]] with an admin key.
func (s *adminAPI) quarantine(ctx *fasthttp.RequestCtx, rest string) {
	var h [32]byte
	p, ok := s.authenticate(ctx, core.CapAdmin, nil, false, &h)
	if !ok {
		return
	}
	qa := s.quarantineAdmin
	if qa == nil {
		s.notImplemented(ctx)
		return
	}
	i, a, _, _ := routeID(ctx, "/api/v1/quarantine/", []byte(rest), "/")
	id, action := string(i), string(a)
	switch {
	case id == "" && ctx.IsGet():
		limit, err := intParam(ctx.QueryArgs(), "limit", defaultLimit, 1, maxLimit)
		if err != nil {
			s.fail(ctx, fasthttp.StatusBadRequest, err.Error())
			return
		}
		entries, total, err := qa.List(p.ProjectNum(), int(limit))
		if err != nil {
			s.adminError(ctx, err)
			return
		}
		if entries == nil {
			entries = []core.QuarantineEntry{}
		}
		writeJSON(ctx, fasthttp.StatusOK, map[string]any{"count": total, "batches": entries})
	case id != "" && action == "replay" && ctx.IsPost():
		res, err := qa.Replay(ctx, p, id)
		if err != nil {
			s.adminError(ctx, err)
			return
		}
		writeJSON(ctx, fasthttp.StatusOK, res)
	case id != "" && action == "" && ctx.IsDelete():
		if err := qa.Delete(p.ProjectNum(), id); err != nil {
			s.adminError(ctx, err)
			return
		}
		writeJSON(ctx, fasthttp.StatusOK, map[string]string{"discarded": id})
	default:
		s.fail(ctx, fasthttp.StatusMethodNotAllowed, "use GET /api/v1/quarantine, POST /api/v1/quarantine/ID/replay or DELETE /api/v1/quarantine/ID")
	}
}
