// Package plugins runs customer WebAssembly filter plugins under wazero, per
// docs/PLUGIN_ABI.md: compiled modules are kept by content hash (with
// wazero's on-disk compilation cache), each plugin version has a bounded
// pool of initialised instances, every call is sandboxed (no filesystem,
// network, environment or arguments; capped memory; a CPU deadline), and an
// instance that trapped, timed out or produced bad output is closed, never
// reused.
package plugins
