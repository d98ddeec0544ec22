package edge

import "net"

// SetAcceptHook makes f see every connection s accepts (tests tell the
// connections the server took from those a closing listener reset).
func SetAcceptHook(s *Server, f func(net.Conn)) {
	s.tracker.mu.Lock()
	s.tracker.acceptHook = f
	s.tracker.mu.Unlock()
}
