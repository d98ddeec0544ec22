// Command guest is a test filter plugin for package meter. It is built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o guest.wasm ./testdata/guest
//
// and exports a byte-scanning function standing in for a redaction filter,
// a function that never returns, and a counted loop.
package main

import "unsafe"

var buf []byte

// alloc returns a pointer to a guest buffer of at least n bytes, reused
// across calls.
//
//go:wasmexport alloc
func alloc(n int32) unsafe.Pointer {
	if int(n) > cap(buf) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	return unsafe.Pointer(unsafe.SliceData(buf))
}

// scan counts the bytes of buf that a redaction filter would look at: '@'
// and ASCII digits, weighted so that a wrong count shows.
//
//go:wasmexport scan
func scan(p unsafe.Pointer, n int32) int32 {
	b := unsafe.Slice((*byte)(p), n)
	var at, digits, runs int32
	inDigits := false
	for _, c := range b {
		switch {
		case c == '@':
			at++
			inDigits = false
		case c >= '0' && c <= '9':
			digits++
			if !inDigits {
				runs++
			}
			inDigits = true
		default:
			inDigits = false
		}
	}
	return at<<20 ^ digits<<8 ^ runs
}

var sink int64

// spin never returns.
//
//go:wasmexport spin
func spin() {
	for i := int64(0); ; i++ {
		sink = i
	}
}

// work loops n times and returns a value that depends on every iteration.
//
//go:wasmexport work
func work(n int64) int64 {
	h := int64(1469598103934665603)
	for i := int64(0); i < n; i++ {
		h = (h ^ i) * 1099511628211
	}
	return h
}

func main() {}
