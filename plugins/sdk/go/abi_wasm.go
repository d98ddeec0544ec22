//go:build wasm

package sdk

import "unsafe"

// The ABI v1 exports (docs/PLUGIN_ABI.md). Addresses are offsets in the
// module's linear memory; Go's wasm port uses them as pointer values.

//go:wasmexport uptimizr_abi_version
func abiVersion() int32 { return ABIVersion }

//go:wasmexport uptimizr_alloc
func abiAlloc(size int32) int32 {
	b := allocIn(int(size))
	if b == nil {
		return 0
	}
	return int32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

//go:wasmexport uptimizr_init
func abiInit(ptr, n int32) int32 {
	b, ok := inputAt(ptr, n)
	if !ok {
		return CodeBadInput
	}
	return initPlugin(b)
}

//go:wasmexport uptimizr_filter
func abiFilter(ptr, n int32) int64 {
	b, ok := inputAt(ptr, n)
	if !ok {
		return CodeBadInput
	}
	res, code := filterBatch(b)
	if code != 0 {
		return int64(code)
	}
	p := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(res))))
	return int64(p<<32 | uint64(uint32(len(res))))
}

// inputAt returns the n bytes at ptr, which must lie inside the buffer
// last handed out by uptimizr_alloc: the SDK reads no other memory.
func inputAt(ptr, n int32) ([]byte, bool) {
	if n < 0 {
		return nil, false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(in)))
	p := uintptr(uint32(ptr))
	if p < base || p-base > uintptr(len(in)) || uintptr(n) > uintptr(len(in))-(p-base) {
		return nil, false
	}
	off := int(p - base)
	return in[off : off+int(n)], true
}
