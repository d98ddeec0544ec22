package core

import "errors"

// Sentinel errors shared across packages, so the edge can map failures of
// components it does not import to HTTP statuses.
var (
	// ErrNotFound: the named thing (plugin, version, quarantined batch, …)
	// does not exist in the caller's project. → 404
	ErrNotFound = errors.New("not found")
	// ErrRejected: the caller's input was checked and refused; the message
	// says why. → 400
	ErrRejected = errors.New("rejected")
	// ErrBusy: a resource the node shares between projects (plugin
	// instances and their memory) stayed taken for longer than a request
	// may wait; nothing of the request was done, and it may be sent again
	// later. → 503 with Retry-After
	ErrBusy = errors.New("busy")
	// ErrTooLarge: the caller's input is larger than a part of the node
	// can carry (a batch whose record would not fit in one message of the
	// fleet's stream engine); nothing of it was stored. → 413
	ErrTooLarge = errors.New("too large")
)
