package sdktest

import (
	"bytes"
	"encoding/binary"
)

// GoVersion returns the Go release that built a wasm module ("go1.26.8"),
// read from the module's "producers" custom section, or "" when the module
// does not say.
func GoVersion(wasm []byte) string {
	if len(wasm) < 8 || !bytes.Equal(wasm[:4], []byte("\x00asm")) {
		return ""
	}
	b := wasm[8:]
	for len(b) > 0 {
		id := b[0]
		size, n := binary.Uvarint(b[1:])
		if n <= 0 || size > uint64(len(b)-1-n) {
			return ""
		}
		body := b[1+n : 1+n+int(size)]
		b = b[1+n+int(size):]
		if id != 0 {
			continue
		}
		r := reader{b: body}
		if r.name() != "producers" {
			continue
		}
		for fields := r.uint(); fields > 0 && r.ok; fields-- {
			field := r.name()
			for values := r.uint(); values > 0 && r.ok; values-- {
				name, version := r.name(), r.name()
				if field == "processed-by" && name == "Go cmd/compile" && r.ok {
					return version
				}
			}
		}
	}
	return ""
}

type reader struct {
	b  []byte
	ok bool
}

func (r *reader) uint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.b, r.ok = nil, false
		return 0
	}
	r.b, r.ok = r.b[n:], true
	return v
}

func (r *reader) name() string {
	n := r.uint()
	if !r.ok || n > uint64(len(r.b)) {
		r.b, r.ok = nil, false
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
