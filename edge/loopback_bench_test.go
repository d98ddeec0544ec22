package edge_test

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkServerLoopback is the whole write path over HTTP on loopback:
// a fasthttp client posts the 200-event fixture to the real server (real
// Badger, group commit) from parallel goroutines. Client and server share
// the machine, so the figure includes the client's cost too.
func BenchmarkServerLoopback(b *testing.B) {
	var raw []byte
	for _, f := range loadFixtures(b) {
		if strings.HasPrefix(f.name, "batch200_00") {
			raw = f.body
		}
	}
	for _, enc := range []string{"identity", "gzip", "zstd"} {
		b.Run(enc, func(b *testing.B) {
			h := startHarness(b, nil, true)
			defer h.close()
			body := compress(b, enc, raw)
			hc := &fasthttp.HostClient{Addr: strings.TrimPrefix(h.base, "http://"), MaxConns: 64}
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(res)
				for pb.Next() {
					req.Reset()
					req.SetRequestURI(h.base + "/api/v1/collect")
					req.Header.SetMethod("POST")
					req.Header.Set("x-api-key", h.a.Ingest)
					req.Header.SetContentType("application/json")
					if enc != "identity" {
						req.Header.Set("Content-Encoding", enc)
					}
					req.SetBodyRaw(body)
					if err := hc.Do(req, res); err != nil || res.StatusCode() != 200 {
						b.Errorf("%v %d %s", err, res.StatusCode(), res.Body())
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)*200/b.Elapsed().Seconds(), "events/s")
		})
	}
}
