package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/internal/jsonvalue"
)

// HubStore is the hub's store as the hub writes into it (the store
// implements it; cmd wires it).
type HubStore interface {
	// Project returns the hub's project with this id, made if the hub has
	// none yet (the same id on every node is the same project).
	Project(id string) (core.Project, error)
	// Commit commits b, a forwarded record's events, from node's record seq,
	// unless that record was committed before: dup is then true and nothing
	// is written. An error wrapping core.ErrUnavailable is worth retrying.
	Commit(ctx context.Context, node string, seq uint64, b *core.Batch) (dup bool, err error)
}

// HubOptions configure a Hub.
type HubOptions struct {
	// Capture is what the store's aggregator reads (storage.Capture).
	Capture *core.Capture
	// Backoff is the wait before a message the store could not take is
	// tried again; it doubles up to MaxBackoff (defaults 100 ms and 5 s).
	Backoff, MaxBackoff time.Duration
	Logger              *slog.Logger
}

// Hub folds a stream's records into the hub's store: each message is read
// back into a record, its events validated again as the edge validates a
// request (a hub trusts the stream no further than it must), and committed
// once by its origin. A message that is not a record, or holds an event
// that is not valid, goes to the dead letters, so that it never blocks the
// stream nor crashes the hub.
type Hub struct {
	sub   Subscriber
	store HubStore
	opts  HubOptions
	log   *slog.Logger

	rec    Record
	proc   core.Processor
	parser jsonvalue.Parser
	batch  core.Batch

	committed, duplicates, dead, events atomic.Uint64
}

// NewHub returns a Hub that consumes sub into store.
func NewHub(sub Subscriber, store HubStore, o HubOptions) *Hub {
	if o.Backoff <= 0 {
		o.Backoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Hub{sub: sub, store: store, opts: o, log: o.Logger}
	h.proc.SetCapture(o.Capture)
	return h
}

// HubStats are a Hub's counters since it started.
type HubStats struct {
	Committed  uint64 // records committed
	Events     uint64 // their events
	Duplicates uint64 // records received again, not committed again
	Dead       uint64 // messages sent to the dead letters
}

// Stats returns the Hub's counters.
func (h *Hub) Stats() HubStats {
	return HubStats{Committed: h.committed.Load(), Events: h.events.Load(), Duplicates: h.duplicates.Load(), Dead: h.dead.Load()}
}

// errDead marks why a message cannot be committed, ever.
type errDead struct{ err error }

func (e errDead) Error() string { return e.err.Error() }
func (e errDead) Unwrap() error { return e.err }

// Run consumes until ctx is done. A message the store cannot take now is
// tried again after a backoff; one that can never be committed goes to the
// dead letters.
func (h *Hub) Run(ctx context.Context) error {
	backoff := h.opts.Backoff
	for {
		err := h.sub.Consume(ctx, func(m *Message) error {
			err := h.Handle(ctx, m)
			var dead errDead
			if errors.As(err, &dead) {
				if derr := h.sub.DeadLetter(ctx, m, dead.err); derr != nil {
					return derr // delivered again, dead-lettered again
				}
				h.dead.Add(1)
				h.log.Warn("hub: a message went to the dead letters", "subject", m.Subject, "reason", dead.err.Error())
				return nil
			}
			if err == nil {
				backoff = h.opts.Backoff
			}
			return err
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		h.log.Warn("hub: a message could not be committed; trying again", "err", err, "backoff", backoff.String())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, h.opts.MaxBackoff)
	}
}

// Handle commits one message. Its error is an errDead for a message that
// can never be committed (Run sends it to the dead letters), else one worth
// trying again.
func (h *Hub) Handle(ctx context.Context, m *Message) error {
	r := &h.rec
	if err := ParseRecord(m.Header, m.Body, r); err != nil {
		return errDead{err}
	}
	if p, ok := ProjectOfSubject(m.Subject); ok && p != r.Project {
		return errDead{fmt.Errorf("%w: subject %s is not project %s's", ErrBadMessage, m.Subject, r.Project)}
	}
	p, err := h.store.Project(r.Project)
	if err != nil {
		return err
	}
	b := &h.batch
	b.Reset()
	b.ProjectID, b.ProjectNum, b.ReceivedAt = r.Project, p.ProjectNum(), r.ReceivedAt
	// The edge gated the channels; the hub keeps what it was sent.
	info := jsonvalue.StoredInfo(len(r.Events), func(i int) []byte { return r.Events[i] }, r.Project, core.AllChannels())
	b.Info = info
	h.proc.Begin(b, info)
	for i, e := range r.Events {
		v, err := h.parser.ParseBytes(e)
		if err != nil {
			return errDead{fmt.Errorf("%w: event %d is not JSON: %v", ErrBadMessage, i, err)}
		}
		out, _, reason := h.proc.Add(jsonvalue.Wrap(v))
		if out != core.Accepted {
			return errDead{fmt.Errorf("%w: event %d: %s", ErrBadMessage, i, reason.String())}
		}
	}
	dup, err := h.store.Commit(ctx, r.Node, r.Seq, b)
	if err != nil {
		return err
	}
	if dup {
		h.duplicates.Add(1)
		return nil
	}
	h.committed.Add(1)
	h.events.Add(uint64(len(b.Events)))
	return nil
}
