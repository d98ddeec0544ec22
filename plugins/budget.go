package plugins

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/experimental"

	"github.com/uptimizr/edge/core"
)

// ErrBusy: the node's plugin budget (live instances, their memory) stayed
// full for longer than a batch may wait. The batch is not the plugin's
// fault: it is neither quarantined nor stored, and the edge answers 503
// with Retry-After.
var ErrBusy = core.ErrBusy

// Budget bounds the plugin instances of the whole node, across projects:
// how many are live (busy or idle in a pool) and how much linear memory
// they hold. Memory is accounted as it is, not as it might become: an
// instance is charged its initial memory before it is made, and every
// memory.grow is charged before it happens (the host backs linear memory
// with its own allocator, see linearMemory), so the accounted bytes never
// exceed the budget, and they are what the instances really hold.
//
// When a new instance or a grow does not fit, idle instances are closed to
// make room, those of the least recently used plugin first (the pools of
// other projects included). A new instance that still does not fit waits
// for room up to the budget's wait, then fails with ErrBusy; a grow does
// not wait (it is inside a call, on the clock of its deadline): it fails,
// the guest sees memory.grow return -1, and if the call then fails it
// fails with ErrBusy. What one project can hold that cannot be evicted is
// bounded by its busy instances, which Filter's per-project concurrency
// bounds.
type Budget struct {
	maxBytes int64
	maxInst  int64
	wait     time.Duration

	mu      sync.Mutex
	bytes   int64
	inst    int64
	pools   map[*Plugin]struct{}
	changed chan struct{} // closed when room may have appeared, if anyone waits
	waiting atomic.Int32  // len(queue), for idled's fast path
	queue   []uint64      // tickets of the waiters, in arrival order
	tickets uint64

	peakBytes, peakInst                      int64
	waits, refusals, evictions, growRefusals atomic.Int64
}

// BudgetStats are a Budget's figures, for metrics.
type BudgetStats struct {
	Instances, MaxInstances    int64 // live instances (busy or idle) and the cap
	Bytes, MaxBytes            int64 // linear memory accounted, and the budget
	PeakInstances, PeakBytes   int64 // the most held at once since start
	Waits, Refusals, Evictions int64 // new instances that waited, refused (ErrBusy), idle instances closed for room
	GrowRefusals               int64 // memory.grow refused for want of room
}

func newBudget(maxBytes int64, maxInst int, wait time.Duration) *Budget {
	return &Budget{maxBytes: maxBytes, maxInst: int64(maxInst), wait: wait,
		pools: map[*Plugin]struct{}{}, changed: make(chan struct{})}
}

// Stats returns the budget's figures.
func (b *Budget) Stats() BudgetStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return BudgetStats{Instances: b.inst, MaxInstances: b.maxInst, Bytes: b.bytes, MaxBytes: b.maxBytes,
		PeakInstances: b.peakInst, PeakBytes: b.peakBytes,
		Waits: b.waits.Load(), Refusals: b.refusals.Load(), Evictions: b.evictions.Load(), GrowRefusals: b.growRefusals.Load()}
}

func (b *Budget) register(p *Plugin) {
	b.mu.Lock()
	b.pools[p] = struct{}{}
	b.mu.Unlock()
}

func (b *Budget) unregister(p *Plugin) {
	b.mu.Lock()
	delete(b.pools, p)
	b.mu.Unlock()
}

// victim returns the least recently used plugin other than self with an
// idle instance, or nil. Callers hold b.mu.
func (b *Budget) victim(self *Plugin) *Plugin {
	var v *Plugin
	var oldest int64
	for p := range b.pools {
		if p == self || len(p.idle) == 0 {
			continue
		}
		if u := p.used.Load(); v == nil || u < oldest {
			v, oldest = p, u
		}
	}
	return v
}

func (b *Budget) peak() {
	b.peakBytes = max(b.peakBytes, b.bytes)
	b.peakInst = max(b.peakInst, b.inst)
}

// reserve takes room for one new instance of self with bytes of initial
// memory, evicting idle instances and then waiting (up to b.wait) as
// needed. Waiters are served in arrival order: while any waits, a newcomer
// queues behind it even if room appears, so a wait is bounded by the calls
// ahead of it, whichever project they belong to.
func (b *Budget) reserve(bytes int64, self *Plugin) error {
	if bytes > b.maxBytes {
		b.refusals.Add(1)
		return fmt.Errorf("%w: an instance starts with %d bytes of memory, more than the whole plugin memory budget (%d)", ErrBusy, bytes, b.maxBytes)
	}
	var timer *time.Timer
	var ticket uint64 // 0: not queued
	b.mu.Lock()
	for {
		head := len(b.queue) == 0 || b.queue[0] == ticket
		if head && b.bytes+bytes <= b.maxBytes && b.inst < b.maxInst {
			b.bytes += bytes
			b.inst++
			b.peak()
			if ticket != 0 {
				b.dequeue(ticket)
			}
			b.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return nil
		}
		var v *Plugin
		if head {
			v = b.victim(self)
		}
		if v != nil {
			b.mu.Unlock()
			if v.evictOne() {
				b.evictions.Add(1)
			}
			b.mu.Lock()
			continue
		}
		if ticket == 0 {
			b.tickets++
			ticket = b.tickets
			b.queue = append(b.queue, ticket)
			b.waiting.Add(1)
			b.waits.Add(1)
			timer = time.NewTimer(b.wait)
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
			b.mu.Lock()
		case <-timer.C:
			b.mu.Lock()
			inst, used := b.inst, b.bytes
			b.dequeue(ticket)
			b.mu.Unlock()
			b.refusals.Add(1)
			return fmt.Errorf("%w: the node's plugin instances (%d of at most %d, %d of %d bytes) stayed in use for %s", ErrBusy, inst, b.maxInst, used, b.maxBytes, b.wait)
		}
	}
}

// dequeue takes a ticket out of the queue and lets the next waiter look.
// Callers hold b.mu.
func (b *Budget) dequeue(ticket uint64) {
	for i, t := range b.queue {
		if t == ticket {
			b.queue = append(b.queue[:i], b.queue[i+1:]...)
			break
		}
	}
	b.waiting.Add(-1)
	b.wake()
}

// grow charges delta more bytes of an instance of self's memory, evicting
// idle instances as needed; false when they do not fit.
func (b *Budget) grow(delta int64, self *Plugin) bool {
	for {
		b.mu.Lock()
		if b.bytes+delta <= b.maxBytes {
			b.bytes += delta
			b.peak()
			b.mu.Unlock()
			return true
		}
		v := b.victim(self)
		b.mu.Unlock()
		if v == nil {
			b.growRefusals.Add(1)
			return false
		}
		if v.evictOne() {
			b.evictions.Add(1)
		}
	}
}

// release gives back bytes of memory and, with inst, one instance.
func (b *Budget) release(bytes int64, inst bool) {
	b.mu.Lock()
	b.bytes -= bytes
	if inst {
		b.inst--
	}
	b.wake()
	b.mu.Unlock()
}

// idled tells waiters that an instance went back to a pool (and can be
// evicted). It costs an atomic load when nobody waits.
func (b *Budget) idled() {
	if b.waiting.Load() == 0 {
		return
	}
	b.mu.Lock()
	b.wake()
	b.mu.Unlock()
}

// wake wakes every waiter. Callers hold b.mu.
func (b *Budget) wake() {
	if b.waiting.Load() > 0 {
		close(b.changed)
		b.changed = make(chan struct{})
	}
}

// memAllocator backs the linear memory of one new instance (wazero calls
// it while instantiating). The instance's initial memory was reserved
// before; it becomes the memory's first charge.
type memAllocator struct {
	b        *Budget
	owner    *Plugin
	reserved int64
	mem      *linearMemory
}

func (a *memAllocator) Allocate(_, max uint64) experimental.LinearMemory {
	a.mem = &linearMemory{b: a.b, owner: a.owner, charged: a.reserved, first: true}
	a.reserved = 0
	a.mem.init(max)
	return a.mem
}

// linearMemory is an instance's linear memory, charged to the budget as it
// grows. It is reserved at its maximum size in address space only (see
// mapMemory), so a grow never copies it and its pages cost RAM only once
// the guest touches them; it is unmapped when the instance closes.
type linearMemory struct {
	b       *Budget
	owner   *Plugin
	buf     []byte // the whole reservation; the guest sees buf[:len]
	unmap   func()
	charged int64 // bytes accounted: the memory's current length
	first   bool  // the next Reallocate is the initial one (already reserved)
	refused atomic.Bool
	freed   bool
}

func (m *linearMemory) init(max uint64) { m.buf, m.unmap = mapMemory(max) }

func (m *linearMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.buf)) {
		return nil
	}
	if d := int64(size) - m.charged; d > 0 {
		if m.first {
			// The initial memory is always granted (wazero cannot fail
			// there); reserve charged it unless the module's declared
			// minimum moved, which it cannot.
			m.b.mu.Lock()
			m.b.bytes += d
			m.b.peak()
			m.b.mu.Unlock()
		} else if !m.b.grow(d, m.owner) {
			m.refused.Store(true)
			return nil
		}
		m.charged = int64(size)
	}
	m.first = false
	return m.buf[:size:size]
}

// Free gives the memory and its charge back (once).
func (m *linearMemory) Free() {
	if m.freed {
		return
	}
	m.freed = true
	m.b.release(m.charged, false)
	m.charged = 0
	if m.unmap != nil {
		m.unmap()
	}
	m.buf = nil
}
