package edge

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// A graceful shutdown (docs/OPERATIONS.md, "Shutdown"):
//
//  1. Draining: /ready turns 503. Requests already in flight (their first
//     byte read before the drain began, even if still uploading) are served
//     as usual, and their connections closed after the response. Every other
//     request on the API, on an open connection or a new one, is answered 503
//     with Retry-After and Connection: close. The listener stays open while
//     in-flight requests remain, and at least COLLECTOR_SHUTDOWN_GRACE.
//     Open live streams are ended at once (they would never end on their
//     own), each writing its last bytes within a second.
//  2. The listener closes. A connection that is idle (no request since its
//     last response, or none yet) is closed once it has been idle for
//     idleCloseAfter and has no unread bytes in the kernel: a request that
//     arrived but was not read yet is read and answered (503), never
//     dropped with the connection.
//  3. Once every connection is gone (or ctx ends), fasthttp's own shutdown
//     finishes.

// idleCloseAfter is how long a connection must have been idle before the
// drain closes it: a client that has just connected, or has just read a
// response, may be about to send.
const idleCloseAfter = 100 * time.Millisecond

// trackedConn is an accepted connection, watched by the drain.
type trackedConn struct {
	net.Conn
	// busySince is when the current request's first byte was read (Unix
	// nanoseconds); 0 while the connection waits for a request.
	busySince atomic.Int64
	// idleSince is when the connection last became idle (or was accepted).
	idleSince atomic.Int64
	closed    atomic.Bool
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.busySince.Load() == 0 {
		c.busySince.Store(time.Now().UnixNano())
	}
	return n, err
}

// connTracker is the set of open connections of a Server.
type connTracker struct {
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
	ln    net.Listener
	// acceptHook, when set (tests), sees every accepted connection.
	acceptHook func(net.Conn)
}

type trackingListener struct {
	net.Listener
	t *connTracker
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c}
	tc.idleSince.Store(time.Now().UnixNano())
	l.t.mu.Lock()
	l.t.conns[tc] = struct{}{}
	hook := l.t.acceptHook
	l.t.mu.Unlock()
	if hook != nil {
		hook(c)
	}
	return tc, nil
}

// connState is fasthttp's ConnState hook.
func (t *connTracker) connState(c net.Conn, st fasthttp.ConnState) {
	tc, ok := c.(*trackedConn)
	if !ok {
		return
	}
	switch st {
	case fasthttp.StateIdle:
		tc.idleSince.Store(time.Now().UnixNano())
		tc.busySince.Store(0)
	case fasthttp.StateClosed, fasthttp.StateHijacked:
		tc.closed.Store(true)
		t.mu.Lock()
		delete(t.conns, tc)
		t.mu.Unlock()
	}
}

// inFlight reports whether the request being served on ctx's connection
// had begun arriving before the drain started at drainStart.
func inFlight(ctx *fasthttp.RequestCtx, drainStart int64) bool {
	tc, ok := ctx.Conn().(*trackedConn)
	if !ok {
		return false
	}
	b := tc.busySince.Load()
	return b != 0 && b < drainStart
}

// drainRefuse answers a request that arrived after the drain began, on the
// API: 503, Retry-After, Connection: close. It reports whether it did.
func (s *Server) drainRefuse(ctx *fasthttp.RequestCtx, path []byte) bool {
	if !s.draining.Load() {
		return false
	}
	ctx.SetConnectionClose()
	if !isAPIPath(path) || inFlight(ctx, s.drainStart.Load()) {
		return false
	}
	s.unavailable(ctx, "shutting down: retry on another node or in a moment", 1)
	return true
}

// Shutdown drains the server (see the top of this file) and waits for
// in-flight requests to finish (their commits included) or for ctx to end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.drainStart.Store(time.Now().UnixNano())
	s.draining.Store(true)
	// Live streams never end on their own: end them now, each writing what
	// it holds within a second, so that their connections close.
	s.live.hub.close(s.live.closeGrace)
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	wait := func() error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			return nil
		}
	}
	// 1. Listener open while requests from before the drain are served.
	for time.Since(start) < s.cfg.ShutdownGrace || s.tracker.inFlight(s.drainStart.Load()) {
		if err := wait(); err != nil {
			return s.finish(ctx, err)
		}
	}
	// 2. Listener closed; idle connections closed once quiet.
	s.tracker.mu.Lock()
	ln := s.tracker.ln
	s.tracker.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for s.tracker.closeQuiet() > 0 {
		if err := wait(); err != nil {
			return s.finish(ctx, err)
		}
	}
	return s.finish(ctx, nil)
}

// finish runs fasthttp's own shutdown (everything is closed by now, unless
// ctx ended first).
func (s *Server) finish(ctx context.Context, err error) error {
	if e := s.srv.ShutdownWithContext(ctx); e != nil && err == nil && !errors.Is(e, net.ErrClosed) {
		err = e
	}
	return err
}

// inFlight reports whether a connection is serving a request whose first
// byte arrived before drainStart.
func (t *connTracker) inFlight(drainStart int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.conns {
		if b := c.busySince.Load(); b != 0 && b < drainStart {
			return true
		}
	}
	return false
}

// closeQuiet closes the connections that have been idle for idleCloseAfter
// with nothing unread, and returns how many remain open.
func (t *connTracker) closeQuiet() int {
	now := time.Now().UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.conns {
		if c.closed.Load() {
			delete(t.conns, c)
			continue
		}
		if c.busySince.Load() != 0 || now-c.idleSince.Load() < int64(idleCloseAfter) || c.unread() {
			continue
		}
		c.closed.Store(true)
		c.Conn.Close()
		delete(t.conns, c)
	}
	return len(t.conns)
}
