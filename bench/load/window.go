package load

import (
	"sync"
	"time"
)

// WindowStats is what the measured requests that completed within one
// window of a run add up to (see Options.Window).
type WindowStats struct {
	// Index counts windows from 0; Start and End bound the window. The
	// last window of a run ends when its last request completed and may be
	// shorter than Options.Window.
	Index      int
	Start, End time.Time
	// Requests completed in the window, whatever the outcome; OK those
	// answered 2xx, Errors the others (transport errors included).
	Requests, OK, Errors int64
	// Dropped counts open-loop requests of the window not sent (late by
	// Timeout or more).
	Dropped int64
	// Events and Accepted add up the 2xx answers' batches and their
	// "accepted" counts.
	Events, Accepted int64
	// Latency of the window's requests, as in Result.Latency.
	Latency Histogram
}

// windowStats is one worker's share of the open window. The worker adds to
// it under mu; the window's collector empties it at each window's end.
type windowStats struct {
	mu                   sync.Mutex
	hist                 Histogram
	requests, ok, errors int64
	dropped              int64
	events, accepted     int64
}

func (s *windowStats) add(status int, latency time.Duration, events, accepted int64) {
	s.mu.Lock()
	s.requests++
	s.hist.Record(latency)
	if status >= 200 && status <= 299 {
		s.ok++
		s.events += events
		s.accepted += accepted
	} else {
		s.errors++
	}
	s.mu.Unlock()
}

func (s *windowStats) drop() {
	s.mu.Lock()
	s.dropped++
	s.mu.Unlock()
}

// drainInto moves the worker's share into w and empties it.
func (s *windowStats) drainInto(w *WindowStats) {
	s.mu.Lock()
	w.Latency.Merge(&s.hist)
	w.Requests += s.requests
	w.OK += s.ok
	w.Errors += s.errors
	w.Dropped += s.dropped
	w.Events += s.events
	w.Accepted += s.accepted
	if s.requests > 0 {
		s.hist.Reset()
	}
	s.requests, s.ok, s.errors, s.dropped, s.events, s.accepted = 0, 0, 0, 0, 0, 0
	s.mu.Unlock()
}

// windows closes a window every r.window from the start of the measured
// window until stop is closed, then hands over the last, partial one.
func (r *runner) windows(ws []*worker, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	var w WindowStats
	start := r.measureStart
	collect := func(end time.Time, last bool) {
		w = WindowStats{Index: w.Index, Start: start, End: end}
		for _, wk := range ws {
			wk.win.drainInto(&w)
		}
		if last && !end.After(start) && w.Requests == 0 && w.Dropped == 0 {
			return // the run ended on a window's boundary
		}
		r.onWindow(&w)
		w.Index++
		start = end
	}
	for {
		end := start.Add(r.window)
		t := time.NewTimer(time.Until(end))
		select {
		case <-t.C:
			collect(end, false)
		case <-stop:
			t.Stop()
			// Requests of the measured run all ended by now; the last
			// window ends with the last of them.
			last := start
			for _, wk := range ws {
				if wk.last.After(last) {
					last = wk.last
				}
			}
			collect(last, true)
			return
		}
	}
}
