package edge

import "testing"

// BenchmarkDecompress decodes the 200-event sample batch in each encoding,
// reusing dst as a request handler would. Throughput is in decoded bytes.
func BenchmarkDecompress(b *testing.B) {
	body := decompFixture200(b)
	for _, c := range decompCodecs {
		b.Run(c.name, func(b *testing.B) {
			src := c.compress(b, body)
			d := NewDecompressor(1 << 20)
			var dst []byte
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				out, err := d.Decompress(dst, src, c.enc)
				if err != nil {
					b.Fatal(err)
				}
				if c.enc != EncIdentity {
					dst = out
				}
			}
			b.ReportMetric(float64(len(src)), "wire-B")
		})
	}
}

// BenchmarkDecompressParallel is BenchmarkDecompress from every P at once,
// sharing one Decompressor and so its pools.
func BenchmarkDecompressParallel(b *testing.B) {
	body := decompFixture200(b)
	for _, c := range decompCodecs {
		b.Run(c.name, func(b *testing.B) {
			src := c.compress(b, body)
			d := NewDecompressor(1 << 20)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var dst []byte
				for pb.Next() {
					out, err := d.Decompress(dst, src, c.enc)
					if err != nil {
						b.Error(err)
						return
					}
					if c.enc != EncIdentity {
						dst = out
					}
				}
			})
		})
	}
}
