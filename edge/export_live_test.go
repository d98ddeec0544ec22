package edge

import (
	"crypto/sha256"
	"time"
)

// LiveStreams is the number of live streams s has open.
func LiveStreams(s *Server) int { return s.live.hub.streamCount() }

// LiveTokenAt mints a live token for key's project, as POST
// /api/v1/live/token does, but expiring at exp (tests of expiry).
func LiveTokenAt(s *Server, key string, exp time.Time) string {
	h := sha256.Sum256([]byte(key))
	p, _, ok := s.live.resolver.Resolve(&h)
	if !ok {
		panic("LiveTokenAt: unknown key")
	}
	s.live.idMu.Lock()
	s.live.projects[p.ProjectNum()] = p
	s.live.idMu.Unlock()
	return s.live.sign(p.ProjectNum(), exp.UnixMilli(), h[:6])
}

// SetLiveIntervals sets how often live streams send a heartbeat (and check
// their key), a presence snapshot, and look for a closed connection.
func SetLiveIntervals(s *Server, heartbeat, presence, check time.Duration) {
	s.live.heartbeat.set(heartbeat)
	s.live.presenceEvery.set(presence)
	s.live.checkEvery.set(check)
}
