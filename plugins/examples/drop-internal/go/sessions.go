package main

// sessionSet remembers up to max session ids; adding one more forgets the
// oldest.
type sessionSet struct {
	ids  map[string]struct{}
	ring []string // in insertion order, from next
	next int
	max  int
}

func newSessionSet(max int) *sessionSet {
	return &sessionSet{ids: map[string]struct{}{}, max: max}
}

func (s *sessionSet) len() int { return len(s.ids) }

func (s *sessionSet) has(id []byte) bool {
	_, ok := s.ids[string(id)]
	return ok
}

func (s *sessionSet) add(id []byte) {
	if s.has(id) {
		return
	}
	k := string(id)
	if len(s.ring) < s.max {
		s.ring = append(s.ring, k)
	} else {
		delete(s.ids, s.ring[s.next])
		s.ring[s.next] = k
		s.next = (s.next + 1) % s.max
	}
	s.ids[k] = struct{}{}
}
