//go:build !linux

package storage

// lowerThreadPriority is a no-op where threads cannot be reniced alone.
func lowerThreadPriority(int) error { return nil }
