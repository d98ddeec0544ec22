// Package sdk is the Go guest SDK for Uptimizr Edge filter plugins. It
// implements plugin ABI v1 (docs/PLUGIN_ABI.md) so that a plugin is a
// function from one event to a verdict:
//
//	package main
//
//	import sdk "github.com/uptimizr/edge/plugins/sdk/go"
//
//	func init() {
//		sdk.Handle(func(e *sdk.Event) sdk.Verdict {
//			if e.Type() == "frame_perf" {
//				return sdk.Drop
//			}
//			if t, ok := e.Get("pageMeta", "title"); ok && t.Kind() == sdk.String {
//				e.SetString([]string{"pageMeta", "title"}, redact(t.String()))
//			}
//			return sdk.Keep // sent back as a replacement when edited
//		})
//	}
//
//	func main() {}
//
// built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .
//
// Register the handler (and the optional Configure function) from an init
// function: a c-shared build is a WASI reactor whose _initialize runs
// package initialisation but never main.
//
// # What the SDK does
//
// It exports uptimizr_abi_version, uptimizr_alloc, uptimizr_init and
// uptimizr_filter (plus Go's memory and _initialize). uptimizr_alloc hands
// out one input buffer, reused and grown as needed; uptimizr_filter
// checks the batch framing, runs the handler on each event in order and
// encodes the answer — op 0 keep, 1 drop, 2 replace — into one output
// buffer, also reused. Both buffers are package variables, so they stay
// reachable for the life of the instance (Go's wasm GC does not move
// objects). Result codes: -2 for a batch that cannot be decoded, -3 before
// a successful init, -4 when the handler returns Reject, -1 when a
// handler panics (the panic is recovered; the host discards the instance
// anyway).
//
// # Reading events
//
// An Event is a view of the event's canonical JSON, indexed once (its
// top-level members) when the event is reached; Get finds members by
// path, and Value reads a value in place — Kind, String (unescaped), Is
// (compare without allocating), Float, Int, Bool, Members and Elements
// (range-over-func iterators). There is no reflection and no
// encoding/json on this path.
//
// The host's events were validated by the collector; the SDK checks their
// structure (the event is one object, names and separators are in place,
// strings end, brackets balance) but not every token again. ParseEvent
// and ParseValue, meant for tests and configuration, check everything.
//
// # Editing events
//
// SetString, SetFloat, SetRaw, Delete (by path) and ReplaceString,
// ReplaceRaw, DeleteMember (by Value) record edits; reads keep seeing the
// event as received. After the handler returns, the edited event is built
// once by copying the unchanged byte ranges around the edits, so untouched
// members keep their exact bytes. Strings are escaped as JSON needs
// (quotes, backslashes, control characters; invalid UTF-8 becomes U+FFFD).
//
// The host owns type, projectId, sessionId, visitorId and ts: an edit
// that would change them (or replace the whole event) returns
// ErrImmutable and changes nothing, so a plugin cannot produce output the
// host would refuse for that reason.
package sdk
