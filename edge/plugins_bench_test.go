package edge_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// BenchmarkServerWithPlugins is the whole server over loopback (8 parallel
// clients, 200-event fixture, identity) with 0, 1 and 3 copies of the
// AssemblyScript pii-redact plugin in project a's chain.
func BenchmarkServerWithPlugins(b *testing.B) {
	var raw []byte
	for _, f := range loadFixtures(b) {
		if strings.HasPrefix(f.name, "batch200_00") {
			raw = f.body
		}
	}
	wasm, err := os.ReadFile("../plugins/examples/pii-redact/pii-redact.wasm")
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{0, 1, 3} {
		b.Run(fmt.Sprintf("plugins=%d", n), func(b *testing.B) {
			h := startHarness(b, nil, true)
			defer h.close()
			p := h.store.Registry().Project("a")
			for i := 1; i <= n; i++ {
				if _, err := h.plugins.Upload(context.Background(), p.Num, "a", fmt.Sprintf("pii-%d", i), wasm, nil, ""); err != nil {
					b.Fatal(err)
				}
			}
			hc := &fasthttp.HostClient{Addr: strings.TrimPrefix(h.base, "http://"), MaxConns: 64}
			b.SetBytes(int64(len(raw)))
			b.SetParallelism(4)
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
					req.SetBodyRaw(raw)
					if err := hc.Do(req, res); err != nil || res.StatusCode() != 200 || !strings.Contains(string(res.Body()), `"quarantined":0`) {
						b.Errorf("%v %d %s", err, res.StatusCode(), res.Body())
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)*200/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkActivation measures a plugin upload over HTTP until the first
// batch it filters is answered: check, self-test, store, chain swap.
func BenchmarkActivation(b *testing.B) {
	wasm, err := os.ReadFile("../plugins/examples/pii-redact/pii-redact.wasm")
	if err != nil {
		b.Fatal(err)
	}
	h := startHarness(b, nil, false)
	defer func() { b.StopTimer(); h.close() }()
	batch := batchOf(validEvent("custom", `,"name":"x","props":{"email":"jane@example.com"}`))
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		r := h.upload(fmt.Sprintf("p%d", i%4), fmt.Sprintf(`{"denyParams":["k%d"]}`, i), "", wasm)
		if r.status != 201 {
			b.Fatalf("%d %s", r.status, r.body)
		}
		if r := h.collect(h.a.Ingest, batch, nil); r.status != 200 {
			b.Fatal(r.status)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/activation")
}
