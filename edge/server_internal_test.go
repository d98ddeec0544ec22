package edge

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/uptimizr/edge/core"
)

// TestErrorBodiesQuotedAsCore: the edge's JSON error bodies quote their
// message with core.AppendQuoted, the canonical encoder's quoting.
func TestErrorBodiesQuotedAsCore(t *testing.T) {
	var s Server
	var ctx fasthttp.RequestCtx
	for c := range 0x80 {
		msg := "a" + string(rune(c)) + "é😀"
		s.fail(&ctx, fasthttp.StatusBadRequest, msg)
		want := `{"error":` + string(core.AppendQuoted(nil, msg)) + `}`
		if got := string(ctx.Response.Body()); got != want {
			t.Fatalf("byte %#x: %s, want %s", c, got, want)
		}
	}
	s.fail(&ctx, fasthttp.StatusBadRequest, "\b\f\n\x01")
	if got := string(ctx.Response.Body()); got != `{"error":"\b\f\n\u0001"}` {
		t.Fatalf("%s", got)
	}
}
