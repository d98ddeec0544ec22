package edge

import (
	"sync"
	"sync/atomic"
	"time"
)

// admission shares the ingest slots between projects. A request is
// admitted once it is authenticated, so its project is known: it takes a
// free slot at once if its project holds fewer than perProject; otherwise
// it waits, and slots that come free go to the waiting request that
// arrived first among the projects under their share. So no project ever
// holds more than perProject slots (by default half), and a project whose
// requests are slow (plugins that spin until their deadline) leaves the
// other half to the others: their requests wait only behind each other.
type admission struct {
	mu         sync.Mutex
	free       int
	perProject int32
	projects   map[uint32]*projectSlots
	queued     []*projectSlots // projects with waiting requests
	seq        uint64
	spare      []*admitWaiter

	waits atomic.Int64 // admissions that waited (also per project)
}

type projectSlots struct {
	held  int32
	queue []*admitWaiter
	waits int64 // admissions of this project that waited
}

type admitWaiter struct {
	seq     uint64
	ps      *projectSlots
	ready   chan struct{}
	granted bool
}

func newAdmission(slots, perProject int) *admission {
	return &admission{free: slots, perProject: int32(perProject), projects: map[uint32]*projectSlots{}}
}

// acquire takes a slot for project pnum, waiting up to wait. It reports
// whether it got one and whether it had to wait.
func (a *admission) acquire(pnum uint32, wait time.Duration) (ok, waited bool) {
	a.mu.Lock()
	ps := a.projects[pnum]
	if ps == nil {
		ps = &projectSlots{}
		a.projects[pnum] = ps
	}
	if a.free > 0 && ps.held < a.perProject {
		// While a slot is free, no waiter can take it (release hands free
		// slots to every waiter that can): taking it jumps no queue.
		a.free--
		ps.held++
		a.mu.Unlock()
		return true, false
	}
	w := a.waiter()
	a.seq++
	w.seq, w.ps, w.granted = a.seq, ps, false
	if len(ps.queue) == 0 {
		a.queued = append(a.queued, ps)
	}
	ps.queue = append(ps.queue, w)
	ps.waits++
	a.mu.Unlock()
	a.waits.Add(1)

	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-w.ready:
		a.mu.Lock()
		a.spare = append(a.spare, w)
		a.mu.Unlock()
		return true, true
	case <-t.C:
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if w.granted { // granted as the timer fired
		<-w.ready
		a.spare = append(a.spare, w)
		return true, true
	}
	for i, q := range ps.queue {
		if q == w {
			ps.queue = append(ps.queue[:i], ps.queue[i+1:]...)
			break
		}
	}
	if len(ps.queue) == 0 {
		a.unqueue(ps)
	}
	a.spare = append(a.spare, w)
	return false, true
}

func (a *admission) waiter() *admitWaiter {
	if n := len(a.spare); n > 0 {
		w := a.spare[n-1]
		a.spare = a.spare[:n-1]
		return w
	}
	return &admitWaiter{ready: make(chan struct{}, 1)}
}

// release gives back a slot of project pnum and hands free slots to the
// waiters that may take them, first come first served.
func (a *admission) release(pnum uint32) {
	a.mu.Lock()
	a.projects[pnum].held--
	a.free++
	for a.free > 0 {
		var next *projectSlots
		for _, ps := range a.queued {
			if ps.held < a.perProject && (next == nil || ps.queue[0].seq < next.queue[0].seq) {
				next = ps
			}
		}
		if next == nil {
			break
		}
		w := next.queue[0]
		next.queue = next.queue[1:]
		if len(next.queue) == 0 {
			next.queue = nil
			a.unqueue(next)
		}
		a.free--
		next.held++
		w.granted = true
		w.ready <- struct{}{}
	}
	a.mu.Unlock()
}

func (a *admission) unqueue(ps *projectSlots) {
	for i, q := range a.queued {
		if q == ps {
			a.queued = append(a.queued[:i], a.queued[i+1:]...)
			return
		}
	}
}

// projectWaits is how many admissions of project pnum have waited.
func (a *admission) projectWaits(pnum uint32) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ps := a.projects[pnum]; ps != nil {
		return ps.waits
	}
	return 0
}
