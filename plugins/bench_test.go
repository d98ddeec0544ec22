package plugins

import (
	"context"
	"os"
	"testing"
)

// BenchmarkExamplePlugins measures one filter call per example module on the
// 200-event fixture (copy in, run, copy out), under the host's sandbox and
// deadline.
func BenchmarkExamplePlugins(b *testing.B) {
	h := newTestHost(b, Options{})
	batch := fixtureBatch(b, "batch200_00_session-start.json")
	in := encodeBatch(nil, batch)
	for _, c := range []struct{ name, file, config string }{
		{"pii-redact/assemblyscript", "examples/pii-redact/pii-redact.wasm", ""},
		{"pii-redact/go", "examples/pii-redact/go/pii-redact.wasm", ""},
		{"schema-guard/go", "examples/schema-guard/go/schema-guard.wasm", ""},
		{"drop-internal/go", "examples/drop-internal/go/drop-internal.wasm", `{"hosts":[".internal.example.com"]}`},
	} {
		b.Run(c.name, func(b *testing.B) {
			wasm, err := os.ReadFile(c.file)
			if err != nil {
				b.Fatal(err)
			}
			mod, err := h.Compile(context.Background(), wasm)
			if err != nil {
				b.Fatal(err)
			}
			p, err := h.NewPlugin(context.Background(), c.name, 1, mod, []byte(c.config), PolicyQuarantine)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			var out []byte
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if out, err = p.Run(context.Background(), in, out[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
