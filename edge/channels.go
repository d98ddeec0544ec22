package edge

import (
	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"

	"github.com/uptimizr/edge/core"
)

// channels is GET/PUT /api/v1/channels: read (query or admin key) or change
// (admin key) the calling key's project channel settings (docs/API.md, "Channels" and "Channel gating").
func (s *adminAPI) channels(ctx *fasthttp.RequestCtx) {
	if ok, retry := s.apiLim.Allow(HashIP(s.clientAddr(ctx)), s.now()); !ok {
		s.tooMany(ctx, retry, "client address")
		return
	}
	var h [32]byte
	switch {
	case ctx.IsGet():
		p, ok := s.authenticate(ctx, core.CapQuery|core.CapAdmin, nil, false, &h)
		if !ok {
			return
		}
		s.writeChannels(ctx, p.Channels())
	case ctx.IsPut():
		p, ok := s.authenticate(ctx, core.CapAdmin, nil, false, &h)
		if !ok || s.fleetOwned(ctx) {
			return
		}
		var parser fastjson.Parser
		v, err := parser.ParseBytes(ctx.Request.Body())
		if err != nil {
			s.fail(ctx, fasthttp.StatusBadRequest, "malformed JSON body: send {\"gaze\":true, …}")
			return
		}
		obj, err := v.Object()
		if err != nil {
			s.fail(ctx, fasthttp.StatusBadRequest, "body must be a JSON object of channel names to booleans")
			return
		}
		ch := p.Channels()
		var bad string
		obj.Visit(func(k []byte, x *fastjson.Value) {
			if bad != "" {
				return
			}
			var on bool
			switch x.Type() {
			case fastjson.TypeTrue:
				on = true
			case fastjson.TypeFalse:
			default:
				bad = "channel " + string(k) + " must be true or false"
				return
			}
			if !ch.Set(string(k), on) {
				bad = "unknown channel " + string(k) + " (known: meshPicks, meshVisibility, boundingBox, hoverDwell, resourceSample, gaze, captureErrors)"
			}
		})
		if bad != "" {
			s.fail(ctx, fasthttp.StatusBadRequest, bad)
			return
		}
		if err := s.keyAdmin.SetChannels(p.ProjectID(), ch); err != nil {
			s.log.Error("set channels failed", "project", p.ProjectID(), "err", err)
			s.unavailable(ctx, "could not store the settings", 5)
			return
		}
		s.writeChannels(ctx, ch)
	default:
		ctx.Response.Header.Set("Allow", "GET, PUT, OPTIONS")
		s.fail(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed: GET or PUT")
	}
}

func (s *adminAPI) writeChannels(ctx *fasthttp.RequestCtx, ch core.Channels) {
	ctx.SetContentType("application/json")
	b := []byte{'{'}
	for i, name := range core.ChannelNames {
		if i > 0 {
			b = append(b, ',')
		}
		on, _ := ch.Get(name)
		b = core.AppendQuoted(b, name)
		if on {
			b = append(b, ":true"...)
		} else {
			b = append(b, ":false"...)
		}
	}
	b = append(b, '}')
	ctx.SetBody(b)
}
