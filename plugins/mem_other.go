//go:build !unix

package plugins

// mapMemory allocates size bytes for a linear memory from the Go heap
// (where mmap is not available): the whole maximum at once, untouched
// pages of a large allocation cost no RAM on most systems.
func mapMemory(size uint64) ([]byte, func()) { return make([]byte, size), nil }
