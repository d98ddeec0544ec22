package plugins

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/internal/jsonvalue"
)

// Quarantine keeps failed batches apart. The storage implements it.
type Quarantine interface {
	Put(ctx context.Context, pnum uint32, plugin string, version int, reason string, b *core.Batch) error
}

// Chain is a project's ordered plugins. It is immutable: activation swaps
// in a new chain, so each batch runs wholly on the old or the new one.
type Chain struct {
	Plugins []*Plugin
}

// Filter is the core.Filter the edge calls: it runs each project's chain.
type Filter struct {
	q      Quarantine
	log    *slog.Logger
	chains atomic.Pointer[map[uint32]*Chain]
	mu     sync.Mutex // serialises chain swaps
	pool   sync.Pool  // *runState
	cap    *core.Capture

	// Per-project concurrency: at most conc chains of one project run at
	// once (gates, by project number), so that a project whose plugins
	// spin takes at most conc cores, and holds at most conc busy
	// instances of the budget; a batch waits up to wait for its turn, then
	// fails with ErrBusy.
	conc                int
	wait                time.Duration
	gates               sync.Map // uint32 → chan struct{}
	gateWaits, gateBusy atomic.Int64
	budgetBusy          atomic.Int64
}

// FilterStats are the per-project concurrency figures of a Filter.
type FilterStats struct {
	Waits    int64 // batches that waited for their project's turn
	Refusals int64 // batches refused (ErrBusy) after waiting
	Busy     int64 // batches refused because the budget stayed full
}

// SetProjectConcurrency bounds how many batches of one project run their
// chain at once (k ≤ 0: no bound) and how long a batch waits for its turn.
// Call it before use.
func (f *Filter) SetProjectConcurrency(k int, wait time.Duration) {
	f.conc, f.wait = k, wait
}

// Stats returns the filter's figures.
func (f *Filter) Stats() FilterStats {
	return FilterStats{Waits: f.gateWaits.Load(), Refusals: f.gateBusy.Load(), Busy: f.budgetBusy.Load()}
}

func (f *Filter) gate(pnum uint32) chan struct{} {
	if f.conc <= 0 {
		return nil
	}
	if g, ok := f.gates.Load(pnum); ok {
		return g.(chan struct{})
	}
	g, _ := f.gates.LoadOrStore(pnum, make(chan struct{}, f.conc))
	return g.(chan struct{})
}

// enter takes one of the project's turns, waiting up to f.wait.
func (f *Filter) enter(g chan struct{}) error {
	select {
	case g <- struct{}{}:
		return nil
	default:
	}
	f.gateWaits.Add(1)
	t := time.NewTimer(f.wait)
	defer t.Stop()
	select {
	case g <- struct{}{}:
		return nil
	case <-t.C:
		f.gateBusy.Add(1)
		return fmt.Errorf("%w: this project already runs %d batches through its plugins, and none finished within %s", ErrBusy, cap(g), f.wait)
	}
}

// SetCapture makes re-validated events carry the fields c names (see
// core.Capture), as events validated at ingest do. Call it before use.
func (f *Filter) SetCapture(c *core.Capture) { f.cap = c }

// NewFilter returns a Filter with no chains.
func NewFilter(q Quarantine, log *slog.Logger) *Filter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Filter{q: q, log: log}
	empty := map[uint32]*Chain{}
	f.chains.Store(&empty)
	f.pool.New = func() any {
		st := new(runState)
		st.proc.SetCapture(f.cap)
		return st
	}
	return f
}

// SetChain makes c the project's chain (nil or empty removes it). Batches
// already running keep the chain they started with.
func (f *Filter) SetChain(pnum uint32, c *Chain) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := *f.chains.Load()
	next := make(map[uint32]*Chain, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	if c == nil || len(c.Plugins) == 0 {
		delete(next, pnum)
	} else {
		next[pnum] = c
	}
	f.chains.Store(&next)
}

// Chain returns the project's current chain, or nil.
func (f *Filter) Chain(pnum uint32) *Chain { return (*f.chains.Load())[pnum] }

// runState is the pooled scratch of one Apply.
type runState struct {
	in, out []byte
	orig    core.Batch // the batch as it entered the chain (for quarantine)
	next    core.Batch
	proc    core.Processor
	parser  jsonvalue.Parser // reads string escapes strictly, as the edge does
}

// Apply runs the project's chain over b in place. A plugin failure is
// handled by that plugin's policy. Apply returns an error when a
// quarantine cannot be stored, and one wrapping ErrBusy when the batch
// could not run for want of room (its project's turn, or the node's
// budget): the request then fails as a whole, and nothing of the batch is
// kept or quarantined.
func (f *Filter) Apply(ctx context.Context, b *core.Batch) error {
	chain := f.Chain(b.ProjectNum)
	if chain == nil || len(b.Events) == 0 {
		return nil
	}
	if g := f.gate(b.ProjectNum); g != nil {
		if err := f.enter(g); err != nil {
			return err
		}
		defer func() { <-g }()
	}
	st := f.pool.Get().(*runState)
	defer f.pool.Put(st)
	copyBatch(&st.orig, b)
	for _, p := range chain.Plugins {
		err := f.runOne(ctx, st, p, b)
		if err == nil {
			continue
		}
		if errors.Is(err, ErrBusy) {
			f.budgetBusy.Add(1)
			return fmt.Errorf("plugin %s: %w", p.Name, err)
		}
		f.log.Warn("plugin failed", "project_num", b.ProjectNum, "plugin", p.Name, "version", p.Version, "policy", p.Policy.String(), "err", err)
		switch p.Policy {
		case PolicyPass:
			continue
		case PolicyDrop:
			b.Filtered += len(b.Events)
			b.Events = b.Events[:0]
			return nil
		default:
			if f.q == nil {
				return fmt.Errorf("plugin %s failed and no quarantine is configured: %w", p.Name, err)
			}
			if qerr := f.q.Put(ctx, b.ProjectNum, p.Name, p.Version, err.Error(), &st.orig); qerr != nil {
				return fmt.Errorf("quarantine: %w", qerr)
			}
			b.Quarantined += len(st.orig.Events)
			b.Events = b.Events[:0]
			return nil
		}
	}
	return nil
}

func copyBatch(dst, src *core.Batch) {
	dst.Reset()
	dst.ProjectID, dst.ProjectNum, dst.ReceivedAt, dst.Info = src.ProjectID, src.ProjectNum, src.ReceivedAt, src.Info
	for i := range src.Events {
		dst.AppendEventFrom(src, i)
	}
}

// runOne runs one plugin over b and, on success, replaces b's events with
// the plugin's verdicts. On error b is unchanged.
func (f *Filter) runOne(ctx context.Context, st *runState, p *Plugin, b *core.Batch) error {
	st.in = encodeBatch(st.in[:0], b)
	var err error
	st.out, err = p.Run(ctx, st.in, st.out[:0])
	if err != nil {
		return err
	}
	dropped, err := applyOutput(st, b, st.out)
	if err != nil {
		return err
	}
	// The output is good: adopt it.
	info, proj, recv := b.Info, b.ProjectID, b.ReceivedAt
	q, filtered, pnum := b.Quarantined, b.Filtered, b.ProjectNum
	b.Buf, st.next.Buf = st.next.Buf, b.Buf
	b.Events, st.next.Events = st.next.Events, b.Events
	b.Spans, st.next.Spans = st.next.Spans, b.Spans
	b.Info, b.ProjectID, b.ReceivedAt, b.ProjectNum = info, proj, recv, pnum
	b.Quarantined, b.Filtered = q, filtered+dropped
	return nil
}

// encodeBatch writes the ABI's input encoding of b.
func encodeBatch(dst []byte, b *core.Batch) []byte {
	dst = appendU32(dst, 1)
	dst = appendU32(dst, uint32(len(b.Events)))
	for i := range b.Events {
		js := b.JSON(i)
		dst = appendU32(dst, uint32(len(js)))
		dst = append(dst, js...)
	}
	return dst
}

var errShort = errors.New("output truncated")

// applyOutput decodes the guest's verdicts into st.next, re-validating every
// replacement and enforcing the immutable fields. It returns how many events
// the plugin dropped.
func applyOutput(st *runState, b *core.Batch, out []byte) (int, error) {
	st.next.Reset()
	st.next.ProjectID, st.next.ProjectNum = b.ProjectID, b.ProjectNum
	if len(out) < 4 {
		return 0, fmt.Errorf("%w: %v", ErrBadOutput, errShort)
	}
	n := binary.LittleEndian.Uint32(out)
	out = out[4:]
	if int(n) != len(b.Events) {
		return 0, fmt.Errorf("%w: %d verdicts for %d events", ErrBadOutput, n, len(b.Events))
	}
	info := b.Info
	if info == nil {
		info = &core.RequestInfo{ProjectID: b.ProjectID, Channels: core.AllChannels()}
	}
	st.proc.Begin(&st.next, info)
	dropped := 0
	for i := 0; i < int(n); i++ {
		if len(out) < 1 {
			return 0, fmt.Errorf("%w: %v", ErrBadOutput, errShort)
		}
		op := out[0]
		out = out[1:]
		switch op {
		case 0:
			st.next.AppendEventFrom(b, i)
		case 1:
			dropped++
		case 2:
			if len(out) < 4 {
				return 0, fmt.Errorf("%w: %v", ErrBadOutput, errShort)
			}
			l := binary.LittleEndian.Uint32(out)
			out = out[4:]
			if uint64(l) > uint64(len(out)) {
				return 0, fmt.Errorf("%w: %v", ErrBadOutput, errShort)
			}
			js := out[:l]
			out = out[l:]
			if err := st.revalidate(info, b, i, js); err != nil {
				return 0, fmt.Errorf("%w: event %d: %v", ErrBadOutput, i, err)
			}
		default:
			return 0, fmt.Errorf("%w: unknown op %d for event %d", ErrBadOutput, op, i)
		}
	}
	if len(out) != 0 {
		return 0, fmt.Errorf("%w: %d trailing bytes", ErrBadOutput, len(out))
	}
	return dropped, nil
}

// revalidate checks a replacement of event i and appends it to st.next.
func (st *runState) revalidate(info *core.RequestInfo, b *core.Batch, i int, js []byte) error {
	v, err := st.parser.ParseBytes(js)
	if err != nil {
		return fmt.Errorf("not JSON: %v", err)
	}
	// projectId and visitorId are stamped by the validator from the request;
	// a replacement that tries to change them is refused, not corrected.
	if p := v.GetStringBytes("projectId"); !bytes.Equal(p, []byte(b.ProjectID)) {
		return errors.New("projectId changed")
	}
	if vid := v.GetStringBytes("visitorId"); !bytes.Equal(vid, info.VisitorID[:]) {
		return errors.New("visitorId changed")
	}
	orig := &b.Events[i]
	before := len(st.next.Events)
	out, t, reason := st.proc.Add(jsonvalue.Wrap(v))
	switch {
	case out == core.Rejected:
		return fmt.Errorf("invalid: %s", reason.String())
	case out == core.Filtered || len(st.next.Events) != before+1:
		return errors.New("changed into an event its project does not collect")
	}
	got := &st.next.Events[before]
	switch {
	case t != orig.Type:
		return errors.New("type changed")
	case got.TS != orig.TS:
		return errors.New("ts changed")
	case !bytes.Equal(st.next.Session(before), b.Session(i)):
		return errors.New("sessionId changed")
	}
	return nil
}
