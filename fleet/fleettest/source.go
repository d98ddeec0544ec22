package fleettest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/uptimizr/edge/fleet"
)

// MemSource is a fleet.Source over records held in memory, per project,
// with the positions a store keeps: what was read, acknowledged and
// committed.
type MemSource struct {
	node string

	mu        sync.Mutex
	recs      map[string][]fleet.Record // by project, seq order, seq = index
	cursor    map[string]uint64
	acked     map[string]uint64
	committed map[string]uint64
	wake      chan struct{}
}

// NewMemSource returns an empty MemSource of node's records.
func NewMemSource(node string) *MemSource {
	return &MemSource{node: node, recs: map[string][]fleet.Record{}, cursor: map[string]uint64{},
		acked: map[string]uint64{}, committed: map[string]uint64{}, wake: make(chan struct{}, 1)}
}

// Add commits n records of project, each of two events of one session.
func (s *MemSource) Add(project string, n int) {
	s.mu.Lock()
	for range n {
		seq := uint64(len(s.recs[project]))
		s.recs[project] = append(s.recs[project], NewRecord(s.node, project, seq))
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Records returns every record added, by MsgID.
func (s *MemSource) Records() map[string]fleet.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]fleet.Record{}
	for _, rs := range s.recs {
		for _, r := range rs {
			out[r.MsgID()] = r
		}
	}
	return out
}

// Acked returns the position acknowledged in project: every record below
// it is acknowledged.
func (s *MemSource) Acked(project string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked[project]
}

// Read implements fleet.Source.
func (s *MemSource) Read(ctx context.Context, dst []fleet.Record, max int) ([]fleet.Record, error) {
	for {
		s.mu.Lock()
		projects := make([]string, 0, len(s.recs))
		for p := range s.recs {
			projects = append(projects, p)
		}
		slices.Sort(projects)
		for _, p := range projects {
			for c := s.cursor[p]; c < uint64(len(s.recs[p])) && len(dst) < max; c++ {
				dst = append(dst, s.recs[p][c])
				s.cursor[p] = c + 1
			}
		}
		s.mu.Unlock()
		if len(dst) > 0 {
			return dst, nil
		}
		select {
		case <-ctx.Done():
			return dst, ctx.Err()
		case <-s.wake:
		}
	}
}

// Rewind implements fleet.Source.
func (s *MemSource) Rewind() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p := range s.cursor {
		s.cursor[p] = s.acked[p]
	}
}

// Ack implements fleet.Source; an acknowledgement that goes back panics.
func (s *MemSource) Ack(project string, below uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if below <= s.acked[project] {
		panic(fmt.Sprintf("ack of %s went back: %d after %d", project, below, s.acked[project]))
	}
	s.acked[project] = below
}

// Commit implements fleet.Source.
func (s *MemSource) Commit() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, v := range s.acked {
		s.committed[p] = v
	}
	return nil
}

// NewRecord returns the suite's record seq of project: two events of the
// project's one session, the second with a line break and a quote escaped
// in a string, as canonical JSON has them. Its body is their NDJSON, as a
// Snappy block (as a node's log keeps it) when seq is even; Events are
// what a hub must parse out of the message.
func NewRecord(node, project string, seq uint64) fleet.Record {
	session := "s-" + project
	r := fleet.Record{
		Node: node, Project: project, Seq: seq, ReceivedAt: 1765000000000 + int64(seq),
		Events: [][]byte{
			fmt.Appendf(nil, `{"type":"session_start","sessionId":%q,"ts":%d}`, session, seq),
			fmt.Appendf(nil, `{"type":"click","sessionId":%q,"ts":%d,"label":"a\nb \"c\""}`, session, seq),
		},
		Session: []byte(session),
	}
	r.Body = fleet.AppendNDJSON(nil, r.Events)
	if seq%2 == 0 {
		r.Body, r.Snappy = r.AppendSnappy(nil), true
	}
	return r
}
