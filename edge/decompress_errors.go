package edge

import (
	"encoding/binary"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// This file turns the codecs' errors into what a client is told: which rule
// of the format, or which limit of this collector, the body breaks. It runs
// only once a body has been refused.

// streamError describes why src (encoded as enc) could not be decoded; err
// is the codec's error. It returns ErrTooLarge when a zstd frame declares a
// content size over the limit: that body would be refused for its size
// whatever else is wrong with it.
func (d *Decompressor) streamError(enc Encoding, src []byte, err error) error {
	var reason string
	switch {
	case errors.Is(err, errTrailingData):
		reason = "there is data after the end of the " + enc.String() + " stream: send exactly one compressed body"
	case errors.Is(err, io.ErrNoProgress):
		reason = "the " + enc.String() + " stream makes no progress"
	}
	if reason == "" {
		switch enc {
		case EncGzip:
			reason = gzipReason(err)
		case EncDeflate:
			reason = deflateReason(src, err)
		case EncZstd:
			if h, ok := zstdFirstFrame(src); ok && h.single && h.content > uint64(d.limit) &&
				(errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded)) {
				return ErrTooLarge
			}
			reason = zstdReason(src, err)
		case EncBrotli:
			reason = brotliReason(src, err)
		}
	}
	if reason == "" {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			reason = "the " + enc.String() + " stream is truncated: it ends before its last block"
		} else {
			reason = "the " + enc.String() + " stream is corrupt (" + truncate(err.Error(), 100) + ")"
		}
	}
	return &StreamError{Enc: enc, Reason: reason, Err: err}
}

func gzipReason(err error) string {
	var first firstHeaderError
	isFirst := errors.As(err, &first)
	var ce flate.CorruptInputError
	switch {
	case errors.Is(err, gzip.ErrHeader) && isFirst:
		return "the body is not gzip: it does not start with a gzip header (1f 8b 08)"
	case errors.Is(err, gzip.ErrHeader):
		return "there is data after the end of the gzip stream that is not another gzip member: send only gzip members"
	case errors.Is(err, gzip.ErrChecksum):
		return "the gzip trailer's CRC-32 or length does not match the data: the body was damaged"
	case errors.As(err, &ce):
		return "the gzip stream's DEFLATE data is corrupt at offset " + strconv.FormatInt(int64(ce), 10)
	}
	return ""
}

func deflateReason(src []byte, err error) string {
	var ce flate.CorruptInputError
	switch {
	case errors.Is(err, zlib.ErrDictionary):
		return "the zlib stream needs a preset dictionary (FDICT), and this collector has none: compress without a dictionary"
	case errors.Is(err, zlib.ErrChecksum):
		return "the zlib stream's Adler-32 checksum does not match the data: the body was damaged"
	case errors.Is(err, zlib.ErrHeader):
		return "the zlib header is invalid"
	case errors.As(err, &ce):
		kind := "raw DEFLATE"
		if isZlibHeader(src) {
			kind = "zlib stream's DEFLATE"
		}
		return "the " + kind + " data is corrupt at offset " + strconv.FormatInt(int64(ce), 10)
	}
	return ""
}

func zstdReason(src []byte, err error) string {
	h, ok := zstdFirstFrame(src)
	switch {
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		const limit = "the " + zstdWindowText + " limit of this collector (RFC 9659's limit for Content-Encoding: zstd): compress with a window of at most " +
			zstdWindowText + " (windowLog ≤ 23, e.g. zstd levels up to 19 without --long)"
		switch {
		case ok && h.single && h.window > zstdMaxWindow:
			return "the zstd frame is a single segment of " + sizeText(h.content) + ", which needs a window that large, over " + limit
		case ok && h.window > zstdMaxWindow:
			return "the zstd frame declares a " + sizeText(h.window) + " window, over " + limit
		}
		return "a zstd frame declares a window over " + limit
	case errors.Is(err, zstd.ErrUnknownDictionary):
		msg := "the zstd frame needs a dictionary"
		if ok && h.dict != 0 {
			msg += " (id " + strconv.FormatUint(uint64(h.dict), 10) + ")"
		}
		return msg + ", and this collector has none: compress without a dictionary"
	case errors.Is(err, zstd.ErrMagicMismatch):
		if zstdStartsWithFrame(src) {
			return "there is data after the end of the zstd stream that is not another zstd frame: send only zstd frames"
		}
		return "the body is not zstd: it does not start with a zstd frame (magic 28 b5 2f fd)"
	case errors.Is(err, zstd.ErrCRCMismatch):
		return "the zstd frame's content checksum does not match the data: the body was damaged"
	case errors.Is(err, zstd.ErrWindowSizeTooSmall):
		return "the zstd frame declares a window under the format's 1 KiB minimum"
	}
	return ""
}

func brotliReason(src []byte, err error) string {
	switch msg := err.Error(); {
	case msg == "brotli: WINDOW_BITS" && len(src) > 0 && src[0]&0x7f == 0x11:
		return "the br stream uses the large-window extension (windows over 16 MiB), which this collector does not decode: " +
			"compress with a standard window (RFC 7932, lgwin ≤ 24)"
	case msg == "brotli: WINDOW_BITS":
		return "the br stream's window size field (WBITS) is invalid"
	case msg == "brotli: excessive input":
		return "there is data after the end of the br stream: send exactly one compressed body"
	case strings.HasPrefix(msg, "brotli: "):
		return "the br stream is corrupt (" + strings.ToLower(msg[len("brotli: "):]) + ")"
	}
	return ""
}

// zstdWindowText is zstdMaxWindow in words (a test holds them equal).
const zstdWindowText = "8 MiB"

// zstdHeader is what a zstd frame header declares.
type zstdHeader struct {
	window  uint64 // history the frame needs: its content size when single
	content uint64 // declared content size, or ^0 when not declared
	dict    uint32 // dictionary id, 0 = none
	single  bool   // Single_Segment_Flag
}

const (
	zstdMagic        = 0xFD2FB528
	zstdSkipMagic    = 0x184D2A50 // to 0x184D2A5F
	zstdSkipMagicMsk = 0xFFFFFFF0
)

// zstdStartsWithFrame reports whether src starts with a zstd or skippable
// frame's magic number.
func zstdStartsWithFrame(src []byte) bool {
	if len(src) < 4 {
		return false
	}
	m := binary.LittleEndian.Uint32(src)
	return m == zstdMagic || m&zstdSkipMagicMsk == zstdSkipMagic
}

// zstdFirstFrame reads the header of src's first zstd frame, past skippable
// frames (RFC 8878 §3.1.1).
func zstdFirstFrame(src []byte) (h zstdHeader, ok bool) {
	for len(src) >= 8 && binary.LittleEndian.Uint32(src)&zstdSkipMagicMsk == zstdSkipMagic {
		n := uint64(binary.LittleEndian.Uint32(src[4:]))
		if n > uint64(len(src)-8) {
			return h, false
		}
		src = src[8+n:]
	}
	if len(src) < 5 || binary.LittleEndian.Uint32(src) != zstdMagic {
		return h, false
	}
	fhd := src[4]
	p := src[5:]
	h.single = fhd&(1<<5) != 0
	if !h.single {
		if len(p) < 1 {
			return h, false
		}
		wd := p[0]
		p = p[1:]
		base := uint64(1) << (10 + wd>>3)
		h.window = base + base/8*uint64(wd&7)
	}
	dictLen := [4]int{0, 1, 2, 4}[fhd&3]
	if len(p) < dictLen {
		return h, false
	}
	for i := dictLen - 1; i >= 0; i-- {
		h.dict = h.dict<<8 | uint32(p[i])
	}
	p = p[dictLen:]
	fcsLen := [4]int{0, 2, 4, 8}[fhd>>6]
	if fcsLen == 0 && h.single {
		fcsLen = 1
	}
	h.content = ^uint64(0)
	if fcsLen > 0 {
		if len(p) < fcsLen {
			return h, false
		}
		var v uint64
		for i := fcsLen - 1; i >= 0; i-- {
			v = v<<8 | uint64(p[i])
		}
		if fcsLen == 2 {
			v += 256
		}
		h.content = v
	}
	if h.single {
		h.window = h.content
	}
	return h, true
}

// sizeText writes a byte count as people read it: "16 MiB", "1.5 MiB",
// "300 KiB", "1000 bytes".
func sizeText(n uint64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatUint(n>>20, 10) + " MiB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB (" + strconv.FormatUint(n, 10) + " bytes)"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatUint(n>>10, 10) + " KiB"
	}
	return strconv.FormatUint(n, 10) + " bytes"
}

// unsupportedEncodingMsg is the 415 message for a Content-Encoding that
// ParseEncoding refused.
func unsupportedEncodingMsg(h []byte) string {
	const use = "use identity, gzip, deflate, zstd or br"
	v := strings.TrimSpace(string(h))
	switch lv := strings.ToLower(v); {
	case strings.Contains(v, ","):
		return "unsupported Content-Encoding " + strconv.Quote(truncate(v, 64)) + ": stacked encodings are not decoded; " + use + ", once"
	case lv == "dcb" || lv == "dcz":
		return "unsupported Content-Encoding " + strconv.Quote(v) + ": dictionary-compressed bodies are not decoded (this collector keeps no shared dictionaries); " + use
	}
	return "unsupported Content-Encoding " + strconv.Quote(truncate(v, 64)) + ": " + use
}
