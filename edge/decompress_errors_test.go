package edge

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// reasonBody returns about n bytes of event-like JSON that needs no fixture.
func reasonBody(n int) []byte {
	var b []byte
	for i := 0; len(b) < n; i++ {
		b = append(b, `{"type":"camera_sample","sessionId":"s-`...)
		b = strconv.AppendInt(b, int64(i%97), 10)
		b = append(b, `","ts":`...)
		b = strconv.AppendInt(b, 1795892750000+int64(i)*37, 10)
		b = append(b, `,"position":[4.5,2.2,1.9],"direction":[-0.84,-0.41,-0.35]}`...)
	}
	return b[:n]
}

func zstdWith(t *testing.T, body []byte, opts ...zstd.EOption) []byte {
	t.Helper()
	w, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	return w.EncodeAll(body, nil)
}

func zstdStreamWith(t *testing.T, body []byte, opts ...zstd.EOption) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := zstd.NewWriter(&b, opts...)
	if err != nil {
		t.Fatal(err)
	}
	decompWrite(t, w, body)
	return b.Bytes()
}

// TestStreamErrorReasons checks that each kind of refused body is named in
// the reason a client gets: the format's rule or the collector's limit, not
// "corrupt or truncated" for all of them.
func TestStreamErrorReasons(t *testing.T) {
	body := reasonBody(300 << 10)
	gz := func(p []byte) []byte {
		var b bytes.Buffer
		decompWrite(t, gzip.NewWriter(&b), p)
		return b.Bytes()
	}
	zl := func(p []byte) []byte {
		var b bytes.Buffer
		decompWrite(t, zlib.NewWriter(&b), p)
		return b.Bytes()
	}
	br := func(p []byte) []byte {
		var b bytes.Buffer
		decompWrite(t, brotli.NewWriterLevel(&b, 5), p)
		return b.Bytes()
	}
	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		if i < 0 {
			i += len(b)
		}
		b[i] ^= 0x55
		return b
	}
	var zlibDict bytes.Buffer
	zw, err := zlib.NewWriterLevelDict(&zlibDict, 6, []byte(`"type":"camera_sample"`))
	if err != nil {
		t.Fatal(err)
	}
	decompWrite(t, zw, body)

	cases := []struct {
		name  string
		limit int
		enc   Encoding
		src   []byte
		want  []string
	}{
		{"zstd window over 8 MiB", 1 << 20, EncZstd, zstdStreamWith(t, body, zstd.WithWindowSize(16<<20)),
			[]string{"declares a 16 MiB window", "8 MiB limit", "RFC 9659", "windowLog ≤ 23"}},
		{"zstd window of 8 MiB and a bit", 1 << 20, EncZstd, zstdWindowHeader(0x6a, body),
			[]string{"declares a 10 MiB window", "8 MiB limit"}},
		{"zstd single segment over 8 MiB", 16 << 20, EncZstd,
			zstdWith(t, reasonBody(9<<20), zstd.WithSingleSegment(true)),
			[]string{"single segment of 9 MiB", "8 MiB limit"}},
		{"zstd dictionary", 1 << 20, EncZstd,
			zstdWith(t, body, zstd.WithEncoderDictRaw(42, []byte(`{"type":"camera_sample","sessionId":"`))),
			[]string{"needs a dictionary (id 42)", "compress without a dictionary"}},
		{"zstd checksum", 1 << 20, EncZstd, flip(zstdWith(t, body), -1), []string{"content checksum does not match"}},
		{"zstd trailing garbage", 1 << 20, EncZstd, append(zstdWith(t, body), "garbage!"...),
			[]string{"not another zstd frame"}},
		{"not zstd", 1 << 20, EncZstd, []byte(`{"events":[]}`), []string{"not zstd", "28 b5 2f fd"}},
		{"zstd truncated", 1 << 20, EncZstd, zstdWith(t, body)[:100], []string{"truncated"}},

		{"not gzip", 1 << 20, EncGzip, []byte(`{"events":[]}`), []string{"not gzip", "1f 8b 08"}},
		{"gzip trailing garbage", 1 << 20, EncGzip, append(gz(body), "garbage!!!!!"...),
			[]string{"not another gzip member"}},
		{"gzip checksum", 1 << 20, EncGzip, flip(gz(body), -6), []string{"CRC-32 or length does not match"}},
		{"gzip corrupt data", 1 << 20, EncGzip, []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xffgarbage"),
			[]string{"DEFLATE data is corrupt at offset"}},
		{"gzip truncated", 1 << 20, EncGzip, gz(body)[:200], []string{"truncated"}},

		{"zlib dictionary", 1 << 20, EncDeflate, zlibDict.Bytes(), []string{"preset dictionary", "compress without a dictionary"}},
		{"zlib checksum", 1 << 20, EncDeflate, flip(zl(body), -1), []string{"Adler-32 checksum does not match"}},
		{"deflate trailing", 1 << 20, EncDeflate, append(zl(body), 'x'), []string{"data after the end of the deflate stream"}},

		// The large-window marker (WBITS 0010001) in a stream's first bits.
		{"brotli large window", 1 << 20, EncBrotli, []byte{0x11, 0x19, 0x00, 0x00}, []string{"large-window extension", "lgwin ≤ 24"}},
		{"brotli trailing", 1 << 20, EncBrotli, append(br(body), "garbage"...), []string{"data after the end of the br stream"}},
		{"brotli truncated", 1 << 20, EncBrotli, br(body)[:100], []string{"truncated"}},

		{"empty zstd", 1 << 20, EncZstd, nil, []string{"empty body with Content-Encoding zstd"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := NewDecompressor(c.limit)
			got, err := d.Decompress(nil, c.src, c.enc)
			if !errors.Is(err, ErrCorrupt) || len(got) != 0 {
				t.Fatalf("got %d bytes, %v; want ErrCorrupt", len(got), err)
			}
			var se *StreamError
			if !errors.As(err, &se) || se.Enc != c.enc {
				t.Fatalf("%v is not a StreamError of %v", err, c.enc)
			}
			reason := StreamErrorReason(err)
			for _, w := range c.want {
				if !strings.Contains(reason, w) {
					t.Errorf("reason %q does not say %q", reason, w)
				}
			}
		})
	}
}

// zstdWindowHeader returns a zstd frame header with window descriptor wd
// (no content size, no checksum) followed by one raw block of p: the window
// the header declares is all that is wrong with it.
func zstdWindowHeader(wd byte, p []byte) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, wd}
	p = p[:min(len(p), 1000)]
	// Last_Block=1, Block_Type=Raw (0), Block_Size=len(p).
	hdr := uint32(len(p))<<3 | 1
	b = append(b, byte(hdr), byte(hdr>>8), byte(hdr>>16))
	return append(b, p...)
}

// A frame declaring more content than the body limit is refused for its
// size (413), from its header, like any body over the limit.
func TestZstdDeclaredContentOverLimit(t *testing.T) {
	d := NewDecompressor(1 << 20)
	src := zstdWith(t, reasonBody(9<<20), zstd.WithSingleSegment(true))
	if got, err := d.Decompress(nil, src, EncZstd); !errors.Is(err, ErrTooLarge) || len(got) != 0 {
		t.Fatalf("got %d bytes, %v; want ErrTooLarge", len(got), err)
	}
}

func TestZstdFirstFrame(t *testing.T) {
	body := reasonBody(5000)
	h, ok := zstdFirstFrame(zstdWith(t, body, zstd.WithSingleSegment(true)))
	if !ok || !h.single || h.content != 5000 || h.window != 5000 || h.dict != 0 {
		t.Fatalf("single segment: %+v %v", h, ok)
	}
	skip := []byte{0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'a', 'b', 'c'}
	h, ok = zstdFirstFrame(append(skip, zstdStreamWith(t, reasonBody(300<<10), zstd.WithWindowSize(4<<20))...))
	if !ok || h.single || h.window != 4<<20 {
		t.Fatalf("after a skippable frame, 4 MiB window: %+v %v", h, ok)
	}
	if h, ok = zstdFirstFrame(zstdWindowHeader(0x6a, body)); !ok || h.window != 10<<20 {
		t.Fatalf("window descriptor 0x6a: %+v %v, want 10 MiB", h, ok)
	}
	for _, bad := range [][]byte{nil, {0x28, 0xb5, 0x2f}, []byte("not zstd at all"), skip[:9]} {
		if _, ok := zstdFirstFrame(bad); ok {
			t.Fatalf("%q parsed as a frame", bad)
		}
	}
	if sizeText(zstdMaxWindow) != zstdWindowText {
		t.Fatalf("zstdWindowText %q, zstdMaxWindow is %s", zstdWindowText, sizeText(zstdMaxWindow))
	}
	for n, want := range map[uint64]string{1000: "1000 bytes", 300 << 10: "300 KiB", 16 << 20: "16 MiB", 3 << 19: "1.5 MiB (1572864 bytes)"} {
		if got := sizeText(n); got != want {
			t.Errorf("sizeText(%d) = %q, want %q", n, got, want)
		}
	}
}
