package load

import (
	"bytes"
	"fmt"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Body is one request body, encoded once before a run and sent many times.
type Body struct {
	Data     []byte // bytes on the wire, already compressed
	Raw      int    // size after decompression
	Events   int    // events in the batch
	Encoding string // "identity", "gzip", "zstd" or "br"
}

// Encodings lists the Content-Encoding values Encode produces.
var Encodings = []string{"identity", "gzip", "zstd", "br"}

// BrotliLevel is the quality (0–11) Encode uses for "br": a middle setting,
// far faster to produce than the maximum at a small cost in ratio.
const BrotliLevel = 5

// Encode compresses raw, a JSON batch holding events events, with encoding:
// "identity" (a copy), "gzip" (default level), "zstd" (SpeedDefault) or "br"
// (BrotliLevel). The empty string means identity.
func Encode(raw []byte, encoding string, events int) (Body, error) {
	b := Body{Raw: len(raw), Events: events, Encoding: encoding}
	switch encoding {
	case "", "identity":
		b.Encoding = "identity"
		b.Data = bytes.Clone(raw)
		if b.Data == nil {
			b.Data = []byte{}
		}
	case "gzip":
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(raw); err != nil {
			return Body{}, err
		}
		if err := w.Close(); err != nil {
			return Body{}, err
		}
		b.Data = buf.Bytes()
	case "zstd":
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return Body{}, err
		}
		b.Data = enc.EncodeAll(raw, nil)
		if err := enc.Close(); err != nil {
			return Body{}, err
		}
	case "br":
		var buf bytes.Buffer
		w := brotli.NewWriterLevel(&buf, BrotliLevel)
		if _, err := w.Write(raw); err != nil {
			return Body{}, err
		}
		if err := w.Close(); err != nil {
			return Body{}, err
		}
		b.Data = buf.Bytes()
	default:
		return Body{}, fmt.Errorf("load: unknown encoding %q (want identity, gzip, zstd or br)", encoding)
	}
	return b, nil
}
