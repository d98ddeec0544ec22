package edge

import (
	"bytes"
	stdgzip "compress/gzip"
	stdzlib "compress/zlib"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// decompFixtureDir holds the shared sample batches, relative to this package.
const decompFixtureDir = "../testdata/fixtures"

type decompFixture struct {
	name string
	data []byte
}

// decompFixtures loads every sample batch, skipping the test when the shared
// directory is not checked out next to the repository.
func decompFixtures(tb testing.TB) []decompFixture {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join(decompFixtureDir, "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(paths) == 0 {
		tb.Fatalf("no fixtures in %s", decompFixtureDir)
	}
	slices.Sort(paths)
	out := make([]decompFixture, 0, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, decompFixture{name: strings.TrimSuffix(filepath.Base(p), ".json"), data: b})
	}
	return out
}

// decompFixture200 returns the first 200-event sample batch.
func decompFixture200(tb testing.TB) []byte {
	tb.Helper()
	for _, f := range decompFixtures(tb) {
		if strings.HasPrefix(f.name, "batch200_") {
			return f.data
		}
	}
	tb.Fatal("no 200-event fixture")
	return nil
}

// decompRace reports whether the test binary was built with -race. Under the
// race detector sync.Pool drops items at random, so allocation counts are
// not meaningful and compressors run many times slower.
var decompRace = func() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}()

// decompCodec compresses a body the way a client would send it.
type decompCodec struct {
	name     string
	enc      Encoding
	compress func(tb testing.TB, p []byte) []byte
}

func decompWrite(tb testing.TB, w io.WriteCloser, p []byte) {
	tb.Helper()
	if _, err := w.Write(p); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
}

func decompGzip(level int) func(testing.TB, []byte) []byte {
	return func(tb testing.TB, p []byte) []byte {
		var b bytes.Buffer
		w, err := gzip.NewWriterLevel(&b, level)
		if err != nil {
			tb.Fatal(err)
		}
		decompWrite(tb, w, p)
		return b.Bytes()
	}
}

func decompZlib(level int) func(testing.TB, []byte) []byte {
	return func(tb testing.TB, p []byte) []byte {
		var b bytes.Buffer
		w, err := zlib.NewWriterLevel(&b, level)
		if err != nil {
			tb.Fatal(err)
		}
		decompWrite(tb, w, p)
		return b.Bytes()
	}
}

func decompFlate(level int) func(testing.TB, []byte) []byte {
	return func(tb testing.TB, p []byte) []byte {
		var b bytes.Buffer
		w, err := flate.NewWriter(&b, level)
		if err != nil {
			tb.Fatal(err)
		}
		decompWrite(tb, w, p)
		return b.Bytes()
	}
}

// decompZstdStream compresses through the streaming writer, which does not
// know the content size up front (as a client compressing on the fly).
func decompZstdStream(level zstd.EncoderLevel) func(testing.TB, []byte) []byte {
	return func(tb testing.TB, p []byte) []byte {
		var b bytes.Buffer
		w, err := zstd.NewWriter(&b, zstd.WithEncoderLevel(level))
		if err != nil {
			tb.Fatal(err)
		}
		decompWrite(tb, w, p)
		return b.Bytes()
	}
}

// decompZstdAll compresses in one shot: the frame carries its content size.
func decompZstdAll(level zstd.EncoderLevel) func(testing.TB, []byte) []byte {
	return func(tb testing.TB, p []byte) []byte {
		w, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level))
		if err != nil {
			tb.Fatal(err)
		}
		defer w.Close()
		return w.EncodeAll(p, nil)
	}
}

func decompBrotli(quality, lgwin int) func(testing.TB, []byte) []byte {
	return func(tb testing.TB, p []byte) []byte {
		var b bytes.Buffer
		decompWrite(tb, brotli.NewWriterOptions(&b, brotli.WriterOptions{Quality: quality, LGWin: lgwin}), p)
		return b.Bytes()
	}
}

func decompStdGzip(tb testing.TB, p []byte) []byte {
	var b bytes.Buffer
	decompWrite(tb, stdgzip.NewWriter(&b), p)
	return b.Bytes()
}

func decompStdZlib(tb testing.TB, p []byte) []byte {
	var b bytes.Buffer
	decompWrite(tb, stdzlib.NewWriter(&b), p)
	return b.Bytes()
}

// decompCodecs is one representative client per encoding; deflate appears
// twice, zlib-wrapped (RFC 9110) and raw.
var decompCodecs = []decompCodec{
	{"identity", EncIdentity, func(_ testing.TB, p []byte) []byte { return p }},
	{"gzip", EncGzip, decompGzip(gzip.DefaultCompression)},
	{"deflate", EncDeflate, decompZlib(zlib.DefaultCompression)},
	{"deflate-raw", EncDeflate, decompFlate(flate.DefaultCompression)},
	{"zstd", EncZstd, decompZstdStream(zstd.SpeedDefault)},
	{"br", EncBrotli, decompBrotli(5, 0)},
}

// decompAllCodecs adds other levels and framings to decompCodecs.
var decompAllCodecs = append(slices.Clip(decompCodecs),
	decompCodec{"gzip-1", EncGzip, decompGzip(gzip.BestSpeed)},
	decompCodec{"gzip-9", EncGzip, decompGzip(gzip.BestCompression)},
	decompCodec{"gzip-stdlib", EncGzip, decompStdGzip},
	decompCodec{"deflate-1", EncDeflate, decompZlib(zlib.BestSpeed)},
	decompCodec{"deflate-9", EncDeflate, decompZlib(zlib.BestCompression)},
	decompCodec{"deflate-stdlib", EncDeflate, decompStdZlib},
	decompCodec{"deflate-raw-1", EncDeflate, decompFlate(flate.BestSpeed)},
	decompCodec{"deflate-raw-9", EncDeflate, decompFlate(flate.BestCompression)},
	decompCodec{"deflate-raw-stored", EncDeflate, decompFlate(flate.NoCompression)},
	decompCodec{"zstd-fastest", EncZstd, decompZstdStream(zstd.SpeedFastest)},
	decompCodec{"zstd-best", EncZstd, decompZstdStream(zstd.SpeedBestCompression)},
	decompCodec{"zstd-oneshot", EncZstd, decompZstdAll(zstd.SpeedDefault)},
	decompCodec{"br-1", EncBrotli, decompBrotli(1, 0)},
	decompCodec{"br-11", EncBrotli, decompBrotli(11, 22)},
	decompCodec{"br-lgwin24", EncBrotli, decompBrotli(5, 24)},
)

// decompBody returns n bytes of realistic JSON: the fixtures, repeated.
func decompBody(tb testing.TB, n int) []byte {
	tb.Helper()
	var src []byte
	for _, f := range decompFixtures(tb) {
		src = append(src, f.data...)
	}
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, src[:min(len(src), n-len(out))]...)
	}
	return out
}

func TestDecompressRoundTrip(t *testing.T) {
	fixtures := decompFixtures(t)
	d := NewDecompressor(1 << 20)
	var dst []byte
	for _, c := range decompAllCodecs {
		t.Run(c.name, func(t *testing.T) {
			for _, f := range fixtures {
				src := c.compress(t, f.data)
				if c.enc != EncIdentity && len(src) >= len(f.data)/3 && !strings.HasSuffix(c.name, "-stored") {
					t.Fatalf("%s: compressed to %d of %d bytes: not a realistic body", f.name, len(src), len(f.data))
				}
				got, err := d.Decompress(dst, src, c.enc)
				if err != nil {
					t.Fatalf("%s: %v", f.name, err)
				}
				if !bytes.Equal(got, f.data) {
					t.Fatalf("%s: decoded %d bytes, want the %d-byte fixture", f.name, len(got), len(f.data))
				}
				if c.enc == EncIdentity {
					if &got[0] != &src[0] {
						t.Fatalf("identity copied the body")
					}
				} else {
					dst = got // reuse, as a request handler would
				}
			}
		})
	}
}

func TestDecompressAppendsToDstStart(t *testing.T) {
	body := decompFixture200(t)
	d := NewDecompressor(1 << 20)
	for _, c := range decompCodecs[1:] {
		t.Run(c.name, func(t *testing.T) {
			src := c.compress(t, body)
			dst := make([]byte, 100, len(body)+100)
			for i := range dst {
				dst[i] = 'x'
			}
			got, err := d.Decompress(dst, src, c.enc)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, body) {
				t.Fatal("decoded body differs from the fixture")
			}
			if &got[0] != &dst[:1][0] {
				t.Fatal("dst had room for the body but was not reused")
			}
		})
	}
}

func TestDecompressMultiMemberAndFrames(t *testing.T) {
	fixtures := decompFixtures(t)
	a, b := fixtures[0].data, fixtures[1].data
	want := append(slices.Clip(a), b...)
	d := NewDecompressor(1 << 20)

	t.Run("gzip", func(t *testing.T) {
		src := append(decompGzip(6)(t, a), decompGzip(1)(t, b)...)
		got, err := d.Decompress(nil, src, EncGzip)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("got %d bytes, %v; want the two bodies concatenated", len(got), err)
		}
	})
	t.Run("zstd", func(t *testing.T) {
		src := append(decompZstdStream(zstd.SpeedDefault)(t, a), decompZstdAll(zstd.SpeedFastest)(t, b)...)
		got, err := d.Decompress(nil, src, EncZstd)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("got %d bytes, %v; want the two bodies concatenated", len(got), err)
		}
	})
	t.Run("zstd-skippable", func(t *testing.T) {
		// A skippable frame (magic 0x184D2A5?, little-endian size) is part of
		// the format and carries no content.
		skip := []byte{0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'a', 'b', 'c'}
		src := append(append(slices.Clip(skip), decompZstdAll(zstd.SpeedDefault)(t, a)...), skip...)
		got, err := d.Decompress(nil, src, EncZstd)
		if err != nil || !bytes.Equal(got, a) {
			t.Fatalf("got %d bytes, %v; want the body", len(got), err)
		}
	})
}

func TestDecompressTrailingData(t *testing.T) {
	body := decompFixtures(t)[3].data
	d := NewDecompressor(1 << 20)
	tails := map[string][]byte{
		"one byte":   {'x'},
		"newline":    {'\n'},
		"zeros":      make([]byte, 512),
		"three":      {1, 2, 3},
		"random":     bytes.Repeat([]byte{0xa5, 0x17, 0xc3}, 11),
		"json":       []byte(`{"events":[]}`),
		"gzip magic": {0x1f, 0x8b, 8, 0},
		"zstd magic": {0x28, 0xb5, 0x2f, 0xfd},
	}
	for _, c := range decompCodecs[1:] {
		src := c.compress(t, body)
		for name, tail := range tails {
			t.Run(c.name+"/"+name, func(t *testing.T) {
				in := append(slices.Clip(src), tail...)
				got, err := d.Decompress(nil, in, c.enc)
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("got %d bytes, err %v; want ErrCorrupt", len(got), err)
				}
				if len(got) != 0 {
					t.Fatalf("returned %d bytes with an error", len(got))
				}
			})
		}
	}
}

func TestDecompressLimitBoundary(t *testing.T) {
	for _, limit := range []int{1, 1000, 65537, 1 << 20} {
		d := NewDecompressor(limit)
		codecs := decompAllCodecs
		if limit > 1<<16 {
			codecs = decompCodecs // keep the slowest encoders to small bodies
		}
		for _, c := range codecs {
			t.Run(fmt.Sprintf("%d/%s", limit, c.name), func(t *testing.T) {
				for _, n := range []int{0, limit - 1, limit, limit + 1, 2*limit + 100} {
					if n < 0 || (n == 0 && c.enc != EncIdentity) {
						continue // an empty compressed body is refused, see TestDecompressEmpty
					}
					body := decompBody(t, n)
					src := c.compress(t, body)
					got, err := d.Decompress(nil, src, c.enc)
					if n <= limit {
						if err != nil || !bytes.Equal(got, body) {
							t.Fatalf("n=%d: got %d bytes, %v; want the body", n, len(got), err)
						}
						continue
					}
					if !errors.Is(err, ErrTooLarge) {
						t.Fatalf("n=%d: got %d bytes, %v; want ErrTooLarge", n, len(got), err)
					}
					if len(got) != 0 {
						t.Fatalf("n=%d: returned %d bytes with ErrTooLarge", n, len(got))
					}
				}
			})
		}
	}
}

func TestDecompressEmpty(t *testing.T) {
	d := NewDecompressor(1 << 20)
	for _, c := range decompCodecs {
		got, err := d.Decompress(nil, nil, c.enc)
		if c.enc == EncIdentity {
			if err != nil || len(got) != 0 {
				t.Fatalf("identity: got %q, %v", got, err)
			}
			continue
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: empty body: got %q, %v; want ErrCorrupt", c.name, got, err)
		}
	}
	// A compressed empty body is fine: it decodes to nothing.
	for _, c := range decompCodecs[1:] {
		got, err := d.Decompress(nil, c.compress(t, nil), c.enc)
		if err != nil || len(got) != 0 {
			t.Fatalf("%s: compressed empty body: got %q, %v", c.name, got, err)
		}
	}
}

func TestDecompressUnknownEncoding(t *testing.T) {
	d := NewDecompressor(1 << 20)
	for _, enc := range []Encoding{numEncodings, 200} {
		_, err := d.Decompress(nil, []byte("{}"), enc)
		if !errors.Is(err, errors.ErrUnsupported) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTooLarge) {
			t.Fatalf("Encoding(%d): %v", enc, err)
		}
	}
}

func TestNewDecompressorRejectsBadLimit(t *testing.T) {
	for _, limit := range []int{0, -1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewDecompressor(%d) did not panic", limit)
				}
			}()
			NewDecompressor(limit)
		}()
	}
	if got := NewDecompressor(12345).Limit(); got != 12345 {
		t.Fatalf("Limit() = %d", got)
	}
}

func TestDecompressTruncated(t *testing.T) {
	body := decompFixtures(t)[0].data
	d := NewDecompressor(1 << 20)
	for _, c := range decompAllCodecs {
		if c.enc == EncIdentity {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			src := c.compress(t, body)
			// Every cut in the first and last 64 bytes (headers, trailers,
			// final block) and about 200 cuts in between.
			step := max(1, len(src)/200)
			for n := 0; n < len(src); n++ {
				if n > 64 && n < len(src)-64 && n%step != 0 {
					continue
				}
				got, err := d.Decompress(nil, src[:n], c.enc)
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("cut at %d of %d: got %d bytes, %v; want ErrCorrupt", n, len(src), len(got), err)
				}
			}
		})
	}
}

// TestDecompressBitFlips flips single bits of compressed bodies. Nothing may
// panic or escape the two error kinds, and formats with an integrity check
// (gzip CRC-32, zlib Adler-32, zstd content checksum) never hand back a
// different body without an error.
func TestDecompressBitFlips(t *testing.T) {
	body := decompFixtures(t)[4].data
	d := NewDecompressor(1 << 20)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range decompCodecs[1:] {
		checked := c.name != "deflate-raw" && c.enc != EncBrotli
		t.Run(c.name, func(t *testing.T) {
			src := c.compress(t, body)
			in := make([]byte, len(src))
			corrupt := 0
			for i := range 2000 {
				copy(in, src)
				pos := i // every bit of the first bytes, then random ones
				if i >= 8*32 {
					pos = rng.IntN(8 * len(src))
				}
				in[pos/8] ^= 1 << (pos % 8)
				got, err := d.Decompress(nil, in, c.enc)
				switch {
				case err == nil:
					if checked && !bytes.Equal(got, body) {
						t.Fatalf("bit %d flipped: a different body was accepted", pos)
					}
				case errors.Is(err, ErrCorrupt):
					corrupt++
				case errors.Is(err, ErrTooLarge):
				default:
					t.Fatalf("bit %d flipped: unexpected error %v", pos, err)
				}
				if len(got) > d.Limit() {
					t.Fatalf("bit %d flipped: %d bytes returned", pos, len(got))
				}
			}
			t.Logf("%d of 2000 damaged bodies reported corrupt", corrupt)
			// Without a checksum, flips inside literals go unnoticed; with
			// one, only flips in fields outside it (gzip MTIME/XFL/OS, zstd
			// window descriptor) may pass.
			if want := map[bool]int{true: 1800, false: 500}[checked]; corrupt < want {
				t.Fatalf("only %d of 2000 damaged bodies were reported corrupt; want at least %d", corrupt, want)
			}
		})
	}
}

func TestDecompressZlibPresetDictionary(t *testing.T) {
	body := decompFixtures(t)[3].data
	var b bytes.Buffer
	w, err := zlib.NewWriterLevelDict(&b, 6, []byte(`"type":"camera_sample"`))
	if err != nil {
		t.Fatal(err)
	}
	decompWrite(t, w, body)
	d := NewDecompressor(1 << 20)
	for range 2 { // the second call finds no pooled zlib reader either
		if _, err := d.Decompress(nil, b.Bytes(), EncDeflate); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("preset dictionary: %v; want ErrCorrupt", err)
		}
	}
	// The state is still usable afterwards.
	if got, err := d.Decompress(nil, decompZlib(6)(t, body), EncDeflate); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("after a dictionary stream: %d bytes, %v", len(got), err)
	}
}

func TestDecompressZstdWindowLimit(t *testing.T) {
	body := decompBody(t, 300<<10)
	d := NewDecompressor(1 << 20)
	for _, window := range []int{zstdMaxWindow, 2 * zstdMaxWindow} {
		var b bytes.Buffer
		w, err := zstd.NewWriter(&b, zstd.WithWindowSize(window))
		if err != nil {
			t.Fatal(err)
		}
		decompWrite(t, w, body)
		got, err := d.Decompress(nil, b.Bytes(), EncZstd)
		if window <= zstdMaxWindow {
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("window %d: %d bytes, %v", window, len(got), err)
			}
			continue
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("window %d: %d bytes, %v; want ErrCorrupt", window, len(got), err)
		}
	}
}

func TestIsZlibHeader(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want bool
	}{
		{[]byte{0x78, 0x01}, true},
		{[]byte{0x78, 0x5e}, true},
		{[]byte{0x78, 0x9c}, true},
		{[]byte{0x78, 0xda}, true},
		{[]byte{0x08, 0x1d}, true},
		{[]byte{0x78, 0x9d}, false}, // check bits wrong
		{[]byte{0x79, 0x18}, false}, // check bits right, CM is not 8
		{[]byte{0x78}, false},
		{nil, false},
	} {
		if got := isZlibHeader(tc.in); got != tc.want {
			t.Errorf("isZlibHeader(% x) = %v", tc.in, got)
		}
	}
	// Raw DEFLATE from an encoder never looks like zlib: the first byte's low
	// nibble holds BFINAL, BTYPE and a zero padding bit (stored) or code bits
	// that make BTYPE non-zero.
	rng := rand.New(rand.NewPCG(3, 4))
	for _, level := range []int{flate.NoCompression, flate.HuffmanOnly, 1, 5, 9} {
		for _, n := range []int{1, 100, 5000, 100000} {
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(rng.IntN(4)) + 'a'
			}
			if raw := decompFlate(level)(t, p); isZlibHeader(raw) {
				t.Fatalf("level %d, %d bytes: raw stream % x sniffed as zlib", level, n, raw[:2])
			}
		}
	}
}

func TestParseEncoding(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Encoding
		ok   bool
	}{
		{"", EncIdentity, true},
		{"   ", EncIdentity, true},
		{"identity", EncIdentity, true},
		{"IDENTITY", EncIdentity, true},
		{"gzip", EncGzip, true},
		{"GZIP", EncGzip, true},
		{"GZip", EncGzip, true},
		{"x-gzip", EncGzip, true},
		{"X-GZIP", EncGzip, true},
		{" gzip\t", EncGzip, true},
		{"deflate", EncDeflate, true},
		{"Deflate", EncDeflate, true},
		{"zstd", EncZstd, true},
		{"ZSTD ", EncZstd, true},
		{"br", EncBrotli, true},
		{" br ", EncBrotli, true},
		{"BR", EncBrotli, true},
		{"compress", 0, false},
		{"x-compress", 0, false},
		{"gzip, br", 0, false},
		{"gzip,br", 0, false},
		{"br, identity", 0, false},
		{"gzip;q=1", 0, false},
		{"brotli", 0, false},
		{"zst", 0, false},
		{"g zip", 0, false},
		{"deflate-raw", 0, false},
		{"*", 0, false},
		{"gzip\x00", 0, false},
		{"z\u017ftd", 0, false}, // U+017F folds to 's' in Unicode, not here
	} {
		got, ok := ParseEncoding([]byte(tc.in))
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("ParseEncoding(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	if n := testing.AllocsPerRun(100, func() { ParseEncoding([]byte(" GZIP ")) }); n != 0 {
		t.Errorf("ParseEncoding allocates %.0f times", n)
	}
}

func TestEncodingString(t *testing.T) {
	want := map[Encoding]string{
		EncIdentity: "identity", EncGzip: "gzip", EncDeflate: "deflate",
		EncZstd: "zstd", EncBrotli: "br", numEncodings: "unknown",
	}
	for e, s := range want {
		if e.String() != s {
			t.Errorf("Encoding(%d).String() = %q; want %q", e, e.String(), s)
		}
		if e < numEncodings {
			if got, ok := ParseEncoding([]byte(s)); !ok || got != e {
				t.Errorf("ParseEncoding(%q) = %v, %v", s, got, ok)
			}
		}
	}
}

// decompBombSize is what each bomb expands to. The race detector slows the
// compressors down twenty-fold, so bombs are smaller there; either way they
// are hundreds of times the limit used against them.
func decompBombSize() int64 {
	if decompRace || testing.Short() {
		return 128 << 20
	}
	return 1 << 30
}

type decompBomb struct {
	name string
	enc  Encoding
	new  func(io.Writer) io.WriteCloser
	// extra is allowed allocation beyond 16 MiB. A brotli stream declares
	// its window (up to 16 MiB) and the decoder's ring buffer doubles its way
	// up to that size, decoding ahead of the reader meanwhile, so a 16 MiB
	// window costs about 32 MiB of allocations (24 MiB at most live).
	extra uint64
}

var decompBombs = []decompBomb{
	{"gzip", EncGzip, func(w io.Writer) io.WriteCloser { z, _ := gzip.NewWriterLevel(w, gzip.BestSpeed); return z }, 0},
	{"deflate", EncDeflate, func(w io.Writer) io.WriteCloser { z, _ := zlib.NewWriterLevel(w, zlib.BestSpeed); return z }, 0},
	{"deflate-raw", EncDeflate, func(w io.Writer) io.WriteCloser { z, _ := flate.NewWriter(w, flate.BestSpeed); return z }, 0},
	{"zstd", EncZstd, func(w io.Writer) io.WriteCloser {
		z, _ := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(zstdMaxWindow))
		return z
	}, 0},
	{"br", EncBrotli, func(w io.Writer) io.WriteCloser {
		return brotli.NewWriterOptions(w, brotli.WriterOptions{Quality: 1})
	}, 0},
	{"br-lgwin24", EncBrotli, func(w io.Writer) io.WriteCloser {
		return brotli.NewWriterOptions(w, brotli.WriterOptions{Quality: 1, LGWin: 24})
	}, 32 << 20},
}

var (
	decompBombOnce  sync.Once
	decompBombBytes map[string][]byte
)

// decompBombInputs compresses decompBombSize() zero bytes with each bomb's
// encoder, once per test binary.
func decompBombInputs(tb testing.TB) map[string][]byte {
	decompBombOnce.Do(func() {
		zeros := make([]byte, 1<<20)
		decompBombBytes = make(map[string][]byte)
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, b := range decompBombs {
			wg.Go(func() {
				var buf bytes.Buffer
				w := b.new(&buf)
				for range decompBombSize() >> 20 {
					if _, err := w.Write(zeros); err != nil {
						panic(err)
					}
				}
				if err := w.Close(); err != nil {
					panic(err)
				}
				mu.Lock()
				decompBombBytes[b.name] = buf.Bytes()
				mu.Unlock()
			})
		}
		wg.Wait()
	})
	return decompBombBytes
}

func TestDecompressBomb(t *testing.T) {
	const limit = 1 << 20
	inputs := decompBombInputs(t)
	for _, b := range decompBombs {
		t.Run(b.name, func(t *testing.T) {
			src := inputs[b.name]
			t.Logf("%d compressed bytes expand to %d", len(src), decompBombSize())
			// A fresh Decompressor: its pools are empty, so the codec state
			// is built inside the measured call and counts against it.
			d := NewDecompressor(limit)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			got, err := d.Decompress(nil, src, b.enc)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("got %d bytes, %v; want ErrTooLarge", len(got), err)
			}
			if len(got) != 0 {
				t.Fatalf("returned %d bytes with ErrTooLarge", len(got))
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			bound := 16<<20 + b.extra
			t.Logf("allocated %.1f MiB while decoding", float64(alloc)/(1<<20))
			if alloc > bound {
				t.Fatalf("allocated %d bytes stopping a bomb; bound %d", alloc, bound)
			}
		})
	}
}

// TestDecompressBombAfterWarmup runs a bomb through a Decompressor whose
// pools already hold state, then checks that ordinary bodies still decode.
func TestDecompressBombAfterWarmup(t *testing.T) {
	inputs := decompBombInputs(t)
	body := decompFixture200(t)
	d := NewDecompressor(1 << 20)
	for _, b := range decompBombs {
		t.Run(b.name, func(t *testing.T) {
			var c decompCodec
			for _, c = range decompCodecs {
				if c.enc == b.enc {
					break
				}
			}
			good := c.compress(t, body)
			for range 3 {
				if got, err := d.Decompress(nil, good, b.enc); err != nil || !bytes.Equal(got, body) {
					t.Fatalf("before the bomb: %d bytes, %v", len(got), err)
				}
				if _, err := d.Decompress(nil, inputs[b.name], b.enc); !errors.Is(err, ErrTooLarge) {
					t.Fatalf("bomb: %v", err)
				}
				if got, err := d.Decompress(nil, good, b.enc); err != nil || !bytes.Equal(got, body) {
					t.Fatalf("after the bomb: %d bytes, %v", len(got), err)
				}
			}
		})
	}
}

func TestDecompressIdentityLimit(t *testing.T) {
	d := NewDecompressor(10)
	src := []byte("0123456789")
	got, err := d.Decompress(nil, src, EncIdentity)
	if err != nil || &got[0] != &src[0] || len(got) != 10 {
		t.Fatalf("at the limit: %q, %v", got, err)
	}
	dst := make([]byte, 5, 20)
	got, err = d.Decompress(dst, append(src, 'x'), EncIdentity)
	if !errors.Is(err, ErrTooLarge) || len(got) != 0 || cap(got) != 20 {
		t.Fatalf("over the limit: %q (cap %d), %v", got, cap(got), err)
	}
}

// TestDecompressConcurrent decodes every encoding from many goroutines at
// once through one Decompressor (run it with -race).
func TestDecompressConcurrent(t *testing.T) {
	fixtures := decompFixtures(t)
	d := NewDecompressor(1 << 20)
	type job struct {
		src  []byte
		enc  Encoding
		want []byte
	}
	var jobs []job
	for _, c := range decompAllCodecs {
		for _, f := range fixtures {
			jobs = append(jobs, job{c.compress(t, f.data), c.enc, f.data})
		}
	}
	// Corrupt and oversized bodies go through the same pools.
	bad := decompCodecs[2].compress(t, fixtures[0].data)
	bad = bad[:len(bad)/2]
	big := decompCodecs[4].compress(t, decompBody(t, 1<<20+1))

	workers := 4 * runtime.GOMAXPROCS(0)
	rounds := 30
	if decompRace {
		rounds = 8
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			var dst []byte
			for range rounds * len(jobs) / workers {
				switch r := rng.IntN(20); r {
				case 0:
					if _, err := d.Decompress(dst, bad, EncDeflate); !errors.Is(err, ErrCorrupt) {
						errs <- fmt.Errorf("truncated body: %v", err)
						return
					}
				case 1:
					if _, err := d.Decompress(dst, big, EncZstd); !errors.Is(err, ErrTooLarge) {
						errs <- fmt.Errorf("oversized body: %v", err)
						return
					}
				default:
					j := jobs[rng.IntN(len(jobs))]
					got, err := d.Decompress(dst, j.src, j.enc)
					if err != nil || !bytes.Equal(got, j.want) {
						errs <- fmt.Errorf("%s: %d bytes, %v", j.enc, len(got), err)
						return
					}
					if j.enc != EncIdentity {
						dst = got
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestDecompressSteadyStateAllocs checks that, with state pooled and a dst
// large enough, decoding allocates next to nothing. One allocation is allowed
// for a garbage collection emptying the pool mid-run; the brotli decoder
// also allocates its context maps for every meta-block.
func TestDecompressSteadyStateAllocs(t *testing.T) {
	if decompRace {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	body := decompFixture200(t)
	d := NewDecompressor(1 << 20)
	dst := make([]byte, 0, len(body)+1)
	for _, c := range decompCodecs {
		t.Run(c.name, func(t *testing.T) {
			src := c.compress(t, body)
			// Warm the pool.
			if _, err := d.Decompress(dst, src, c.enc); err != nil {
				t.Fatal(err)
			}
			allocs := testing.AllocsPerRun(50, func() {
				if _, err := d.Decompress(dst, src, c.enc); err != nil {
					t.Fatal(err)
				}
			})
			t.Logf("%.1f allocations per call", allocs)
			want := 1.0
			if c.enc == EncBrotli {
				want = 4
			}
			if allocs > want {
				t.Fatalf("%.1f allocations per call; want at most %.0f", allocs, want)
			}
		})
	}
}
