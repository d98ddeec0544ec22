package sdk

import (
	"encoding/binary"
	"errors"
)

// Verdict is what a handler decides for one event.
type Verdict uint8

const (
	// Keep the event: unchanged (op 0), or with its edits applied (op 2)
	// when the handler edited it.
	Keep Verdict = iota
	// Drop the event (op 1). Pending edits are ignored.
	Drop
	// Replace is Keep said explicitly: the edited event is sent back (op
	// 2); without edits it is the same as Keep.
	Replace
	// Reject fails the whole batch by policy: uptimizr_filter returns -4
	// and the plugin's failure policy applies to the batch.
	Reject
)

// ABI v1 constants.
const (
	ABIVersion = 1

	CodeFailure       = -1 // unspecified failure (also: a handler panicked)
	CodeBadInput      = -2 // the input could not be decoded
	CodeNotConfigured = -3 // no handler registered, init failed or was not called
	CodeRejected      = -4 // the plugin rejects the batch by policy

	OpKeep    = 0
	OpDrop    = 1
	OpReplace = 2
)

// maxAlloc bounds a single input buffer. The host's own limits (config
// 64 KiB, batches of at most 1000 events) stay far below it.
const maxAlloc = 48 << 20

var (
	handler   func(*Event) Verdict
	configure func([]byte) error
	ready     bool

	// The input and output buffers live for the life of the instance
	// (package variables keep them reachable; Go's wasm GC does not move
	// objects). The host writes into in after uptimizr_alloc and reads
	// out after uptimizr_filter.
	in  = make([]byte, 0, 64<<10)
	out = make([]byte, 0, 64<<10)
	ev  Event
)

// Handle registers the filter: f is called once per event of each batch,
// in order. Call it from an init function: a plugin built with
// -buildmode=c-shared runs package initialisation but never main.
func Handle(f func(e *Event) Verdict) { handler = f }

// Configure registers f to receive the plugin's JSON config (an object,
// "{}" when the project set none) once, when the host initialises the
// instance. f gets its own copy of the bytes. A non-nil error makes
// uptimizr_init fail, and the host refuses the plugin: with the code of an
// *Error in the error's chain, else -1. Optional.
func Configure(f func(config []byte) error) { configure = f }

// Error is an error with an ABI result code, for a Configure function
// that wants uptimizr_init to answer a specific code. Plugin-defined codes
// are -100 and below.
type Error struct {
	Code int32
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// allocIn returns the input buffer resized to n bytes, growing it when
// needed. The previous contents are not kept.
func allocIn(n int) []byte {
	if n < 0 || n > maxAlloc {
		return nil
	}
	if n > cap(in) {
		in = make([]byte, n, n+n/4)
	}
	in = in[:n]
	return in
}

// initPlugin runs the registered Configure function on a copy of config.
func initPlugin(config []byte) (code int32) {
	ready = false
	if handler == nil {
		return CodeNotConfigured
	}
	defer func() {
		if recover() != nil {
			code = CodeFailure
		}
	}()
	if configure != nil {
		if err := configure(append([]byte(nil), config...)); err != nil {
			var ce *Error
			if errors.As(err, &ce) && ce.Code < 0 {
				return ce.Code
			}
			return CodeFailure
		}
	}
	ready = true
	return 0
}

// filterBatch decodes a batch, runs the handler on each event and encodes
// the answer into the output buffer. It returns the output, or a negative
// code.
func filterBatch(batch []byte) (res []byte, code int32) {
	if !ready {
		return nil, CodeNotConfigured
	}
	count, ok := checkBatch(batch)
	if !ok {
		return nil, CodeBadInput
	}
	defer func() {
		if recover() != nil {
			res, code = nil, CodeFailure
		}
	}()
	o := binary.LittleEndian.AppendUint32(out[:0], count)
	pos := 8
	for i := 0; i < int(count); i++ {
		n := int(binary.LittleEndian.Uint32(batch[pos:]))
		doc := batch[pos+4 : pos+4+n]
		pos += 4 + n
		if ev.reset(doc, i, false) != nil {
			out = o
			return nil, CodeBadInput
		}
		verdict := handler(&ev)
		switch verdict {
		case Keep, Replace:
			if !ev.Edited() {
				o = append(o, OpKeep)
				break
			}
			o = append(o, OpReplace, 0, 0, 0, 0)
			at := len(o)
			var err error
			if o, err = ev.AppendJSON(o); err != nil {
				out = o
				return nil, CodeFailure
			}
			binary.LittleEndian.PutUint32(o[at-4:], uint32(len(o)-at))
		case Drop:
			o = append(o, OpDrop)
		case Reject:
			out = o
			return nil, CodeRejected
		default:
			out = o
			return nil, CodeFailure
		}
	}
	ev.reset(nil, 0, false)
	out = o
	return o, 0
}

// checkBatch checks the framing of a batch: version, count, and that the
// length-prefixed events exactly fill it.
func checkBatch(b []byte) (count uint32, ok bool) {
	if len(b) < 8 || binary.LittleEndian.Uint32(b) != 1 {
		return 0, false
	}
	count = binary.LittleEndian.Uint32(b[4:])
	if uint64(count) > uint64(len(b)-8)/4 {
		return 0, false
	}
	pos := 8
	for i := uint32(0); i < count; i++ {
		if len(b)-pos < 4 {
			return 0, false
		}
		n := binary.LittleEndian.Uint32(b[pos:])
		pos += 4
		if uint64(n) > uint64(len(b)-pos) {
			return 0, false
		}
		pos += int(n)
	}
	return count, pos == len(b)
}
