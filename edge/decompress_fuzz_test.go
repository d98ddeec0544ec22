package edge

import (
	"bytes"
	stdflate "compress/flate"
	stdgzip "compress/gzip"
	stdzlib "compress/zlib"
	"errors"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// decompFuzzLimit keeps each fuzz input cheap while still above the size of
// the sample batches used as seeds.
const decompFuzzLimit = 256 << 10

// FuzzDecompress feeds arbitrary bytes to every decoder. Properties: no
// panic; never more than the limit returned; errors are ErrTooLarge or
// ErrCorrupt and come with an empty result; decoding the same input again
// through pooled (reused) state gives the same outcome; and a body accepted
// as gzip or deflate decodes identically with the standard library, a body
// accepted as zstd identically with the one-shot decoder.
func FuzzDecompress(f *testing.F) {
	for _, fx := range decompFixtures(f) {
		if !bytes.HasPrefix([]byte(fx.name), []byte("batch50_")) && fx.name != "batch200_00" {
			continue
		}
		for _, c := range decompCodecs {
			f.Add(c.compress(f, fx.data), uint8(c.enc))
		}
	}
	for e := range uint8(numEncodings) {
		f.Add([]byte{}, e)
		f.Add([]byte(`{"schemaVersion":"1.0","events":[]}`), e)
	}

	d := NewDecompressor(decompFuzzLimit)
	ref, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(zstdMaxWindow),
		zstd.WithDecoderMaxMemory(decompFuzzLimit+1))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(ref.Close)

	f.Fuzz(func(t *testing.T, data []byte, e uint8) {
		enc := Encoding(e % uint8(numEncodings))
		out, err := d.Decompress(nil, data, enc)
		if len(out) > decompFuzzLimit {
			t.Fatalf("%s: %d bytes returned, limit %d", enc, len(out), decompFuzzLimit)
		}
		if err != nil {
			if !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: unexpected error kind: %v", enc, err)
			}
			if len(out) != 0 {
				t.Fatalf("%s: %d bytes returned with %v", enc, len(out), err)
			}
		}

		// Same input again, through whatever state the pools now hold and
		// into a dirty, reused dst.
		dst := append(make([]byte, 0, 64), "stale"...)
		again, err2 := d.Decompress(dst, data, enc)
		if errors.Is(err, ErrTooLarge) != errors.Is(err2, ErrTooLarge) ||
			errors.Is(err, ErrCorrupt) != errors.Is(err2, ErrCorrupt) || !bytes.Equal(out, again) {
			t.Fatalf("%s: second decode differs: %d bytes, %v then %d bytes, %v", enc, len(out), err, len(again), err2)
		}
		if err != nil {
			return
		}

		var want []byte
		var refErr error
		switch enc {
		case EncIdentity:
			if len(data) > 0 && &out[0] != &data[0] {
				t.Fatal("identity copied the body")
			}
			return
		case EncGzip:
			var zr *stdgzip.Reader
			if zr, refErr = stdgzip.NewReader(bytes.NewReader(data)); refErr == nil {
				want, refErr = io.ReadAll(io.LimitReader(zr, decompFuzzLimit+1))
			}
		case EncDeflate:
			var r io.Reader
			if isZlibHeader(data) {
				r, refErr = stdzlib.NewReader(bytes.NewReader(data))
			} else {
				r = stdflate.NewReader(bytes.NewReader(data))
			}
			if refErr == nil {
				want, refErr = io.ReadAll(io.LimitReader(r, decompFuzzLimit+1))
			}
		case EncZstd:
			want, refErr = ref.DecodeAll(data, nil)
		default:
			return
		}
		if refErr != nil || !bytes.Equal(out, want) {
			t.Fatalf("%s: accepted %d bytes; reference decoder gives %d bytes, %v", enc, len(out), len(want), refErr)
		}
	})
}
