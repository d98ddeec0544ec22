package jsonvalue

import (
	"bytes"

	"github.com/valyala/fastjson"

	"github.com/uptimizr/edge/core"
)

// sessionStartToken is the type of a session_start as canonical JSON
// writes it.
var sessionStartToken = []byte(`"` + core.TypeSessionStart.String() + `"`)

// StoredInfo rebuilds, from the events of one request in their stored
// form (docs/API.md, "Stored form"), what the server decided for that
// request: the visitor id the events carry, the coarse browser and OS of
// its session_start (else "unknown"), with the given project and channels.
// Run through a Processor with it, stored events come out as they went in:
// a quarantined batch replayed, a forwarded record on the fleet's hub.
func StoredInfo(n int, event func(i int) []byte, projectID string, ch core.Channels) *core.RequestInfo {
	info := &core.RequestInfo{ProjectID: projectID, Channels: ch, Browser: "unknown", OS: "unknown"}
	var p fastjson.Parser
	for i := range n {
		e := event(i)
		if i > 0 && !bytes.Contains(e, sessionStartToken) {
			// Not a session_start (its type token is not in it): no need
			// to parse it.
			continue
		}
		v, err := p.ParseBytes(e)
		if err != nil {
			continue
		}
		if i == 0 {
			copy(info.VisitorID[:], v.GetStringBytes("visitorId"))
		}
		if string(v.GetStringBytes("type")) == core.TypeSessionStart.String() {
			if br := v.GetStringBytes("device", "browser"); len(br) > 0 {
				info.Browser = string(br)
			}
			if os := v.GetStringBytes("device", "os"); len(os) > 0 {
				info.OS = string(os)
			}
			break
		}
	}
	return info
}
