// Package inflight holds what every engine's Publisher shares: a bound on
// the records published and not yet acknowledged, and the promise that
// each record's acknowledgement callback is called exactly once, also when
// the Publisher is closed before the engine answered (fleet.Publisher).
package inflight

import (
	"context"
	"errors"
	"sync"
)

// ErrClosed is the error of a Publish after Close, and of every
// acknowledgement Close gave up waiting for.
var ErrClosed = errors.New("fleet: publisher closed")

// Tracker bounds the records in flight and settles each once.
type Tracker struct {
	slots  chan struct{}
	closed chan struct{}

	mu      sync.Mutex
	pending map[uint64]*entry
	next    uint64
	empty   chan struct{} // closed when pending empties, while Close waits
	shut    bool
}

type entry struct {
	ack   func(error)
	taken bool // its ack is being called
}

// New returns a Tracker of at most max records in flight.
func New(max int) *Tracker {
	return &Tracker{slots: make(chan struct{}, max), closed: make(chan struct{}), pending: map[uint64]*entry{}}
}

// Add waits for room (until ctx is done or the Tracker is closed), then
// registers ack. The returned settle calls ack at most once, whoever calls
// it and however often: the first call wins, later ones do nothing. A
// record holds its room until its ack has returned, so that a caller
// counting its records in flight in ack never sees more than the bound;
// ack must therefore not wait for an Add of the same Tracker.
func (t *Tracker) Add(ctx context.Context, ack func(error)) (settle func(error), err error) {
	select {
	case <-t.closed:
		return nil, ErrClosed
	default:
	}
	select {
	case t.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.closed:
		return nil, ErrClosed
	}
	t.mu.Lock()
	if t.shut {
		t.mu.Unlock()
		<-t.slots
		return nil, ErrClosed
	}
	id := t.next
	t.next++
	t.pending[id] = &entry{ack: ack}
	t.mu.Unlock()
	return func(err error) { t.settle(id, err) }, nil
}

func (t *Tracker) settle(id uint64, err error) {
	t.mu.Lock()
	e, ok := t.pending[id]
	if !ok || e.taken {
		t.mu.Unlock()
		return
	}
	e.taken = true
	t.mu.Unlock()
	e.ack(err)
	t.mu.Lock()
	delete(t.pending, id)
	if len(t.pending) == 0 && t.empty != nil {
		close(t.empty)
		t.empty = nil
	}
	t.mu.Unlock()
	<-t.slots
}

// Len returns the records in flight.
func (t *Tracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// Close refuses new records and waits until every record in flight is
// settled or ctx is done; then it settles the rest with ErrClosed. It
// returns ctx's error when it gave up on some. When it returns, every ack
// has been called and has returned.
func (t *Tracker) Close(ctx context.Context) error {
	t.mu.Lock()
	if !t.shut {
		t.shut = true
		close(t.closed)
	}
	wait := t.waitLocked()
	t.mu.Unlock()
	if wait == nil {
		return nil
	}
	select {
	case <-wait:
		return nil
	case <-ctx.Done():
	}
	t.mu.Lock()
	var ids []uint64
	for id, e := range t.pending {
		if !e.taken {
			ids = append(ids, id)
		}
	}
	t.mu.Unlock()
	for _, id := range ids {
		t.settle(id, ErrClosed)
	}
	// Acks being called as ctx ended are about to return.
	t.mu.Lock()
	wait = t.waitLocked()
	t.mu.Unlock()
	if wait != nil {
		<-wait
	}
	return ctx.Err()
}

func (t *Tracker) waitLocked() chan struct{} {
	if len(t.pending) == 0 {
		return nil
	}
	if t.empty == nil {
		t.empty = make(chan struct{})
	}
	return t.empty
}
