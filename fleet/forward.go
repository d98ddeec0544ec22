package fleet

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Source is a node's committed records as the forwarder reads them, in
// each project's sequence order. The store implements it (cmd wires it).
type Source interface {
	// Read appends to dst up to max records not read yet, waiting until
	// there is at least one or ctx is done. The records' events alias the
	// Source's buffers until the next Read.
	Read(ctx context.Context, dst []Record, max int) ([]Record, error)
	// Rewind makes the next Read start again, in every project, at the
	// first record not acknowledged (Ack): after a publish failed.
	Rewind()
	// Ack says the engine has every record of project below seq below.
	Ack(project string, below uint64)
	// Commit makes the acknowledged positions durable: after a crash the
	// forwarder goes on from them, so the engine sees again at most what
	// was acknowledged after the last Commit (MsgID deduplicates it).
	Commit() error
}

// ForwarderOptions configure a Forwarder.
type ForwarderOptions struct {
	// CommitEvery is how often the acknowledged positions are made durable
	// (default 200 ms).
	CommitEvery time.Duration
	// Backoff is the wait after a failed publish before the records not
	// acknowledged are sent again; it doubles up to MaxBackoff (defaults
	// 100 ms and 5 s).
	Backoff, MaxBackoff time.Duration
	// ReadMax is how many records one Read takes (default 256).
	ReadMax int
	Logger  *slog.Logger
}

// Forwarder publishes a Source's records to an engine, and moves the
// Source's position past a record only once the engine has acknowledged
// it and every record of its project before it: a record counts as
// forwarded only then. After a failure it waits for every acknowledgement
// in flight, rewinds, and sends again from the first record not
// acknowledged (the engine and the hub deduplicate what it had).
type Forwarder struct {
	src  Source
	pub  Publisher
	opts ForwarderOptions
	log  *slog.Logger

	mu       sync.Mutex
	cond     *sync.Cond
	inflight int
	failed   error
	projects map[string]*pending

	forwarded, errors, published atomic.Uint64
	down                         atomic.Bool
}

// pending is one project's records in flight, in sequence order.
type pending struct {
	seqs []uint64
	done []bool
}

// NewForwarder returns a Forwarder of src's records to pub.
func NewForwarder(src Source, pub Publisher, o ForwarderOptions) *Forwarder {
	if o.CommitEvery <= 0 {
		o.CommitEvery = 200 * time.Millisecond
	}
	if o.Backoff <= 0 {
		o.Backoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.ReadMax <= 0 {
		o.ReadMax = 256
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Forwarder{src: src, pub: pub, opts: o, log: o.Logger, projects: map[string]*pending{}}
	f.cond = sync.NewCond(&f.mu)
	return f
}

// ForwarderStats are a Forwarder's counters since it started.
type ForwarderStats struct {
	Forwarded uint64 // records acknowledged in order
	Published uint64 // messages sent (a record sent again counts again)
	Errors    uint64 // failed publishes
	InFlight  int
	Down      bool // the last publish failed and none has succeeded since
}

// Stats returns the Forwarder's counters.
func (f *Forwarder) Stats() ForwarderStats {
	f.mu.Lock()
	n := f.inflight
	f.mu.Unlock()
	return ForwarderStats{Forwarded: f.forwarded.Load(), Published: f.published.Load(), Errors: f.errors.Load(), InFlight: n, Down: f.down.Load()}
}

// Run forwards until ctx is done and returns ctx's error; then Shutdown
// settles what is in flight and commits.
func (f *Forwarder) Run(ctx context.Context) error {
	commitDone := make(chan struct{})
	go func() {
		defer close(commitDone)
		t := time.NewTicker(f.opts.CommitEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				f.commit()
			}
		}
	}()
	defer func() { <-commitDone }()
	backoff := f.opts.Backoff
	var recs []Record
	for {
		if err := f.takeFailure(); err != nil {
			f.errors.Add(1)
			if !f.down.Swap(true) {
				f.log.Warn("forwarding: publish failed; the records not acknowledged are kept and sent again until the engine takes them", "err", err)
			}
			f.waitInflight()
			f.src.Rewind()
			f.mu.Lock()
			clear(f.projects)
			f.failed = nil
			f.mu.Unlock()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, f.opts.MaxBackoff)
			continue
		}
		var err error
		recs, err = f.src.Read(ctx, recs[:0], f.opts.ReadMax)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		for i := range recs {
			if f.hasFailed() {
				break // the rest are read again after the rewind
			}
			r := &recs[i]
			f.track(r.Project, r.Seq)
			project, seq := r.Project, r.Seq
			if err := f.pub.Publish(ctx, r, func(err error) { f.acked(project, seq, err) }); err != nil {
				f.acked(project, seq, err)
				if ctx.Err() != nil {
					return ctx.Err()
				}
				break
			}
			f.published.Add(1)
		}
		if !f.hasFailed() && f.down.Load() {
			backoff = f.opts.Backoff
		}
	}
}

func (f *Forwarder) track(project string, seq uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.projects[project]
	if p == nil {
		p = &pending{}
		f.projects[project] = p
	}
	p.seqs = append(p.seqs, seq)
	p.done = append(p.done, false)
	f.inflight++
}

// acked settles one record: a success moves the project's position past
// every record acknowledged in a row from its first in flight.
func (f *Forwarder) acked(project string, seq uint64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inflight--
	f.cond.Broadcast()
	if err != nil {
		if f.failed == nil {
			f.failed = err
		}
		return
	}
	p := f.projects[project]
	if p == nil {
		return // settled after a rewind cleared it
	}
	for i, s := range p.seqs {
		if s == seq {
			p.done[i] = true
			break
		}
	}
	n := 0
	for n < len(p.seqs) && p.done[n] {
		n++
	}
	if n == 0 {
		return
	}
	below := p.seqs[n-1] + 1
	p.seqs, p.done = p.seqs[n:], p.done[n:]
	f.forwarded.Add(uint64(n))
	if f.failed == nil && f.down.Swap(false) {
		f.log.Info("forwarding: the engine takes records again")
	}
	f.src.Ack(project, below)
}

func (f *Forwarder) hasFailed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed != nil
}

func (f *Forwarder) takeFailure() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

func (f *Forwarder) waitInflight() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.inflight > 0 {
		f.cond.Wait()
	}
}

// Shutdown closes the Publisher, which settles the records in flight
// (until ctx is done), and commits the positions acknowledged. Call it
// after Run has returned.
func (f *Forwarder) Shutdown(ctx context.Context) error {
	err := f.pub.Close(ctx)
	if cerr := f.src.Commit(); err == nil {
		err = cerr
	}
	return err
}

func (f *Forwarder) commit() {
	if err := f.src.Commit(); err != nil && !errors.Is(err, context.Canceled) {
		f.log.Error("forwarding: cannot save the forwarded positions", "err", err)
	}
}
