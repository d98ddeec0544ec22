package edge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// Encoding is a request body's Content-Encoding.
type Encoding uint8

// Supported content encodings.
const (
	EncIdentity Encoding = iota
	EncGzip
	EncDeflate
	EncZstd
	EncBrotli
	numEncodings
)

var encodingNames = [numEncodings]string{
	EncIdentity: "identity",
	EncGzip:     "gzip",
	EncDeflate:  "deflate",
	EncZstd:     "zstd",
	EncBrotli:   "br",
}

// String returns the encoding's Content-Encoding token ("identity", "gzip",
// "deflate", "zstd", "br"); it is stable and meant for metric labels.
func (e Encoding) String() string {
	if e < numEncodings {
		return encodingNames[e]
	}
	return "unknown"
}

// ParseEncoding maps a Content-Encoding header value to an Encoding. Matching
// is case-insensitive and ignores surrounding spaces and tabs; an empty value
// is identity and "x-gzip" is gzip. Anything else, including a list of stacked
// encodings such as "gzip, br", reports ok=false (the caller answers 415).
func ParseEncoding(h []byte) (Encoding, bool) {
	for len(h) > 0 && (h[0] == ' ' || h[0] == '\t') {
		h = h[1:]
	}
	for len(h) > 0 && (h[len(h)-1] == ' ' || h[len(h)-1] == '\t') {
		h = h[:len(h)-1]
	}
	switch {
	case len(h) == 0, asciiEqualFold(h, "identity"):
		return EncIdentity, true
	case asciiEqualFold(h, "gzip"), asciiEqualFold(h, "x-gzip"):
		return EncGzip, true
	case asciiEqualFold(h, "deflate"):
		return EncDeflate, true
	case asciiEqualFold(h, "zstd"):
		return EncZstd, true
	case asciiEqualFold(h, "br"):
		return EncBrotli, true
	}
	return EncIdentity, false
}

// asciiEqualFold reports whether b equals the lower-case ASCII string s,
// ignoring ASCII case in b. It does not allocate.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

var (
	// ErrTooLarge reports that a body's decoded size exceeds the
	// decompressed-size limit (the caller answers 413).
	ErrTooLarge = errors.New("edge: decompressed body exceeds the size limit")
	// ErrCorrupt reports an empty, truncated or invalid compressed stream, or
	// bytes after its end (the caller answers 400). The codec's own error is
	// wrapped alongside it.
	ErrCorrupt = errors.New("edge: corrupt compressed body")

	errEmptyBody    = errors.New("empty body")
	errTrailingData = errors.New("data after the end of the compressed stream")
)

// zstdMaxWindow bounds the history a zstd frame may ask the decoder to keep:
// 8 MiB, the limit RFC 9659 sets for the "zstd" content coding (encoders
// must not need more, decoders need not support more). Frames declaring a
// larger window are refused (a StreamError naming the window).
const zstdMaxWindow = 8 << 20

// StreamError is a compressed body the Decompressor refuses: Reason tells
// the client what is wrong with it, in words that name the format's rule or
// the collector's limit it breaks ("the zstd frame declares a 16 MiB window,
// over the 8 MiB limit …"). It wraps ErrCorrupt and the codec's own error.
type StreamError struct {
	Enc    Encoding
	Reason string
	Err    error // the codec's error; may be nil
}

func (e *StreamError) Error() string {
	return ErrCorrupt.Error() + ": " + e.Enc.String() + ": " + e.Reason
}

// Unwrap returns ErrCorrupt and the codec's error.
func (e *StreamError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrCorrupt}
	}
	return []error{ErrCorrupt, e.Err}
}

// StreamErrorReason returns what to tell a client about a body Decompress
// refused with an error wrapping ErrCorrupt: the StreamError's reason, or a
// generic one.
func StreamErrorReason(err error) string {
	var se *StreamError
	if errors.As(err, &se) {
		return se.Reason
	}
	return "the stream is corrupt or truncated"
}

// Decompressor decodes request bodies under a fixed decompressed-size limit,
// reusing codec state between calls. It is safe for concurrent use.
//
// Memory per in-flight call is bounded by the output (at most limit+1 bytes,
// plus growth slack when dst is too small) and the codec's window, whatever
// the stream claims: 32 KiB for gzip and deflate, at most 8 MiB for zstd
// (larger windows are refused), at most 16 MiB for brotli, the format's
// largest window. The brotli decoder reaches its window by doubling a ring
// buffer, so a stream declaring 16 MiB allocates about 32 MiB in all; small
// bodies only pay for what they hold. After a failed zstd or brotli call the
// codec state is dropped rather than pooled, so window-sized buffers chosen
// by a hostile stream are not retained.
type Decompressor struct {
	limit int

	gzipPool    sync.Pool // *gzipState
	deflatePool sync.Pool // *deflateState
	zstdPool    sync.Pool // *zstdState
	brotliPool  sync.Pool // *brotliState
}

// NewDecompressor returns a Decompressor that refuses bodies whose decoded
// size exceeds limit bytes. It panics unless 0 < limit < math.MaxInt.
func NewDecompressor(limit int) *Decompressor {
	if limit < 1 || limit == math.MaxInt {
		panic(fmt.Sprintf("edge: invalid decompressed-size limit %d", limit))
	}
	return &Decompressor{limit: limit}
}

// Limit returns the decompressed-size limit in bytes.
func (d *Decompressor) Limit() int { return d.limit }

// Decompress decodes src, encoded as enc, appending the result to dst[:0],
// and returns it.
//
// For EncIdentity nothing is copied: the result is src itself (it aliases
// src, not dst) once len(src) is known to be within the limit.
//
// Decoding stops as soon as the output would exceed the limit: at most
// limit+1 bytes are ever produced, whatever sizes the stream declares, and
// ErrTooLarge is returned; so it is when a zstd frame declares a content size
// over the limit. An empty, truncated or otherwise invalid stream, a stream
// followed by extra bytes, a stream that needs a preset dictionary, or one
// whose window exceeds what is decoded here (8 MiB for zstd, brotli's
// large-window extension) yields a *StreamError, which wraps ErrCorrupt and
// says which of these it is. Concatenated gzip members and
// zstd frames are decoded as one body. "deflate" accepts the zlib format of
// RFC 9110 and, when the body does not start with a zlib header, raw DEFLATE.
//
// dst must not overlap src. On error the returned slice has length 0 and may
// be reused as dst.
func (d *Decompressor) Decompress(dst, src []byte, enc Encoding) ([]byte, error) {
	switch enc {
	case EncIdentity:
		if len(src) > d.limit {
			return dst[:0], ErrTooLarge
		}
		return src, nil
	case EncGzip, EncDeflate, EncZstd, EncBrotli:
	default:
		return dst[:0], fmt.Errorf("edge: content encoding %d: %w", enc, errors.ErrUnsupported)
	}
	if len(src) == 0 {
		return dst[:0], &StreamError{Enc: enc, Reason: "empty body with Content-Encoding " + enc.String() + ": send the compressed stream, or no Content-Encoding", Err: errEmptyBody}
	}
	var out []byte
	var err error
	switch enc {
	case EncGzip:
		out, err = d.gunzip(dst, src)
	case EncDeflate:
		out, err = d.inflate(dst, src)
	case EncZstd:
		out, err = d.unzstd(dst, src)
	default:
		out, err = d.unbrotli(dst, src)
	}
	if err != nil {
		if err != ErrTooLarge {
			err = d.streamError(enc, src, err)
		}
		return out[:0], err
	}
	return out, nil
}

type gzipState struct {
	in bytes.Reader
	zr gzip.Reader
}

func (d *Decompressor) gunzip(dst, src []byte) ([]byte, error) {
	s, _ := d.gzipPool.Get().(*gzipState)
	if s == nil {
		s = new(gzipState)
	}
	s.in.Reset(src)
	// Reset reads the first member's header; later members are read by the
	// reader itself (multistream is on by default).
	err := s.zr.Reset(&s.in)
	if err == nil {
		dst, err = d.readAll(dst, &s.zr, &s.in)
	} else {
		err = firstHeaderError{err}
	}
	s.in.Reset(nil)
	d.gzipPool.Put(s)
	return dst, err
}

// firstHeaderError is an error reading the header of a body's first gzip
// member, as opposed to a later member's (which means trailing data).
type firstHeaderError struct{ err error }

func (e firstHeaderError) Error() string { return e.err.Error() }
func (e firstHeaderError) Unwrap() error { return e.err }

type deflateState struct {
	in bytes.Reader
	zr io.ReadCloser // zlib reader, created on first use
	fr io.ReadCloser // raw DEFLATE reader, created on first use
}

// isZlibHeader reports whether b starts with an RFC 1950 header: CM=8
// (deflate) and a check value making CMF<<8|FLG a multiple of 31. A raw
// DEFLATE stream from a real encoder never matches, since that would need a
// stored block with non-zero padding bits.
func isZlibHeader(b []byte) bool {
	return len(b) >= 2 && b[0]&0x0f == 8 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0
}

func (d *Decompressor) inflate(dst, src []byte) ([]byte, error) {
	s, _ := d.deflatePool.Get().(*deflateState)
	if s == nil {
		s = new(deflateState)
	}
	s.in.Reset(src)
	var r io.Reader
	var err error
	if isZlibHeader(src) {
		if s.zr == nil {
			// NewReader fails (and returns nil) on a bad header or a preset
			// dictionary; the next call simply tries again.
			s.zr, err = zlib.NewReader(&s.in)
		} else {
			err = s.zr.(zlib.Resetter).Reset(&s.in, nil)
		}
		r = s.zr
	} else {
		if s.fr == nil {
			s.fr = flate.NewReader(&s.in)
		} else {
			err = s.fr.(flate.Resetter).Reset(&s.in, nil)
		}
		r = s.fr
	}
	if err == nil {
		dst, err = d.readAll(dst, r, &s.in)
	}
	s.in.Reset(nil)
	d.deflatePool.Put(s)
	return dst, err
}

type zstdState struct {
	in  bytes.Reader
	dec *zstd.Decoder
}

func (d *Decompressor) unzstd(dst, src []byte) ([]byte, error) {
	s, _ := d.zstdPool.Get().(*zstdState)
	if s == nil {
		dec, err := zstd.NewReader(nil,
			// Decode on the calling goroutine, one block at a time.
			zstd.WithDecoderConcurrency(1),
			// Grow block buffers to what the stream needs, not the maximum.
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow),
			// Never decode a whole in-memory input at once: always stream,
			// so the size limit applies while decoding.
			zstd.WithDecodeBuffersBelow(0),
		)
		if err != nil {
			return dst, err
		}
		s = &zstdState{dec: dec}
	}
	s.in.Reset(src)
	err := s.dec.Reset(&s.in)
	if err == nil {
		dst, err = d.readAll(dst, s.dec, &s.in)
	}
	s.in.Reset(nil)
	if err != nil {
		// The decoder may hold a window-sized buffer chosen by a hostile
		// stream; let it go rather than keep it in the pool.
		s.dec.Close()
		return dst, err
	}
	d.zstdPool.Put(s)
	return dst, nil
}

type brotliState struct {
	in bytes.Reader
	br *brotli.Reader
}

func (d *Decompressor) unbrotli(dst, src []byte) ([]byte, error) {
	s, _ := d.brotliPool.Get().(*brotliState)
	if s == nil {
		s = new(brotliState)
	}
	s.in.Reset(src)
	if s.br == nil {
		s.br = brotli.NewReader(&s.in)
	} else {
		_ = s.br.Reset(&s.in) // always nil
	}
	dst, err := d.readAll(dst, s.br, &s.in)
	s.in.Reset(nil)
	if err != nil {
		// As for zstd: the ring buffer may be window-sized (up to 16 MiB).
		return dst, err
	}
	d.brotliPool.Put(s)
	return dst, nil
}

// readAll reads r to the end, appending to dst[:0], without ever asking r
// for more than limit+1 bytes in total. in is the compressed input r reads
// from: bytes left in it once r reports the end of the stream are an error.
func (d *Decompressor) readAll(dst []byte, r io.Reader, in *bytes.Reader) ([]byte, error) {
	ceiling := d.limit + 1
	buf := dst[:0]
	if cap(buf) == 0 {
		// Typical JSON batches compress 5-15x.
		buf = make([]byte, 0, min(ceiling, max(4096, in.Len()*8)))
	}
	stalls := 0
	for {
		if len(buf) == cap(buf) {
			buf = growBounded(buf, ceiling)
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), ceiling)])
		buf = buf[:len(buf)+n]
		if len(buf) > d.limit {
			return buf, ErrTooLarge
		}
		switch {
		case err == io.EOF:
			if in.Len() > 0 {
				return buf, errTrailingData
			}
			return buf, nil
		case err != nil:
			return buf, err
		case n == 0:
			if stalls++; stalls > 100 {
				return buf, io.ErrNoProgress
			}
		default:
			stalls = 0
		}
	}
}

// growBounded returns buf with more spare capacity: about double, but never
// more than ceiling in total.
func growBounded(buf []byte, ceiling int) []byte {
	c := min(ceiling, max(2*cap(buf), 4096))
	nb := make([]byte, len(buf), c)
	copy(nb, buf)
	return nb
}
