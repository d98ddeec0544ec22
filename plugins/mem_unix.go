//go:build unix

package plugins

import "golang.org/x/sys/unix"

// mapMemory reserves size bytes of address space for a linear memory:
// anonymous, private, with no swap reserved, so only the pages the guest
// touches cost RAM (and count against the budget as the memory's length).
func mapMemory(size uint64) ([]byte, func()) {
	if size == 0 {
		return nil, nil
	}
	b, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON|unix.MAP_NORESERVE)
	if err != nil {
		// No address space left: fall back to the Go heap.
		return make([]byte, size), nil
	}
	return b, func() { unix.Munmap(b) }
}
