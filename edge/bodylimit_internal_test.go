package edge

import (
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestChunkedCaps(t *testing.T) {
	cc := chunkedCaps{maxAge: time.Minute}
	var a, b, fixed fasthttp.RequestHeader
	a.SetContentLength(-1) // chunked
	b.SetContentLength(-1)
	fixed.SetContentLength(100)

	cc.note(&fixed, capPlugin) // a Content-Length request: its header is enough
	if cc.n.Load() != 0 {
		t.Fatal("a request with a Content-Length was noted")
	}
	cc.note(&a, capPlugin)
	cc.note(&b, capScene)
	if got := cc.take(&a); got != capPlugin {
		t.Fatalf("take a = %v, want the plugin cap", got)
	}
	if got := cc.take(&a); got != capDefault {
		t.Fatalf("second take a = %v, want the default", got)
	}
	// The next chunked request on b's context, to an ingest path, clears
	// what its previous one left.
	cc.note(&b, capDefault)
	if got := cc.take(&b); got != capDefault || cc.n.Load() != 0 {
		t.Fatalf("after a default request: %v, %d entries", got, cc.n.Load())
	}
	// Entries older than any body read are not believed, and are pruned.
	cc.maxAge = time.Nanosecond
	cc.note(&a, capPlugin)
	time.Sleep(time.Millisecond)
	if got := cc.take(&a); got != capDefault {
		t.Fatalf("a stale entry was believed: %v", got)
	}
	hs := make([]fasthttp.RequestHeader, 100)
	for i := range hs {
		hs[i].SetContentLength(-1)
		cc.note(&hs[i], capPlugin)
		time.Sleep(10 * time.Microsecond)
	}
	if n := cc.n.Load(); n >= 50 {
		t.Fatalf("%d stale entries kept", n)
	}
}
