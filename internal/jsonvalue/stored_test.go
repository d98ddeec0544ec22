package jsonvalue

import (
	"fmt"
	"testing"

	"github.com/uptimizr/edge/core"
)

// TestStoredInfo: the visitor id comes from the first event, the browser
// and OS from the first session_start wherever it is in the batch (not
// from an event that only names one), and "unknown" without one.
func TestStoredInfo(t *testing.T) {
	const vid = "0123456789abcdef0123456789abcdef"
	ev := func(typ, extra string) []byte {
		return fmt.Appendf(nil, `{"type":%q,"sessionId":"s","ts":1,"visitorId":%q%s}`, typ, vid, extra)
	}
	start := ev("session_start", `,"device":{"browser":"Firefox","os":"Linux"}`)
	decoy := ev("custom", `,"name":"session_start","device":{"browser":"Decoy","os":"Decoy"}`)
	for _, c := range []struct {
		name        string
		events      [][]byte
		browser, os string
	}{
		{"first", [][]byte{start, ev("click", "")}, "Firefox", "Linux"},
		{"later, after a decoy", [][]byte{ev("click", ""), decoy, ev("click", ""), start}, "Firefox", "Linux"},
		{"none", [][]byte{ev("click", ""), decoy}, "unknown", "unknown"},
		{"not JSON first", [][]byte{[]byte("{"), start}, "Firefox", "Linux"},
	} {
		info := StoredInfo(len(c.events), func(i int) []byte { return c.events[i] }, "shop", core.AllChannels())
		if info.Browser != c.browser || info.OS != c.os || info.ProjectID != "shop" {
			t.Errorf("%s: %+v", c.name, info)
		}
		if c.name != "not JSON first" && string(info.VisitorID[:]) != vid {
			t.Errorf("%s: visitor id %q", c.name, info.VisitorID[:])
		}
	}
}
