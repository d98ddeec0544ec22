package storage

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/storage/ingestlog"
)

// forwardReader is the ingest-log reader of the fleet forwarder: its
// checkpoint is DATA_DIR/ingest/readers/forward.
const forwardReader = "forward"

// ForwardRecord is one committed record as the fleet forwarder sends it:
// its project, its sequence number in the project's log, when it was
// accepted, and its canonical events as the message's body.
type ForwardRecord struct {
	Project    string
	Seq        uint64
	ReceivedAt int64 // Unix milliseconds
	// Body is the canonical events as NDJSON, one per line: a Snappy block
	// of it when Snappy is set (fleet.Record).
	Body    []byte
	Snappy  bool
	Session []byte // the first event's session id
}

// Forward is the ingest log as the fleet forwarder reads it (Options.Forward):
// records in each project's order from where the forwarder's last
// acknowledged position is, kept in the log until it is past them.
type Forward struct {
	s *Store
	r *ingestlog.Reader

	mu      sync.Mutex
	cursor  map[uint32]uint64 // where Read goes on, per project
	ids     map[uint32]string // project numbers' ids
	nums    map[string]uint32
	ents    []ingestlog.Entry
	buf     []byte   // the frame being read
	scratch []byte   // its decompressed body
	arena   []byte   // the bodies and sessions of one Read
	spans   [][4]int // each record's body and session id, in the arena
	pnums   []uint32

	// wake is signalled after each append (committer).
	wake chan struct{}
	// unforwardable counts the records read that hold no canonical events
	// (written while forwarding was off), skipped.
	unforwardable atomic.Uint64
	// maxBody bounds a record's message body (SetMaxBody); 0: none.
	maxBody atomic.Int64
}

func newForward(s *Store, r *ingestlog.Reader) (*Forward, error) {
	f := &Forward{s: s, r: r, cursor: map[uint32]uint64{}, ids: map[uint32]string{}, nums: map[string]uint32{}, wake: make(chan struct{}, 1)}
	if r.Fresh() {
		// Forwarding is new to this log: it forwards what is committed from
		// now on. The records already in the log were written without their
		// canonical events, and were never meant to leave the node.
		for _, p := range s.ilog.Projects(nil) {
			if last, ok := s.ilog.LastSeq(p); ok {
				r.Advance(p, last+1)
			}
		}
		if err := r.Commit(); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// SetMaxBody bounds the canonical events of a record (the message body's
// bytes: each event and a newline) to what one message of the engine
// carries; past it, a commit is refused with core.ErrTooLarge rather than
// accepted and never sent. 0 lifts the bound.
func (f *Forward) SetMaxBody(n int64) { f.maxBody.Store(n) }

// checkBody refuses a batch whose record would not fit in one message.
func (f *Forward) checkBody(b *core.Batch) error {
	max := f.maxBody.Load()
	if max <= 0 {
		return nil
	}
	var n int64
	for i := range b.Events {
		n += int64(len(b.JSON(i))) + 1
	}
	if n > max {
		return fmt.Errorf("%w: the batch's events take %d bytes as the fleet's stream carries them, over the %d one message may hold; send smaller batches", core.ErrTooLarge, n, max)
	}
	return nil
}

// Forward returns the forwarder's view of the log, or nil when the store
// was opened without Options.Forward.
func (s *Store) Forward() *Forward { return s.fwd }

// notify wakes a Read waiting for records.
func (f *Forward) notify() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Read appends to dst up to max records not read yet, in each project's
// order, waiting until there is at least one or ctx is done. The events
// alias the Forward's buffers until the next Read.
func (f *Forward) Read(ctx context.Context, dst []ForwardRecord, max int) ([]ForwardRecord, error) {
	for {
		f.mu.Lock()
		out, err := f.readLocked(dst, max)
		f.mu.Unlock()
		if err != nil || len(out) > len(dst) {
			return out, err
		}
		select {
		case <-ctx.Done():
			return dst, ctx.Err()
		case <-f.wake:
		}
	}
}

func (f *Forward) readLocked(dst []ForwardRecord, max int) ([]ForwardRecord, error) {
	f.arena, f.spans = f.arena[:0], f.spans[:0]
	start := len(dst)
	f.pnums = f.r.Projects(f.pnums[:0])
	for _, pnum := range f.pnums {
		if len(dst)-start >= max {
			break
		}
		from, ok := f.cursor[pnum]
		if !ok {
			from = f.r.Next(pnum)
		}
		f.ents = f.s.ilog.Pending(f.ents[:0], pnum, from, max-(len(dst)-start))
		for _, e := range f.ents {
			rec, buf, err := f.s.ilog.Read(f.buf, pnum, e)
			f.buf = buf
			if err != nil {
				return dst, err
			}
			f.cursor[pnum] = e.Seq + 1
			if !forwardable(rec) {
				// Written while forwarding was off (a version-2 record): the
				// aggregator folds it; there is nothing to forward.
				f.unforwardable.Add(1)
				f.r.Advance(pnum, e.Seq+1)
				continue
			}
			fr := ForwardRecord{Seq: e.Seq}
			if fr.ReceivedAt, fr.Snappy, err = f.appendMessage(rec); err != nil {
				return dst, fmt.Errorf("forward: record %d of project %d: %w", e.Seq, pnum, err)
			}
			if fr.Project, err = f.projectID(pnum); err != nil {
				return dst, err
			}
			dst = append(dst, fr)
		}
	}
	// The arena is complete: cut the bodies and sessions out of it.
	for i := start; i < len(dst); i++ {
		sp := f.spans[i-start]
		dst[i].Body = f.arena[sp[0]:sp[1]:sp[1]]
		dst[i].Session = f.arena[sp[2]:sp[3]:sp[3]]
	}
	return dst, nil
}

// appendMessage appends a forwardable record's body and first session id
// to the arena, and their spans to f.spans. A version-5 record holds them
// as they are sent; the events of a version-4 or version-1 record (written
// by an earlier release) are written out as NDJSON.
func (f *Forward) appendMessage(rec []byte) (receivedAt int64, snappy bool, err error) {
	if r, ok := splitFullRecord(rec); ok && r.version == fullRecordVersion {
		if !r.hasEvents {
			return 0, false, ErrCorruptRecord
		}
		b := len(f.arena)
		f.arena = append(f.arena, r.body...)
		s := len(f.arena)
		f.arena = append(f.arena, r.session...)
		f.spans = append(f.spans, [4]int{b, s, s, len(f.arena)})
		return r.receivedAt, r.bodySnappy, nil
	}
	b := len(f.arena)
	var sess []byte
	first := true
	receivedAt, f.scratch, err = DecodeRecord(rec, f.scratch, func(re RecordEvent) error {
		if first {
			sess, first = re.Session, false
		}
		f.arena = append(f.arena, re.JSON...)
		f.arena = append(f.arena, '\n')
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	s := len(f.arena)
	f.arena = append(f.arena, sess...)
	f.spans = append(f.spans, [4]int{b, s, s, len(f.arena)})
	return receivedAt, false, nil
}

// projectID returns the id of project number pnum.
func (f *Forward) projectID(pnum uint32) (string, error) {
	if id, ok := f.ids[pnum]; ok {
		return id, nil
	}
	for _, p := range f.s.reg.Projects() {
		f.ids[p.Num], f.nums[p.ID] = p.ID, p.Num
	}
	if id, ok := f.ids[pnum]; ok {
		return id, nil
	}
	return "", fmt.Errorf("forward: project number %d is not in the registry", pnum)
}

// Rewind makes the next Read start again at every project's first record
// not acknowledged.
func (f *Forward) Rewind() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.cursor)
}

// Ack says the engine has every record of project below seq below.
func (f *Forward) Ack(project string, below uint64) {
	f.mu.Lock()
	pnum, ok := f.nums[project]
	f.mu.Unlock()
	if ok {
		f.r.Advance(pnum, below)
	}
}

// Commit makes the acknowledged positions durable.
func (f *Forward) Commit() error { return f.r.Commit() }

// ForwardStats are the forward reader's figures.
type ForwardStats struct {
	// Backlog and BacklogBytes: the records (and their bytes in the log)
	// not yet acknowledged by the engine, as last committed.
	Backlog      int
	BacklogBytes int64
	// Unforwardable: records skipped because they hold no canonical events.
	Unforwardable uint64
}

// Stats returns the forward reader's figures.
func (f *Forward) Stats() ForwardStats {
	n, b := f.r.Backlog()
	return ForwardStats{Backlog: n, BacklogBytes: b, Unforwardable: f.unforwardable.Load()}
}
