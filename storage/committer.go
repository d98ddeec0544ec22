package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/storage/ingestlog"
)

// Committer is the store's core.Sink. Requests encode their records in their
// own goroutine, then hand them to one committer goroutine that gathers every
// request waiting at that moment into one append to the ingest log's segment
// files (group commit), preceded, when retention is on, by one Badger
// transaction of the main database for the group's raw chunks: durability
// costs one write (and, with SyncWrites, one fdatasync) per store per group,
// not per request. The single writer also assigns each project's log sequence
// numbers, so the log's order is the commit order and a consumer reading from
// a checkpoint never sees a gap fill in behind it.
type Committer struct {
	s    *Store
	reqs chan *commitReq

	mu     sync.RWMutex // held shared by senders, exclusively by close
	closed bool
	done   chan struct{}

	// committer-goroutine state
	next  map[uint32]uint64  // project → next log sequence number
	round map[uint32]uint64  // project → next seq while building a round
	arena []byte             // keys of the round being built
	seqs  []uint64           // the round's sequence number of each request
	apps  []ingestlog.Append // the round's log records
	mark  []byte             // the round's intent marker value (intent.go)
	// hasPrev says the marker holds the last group, whose records made it
	// to the
	// log, deleted with the next group's chunks (or at close); stuck holds
	// the markers of failed groups whose chunks could not be deleted yet.
	hasPrev bool
	stuck   []intent
	// origins are the forwarded records committed, per node and project
	// (origin.go).
	origins map[originKey]*originSet

	// afterRaw, if set (tests), runs between a group's chunk commit and its
	// log append; an error it returns stands for a crash there: the group
	// fails and its chunks are left as a crash would leave them.
	afterRaw func() error

	// OnCommit, if set before the first Commit, observes each group commit.
	OnCommit func(d time.Duration, requests, events int, err error)

	groups   atomic.Uint64
	requests atomic.Uint64
}

// maxGroupRequests bounds one group so a transaction stays well within
// Badger's batch limits (raw chunks) and one slow group cannot hold many
// callers.
const maxGroupRequests = 256

type chunk struct {
	prefix []byte // r pnum len session minTs — seq and part are appended at commit
	val    []byte
}

type commitReq struct {
	pnum   uint32
	events int
	log    []byte
	chunks []chunk
	buf    []byte  // backing store for chunk prefixes and values
	tmp    []byte  // scratch for compression
	m      members // scratch for events validated without Capture
	idx    []int32
	err    error
	done   chan struct{}
	// origin, with hasOrigin, is where a forwarded record comes from
	// (CommitForwarded); dup is set when it was committed before.
	origin    Origin
	hasOrigin bool
	dup       bool
}

var reqPool = sync.Pool{New: func() any { return &commitReq{done: make(chan struct{}, 1)} }}

func newCommitter(s *Store, origins map[originKey]*originSet) *Committer {
	if origins == nil {
		origins = map[originKey]*originSet{}
	}
	c := &Committer{
		s:       s,
		reqs:    make(chan *commitReq, 1024),
		done:    make(chan struct{}),
		next:    map[uint32]uint64{},
		round:   map[uint32]uint64{},
		origins: origins,
	}
	go c.loop()
	return c
}

// Stats reports how many group commits and requests the committer has made.
func (c *Committer) Stats() (groups, requests uint64) { return c.groups.Load(), c.requests.Load() }

// Commit implements core.Sink: it returns once every event of b is committed
// to the ingest log (and its raw chunks to Badger, with retention on), or
// with an error wrapping core.ErrUnavailable.
func (c *Committer) Commit(ctx context.Context, b *core.Batch) error {
	return c.commit(ctx, b, nil)
}

func (c *Committer) commit(ctx context.Context, b *core.Batch, origin *Origin) error {
	if len(b.Events) == 0 {
		return nil
	}
	if err := c.s.Writable(); err != nil {
		return err
	}
	r := reqPool.Get().(*commitReq)
	r.pnum = b.ProjectNum
	r.events = len(b.Events)
	r.hasOrigin, r.dup = origin != nil, false
	compress := *c.s.opts.LogCompression
	if origin != nil {
		// A hub's record: its origin and the aggregator's part.
		r.origin = *origin
		r.log, r.tmp = encodeFullRecord(r.log[:0], r.tmp, b, &r.m, &r.origin, false, compress)
	} else if c.s.fwd != nil {
		// The forwarder sends the canonical events: the record keeps them
		// after the aggregator's part, which the fold reads alone.
		if err := c.forwardRoom(); err != nil {
			return err
		}
		if err := c.s.fwd.checkBody(b); err != nil {
			return err
		}
		// Its body is a Snappy block, the message's body as JetStream
		// carries it: compressed once here, sent as it is
		// (docs/RATIONALE.md).
		r.log, r.tmp = encodeFullRecord(r.log[:0], r.tmp, b, &r.m, nil, true, compress)
	} else {
		r.log, r.tmp = encodeLogRecord(r.log[:0], r.tmp, b, &r.m, compress)
	}
	if len(r.log) > ingestlog.MaxRecord {
		// Cannot happen within the body limit; refused alone rather than
		// failing the whole group.
		n := len(r.log)
		reqPool.Put(r)
		return fmt.Errorf("storage: batch record of %d bytes exceeds the log's limit of %d", n, ingestlog.MaxRecord)
	}
	r.chunks = r.chunks[:0]
	r.buf = r.buf[:0]
	if c.s.retainsRaw(b.ProjectID) {
		r.buildChunks(b)
	}
	r.err = nil

	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		reqPool.Put(r)
		return fmt.Errorf("%w: shutting down", core.ErrUnavailable)
	}
	select {
	case c.reqs <- r:
		c.mu.RUnlock()
	case <-ctx.Done():
		c.mu.RUnlock()
		reqPool.Put(r)
		return fmt.Errorf("%w: %v", core.ErrUnavailable, ctx.Err())
	}
	// Once queued, the request is always answered: the committer drains the
	// queue before it stops. Waiting here (not on ctx) keeps the buffers alive
	// until Badger is done with them.
	<-r.done
	err := r.err
	if err == nil && r.dup {
		err = ErrDuplicate
	}
	reqPool.Put(r)
	return err
}

// buildChunks groups b's events by session, each group ordered by ts with
// ties in arrival order, and encodes one raw chunk per session.
func (r *commitReq) buildChunks(b *core.Batch) {
	r.idx = r.idx[:0]
	for i := range b.Events {
		r.idx = append(r.idx, int32(i))
	}
	slices.SortStableFunc(r.idx, func(x, y int32) int {
		if c := bytes.Compare(b.Session(int(x)), b.Session(int(y))); c != 0 {
			return c
		}
		tx, ty := b.Events[x].TS, b.Events[y].TS
		switch {
		case tx < ty:
			return -1
		case tx > ty:
			return 1
		}
		return 0
	})
	// Offsets into r.buf, resolved to slices once r.buf stops growing.
	type span struct{ p0, p1, v0, v1 int }
	var spansArr [64]span
	spans := spansArr[:0]
	for start := 0; start < len(r.idx); {
		sess := b.Session(int(r.idx[start]))
		end := start + 1
		for end < len(r.idx) && bytes.Equal(b.Session(int(r.idx[end])), sess) {
			end++
		}
		p0 := len(r.buf)
		r.buf = append(r.buf, nsRawChunk)
		r.buf = binary.BigEndian.AppendUint32(r.buf, b.ProjectNum)
		r.buf = binary.BigEndian.AppendUint16(r.buf, uint16(len(sess)))
		r.buf = append(r.buf, sess...)
		r.buf = binary.BigEndian.AppendUint64(r.buf, uint64(b.Events[r.idx[start]].TS))
		p1 := len(r.buf)
		var v0 = len(r.buf)
		r.buf, r.tmp = encodeRecord(r.buf, r.tmp, b, r.idx[start:end], *rTrue)
		spans = append(spans, span{p0, p1, v0, len(r.buf)})
		start = end
	}
	for _, s := range spans {
		r.chunks = append(r.chunks, chunk{prefix: r.buf[s.p0:s.p1:s.p1], val: r.buf[s.v0:s.v1:s.v1]})
	}
}

var rTrue = func() *bool { t := true; return &t }()

func (c *Committer) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.reqs)
	}
	c.mu.Unlock()
	<-c.done
	// The last marker of a committed group; and one more try for failed
	// groups' chunks (the next open deletes them otherwise).
	if c.hasPrev {
		_ = c.s.db.Update(func(txn *badger.Txn) error { return txn.Delete(intentKey) })
	}
	c.retryStuck()
}

// retryStuck deletes the chunks of failed groups that an earlier attempt
// could not; it reports whether none is left.
func (c *Committer) retryStuck() bool {
	for len(c.stuck) > 0 {
		if err := c.stuck[0].undo(c.s.db); err != nil {
			return false
		}
		c.stuck = c.stuck[1:]
		c.s.log.Info("raw chunks of a failed commit deleted")
	}
	c.stuck = nil
	return true
}

func (c *Committer) loop() {
	defer close(c.done)
	group := make([]*commitReq, 0, maxGroupRequests)
	for {
		r, ok := <-c.reqs
		if !ok {
			return
		}
		group = append(group[:0], r)
	drain:
		for len(group) < maxGroupRequests {
			select {
			case r, ok := <-c.reqs:
				if !ok {
					break drain
				}
				group = append(group, r)
			default:
				break drain
			}
		}
		c.commitGroup(group)
	}
}

func (c *Committer) commitGroup(group []*commitReq) {
	start := time.Now()
	err := c.commitSplit(group)
	events := 0
	for _, r := range group {
		events += r.events
		if r.err == nil {
			r.err = err
		}
	}
	c.groups.Add(1)
	c.requests.Add(uint64(len(group)))
	if c.s.agg != nil {
		ok := 0
		for _, r := range group {
			if r.err == nil {
				ok++
				c.s.agg.markDirty(r.pnum)
			}
		}
		if ok > 0 {
			c.s.agg.poke(ok)
		}
	}
	if c.OnCommit != nil {
		c.OnCommit(time.Since(start), len(group), events, err)
	}
	for _, r := range group {
		r.done <- struct{}{}
	}
}

// commitSplit commits group in one transaction, halving it (in order) when
// Badger says the transaction is too big.
func (c *Committer) commitSplit(group []*commitReq) error {
	err := c.commitOnce(group)
	if errors.Is(err, badger.ErrTxnTooBig) {
		if len(group) == 1 {
			group[0].err = fmt.Errorf("storage: batch too large for one transaction: %w", err)
			return nil
		}
		h := len(group) / 2
		if err := c.commitSplit(group[:h]); err != nil {
			for _, r := range group {
				r.err = err
			}
			return err
		}
		return c.commitSplit(group[h:])
	}
	if errors.Is(err, core.ErrUnavailable) {
		return err // refused (the disk guard says so, once per change)
	}
	if err != nil {
		c.s.log.Error("group commit failed", "err", err, "requests", len(group))
		return fmt.Errorf("%w: commit failed: %v", core.ErrUnavailable, err)
	}
	return nil
}

func (c *Committer) commitOnce(group []*commitReq) error {
	// A closing store still commits what was queued before it closed; only a
	// disk running full stops a group here: its chunks' room in the main
	// database's mapped files is allocated first, and free space measured
	// (space.go).
	adm, err := c.admit(group)
	if err != nil {
		return err
	}
	defer adm.done()
	if !c.retryStuck() {
		// The sequence numbers those chunks carry are the next ones to use.
		return fmt.Errorf("%w: the raw chunks of a failed commit are not deleted yet", core.ErrUnavailable)
	}
	group = c.dropDuplicates(group)
	if len(group) == 0 {
		return nil
	}
	clear(c.round)
	c.arena = c.arena[:0]
	seqs := c.seqs[:0]
	for _, r := range group {
		seq, err := c.nextSeq(r.pnum)
		if err != nil {
			return err
		}
		c.round[r.pnum] = seq + 1
		seqs = append(seqs, seq)
	}
	c.seqs = seqs
	// Raw chunks first, in the main database with an intent marker, then
	// the log; when the log append fails the chunks are deleted, and a crash
	// between the two leaves a marker that the next open resolves
	// (intent.go): a request answered 503 leaves nothing, and a counted
	// request never lacks its chunks. Chunk keys carry the log sequence
	// number, which is only used once the log commit succeeds: a retry of
	// the same group (after ErrTxnTooBig) writes the same keys again.
	mark, marked, err := c.commitRaw(group, seqs)
	if err != nil {
		return err
	}
	if c.afterRaw != nil {
		if err := c.afterRaw(); err != nil {
			return err
		}
	}
	apps := c.apps[:0]
	for i, r := range group {
		apps = append(apps, ingestlog.Append{Project: r.pnum, Seq: seqs[i], Rec: r.log})
	}
	err = c.s.ilog.Append(apps)
	clear(apps) // let go of the requests' buffers
	c.apps = apps[:0]
	if err != nil {
		if marked {
			c.undoRaw(mark)
		}
		if errors.Is(err, syscall.ENOSPC) {
			c.s.space.trip("the ingest log found the disk full")
		}
		return err
	}
	if marked {
		c.hasPrev = true
	}
	for pnum, next := range c.round {
		c.next[pnum] = next
	}
	for _, r := range group {
		if r.hasOrigin {
			c.originSet(originKey{r.pnum, r.origin.Node}).add(r.origin.Seq)
		}
	}
	if c.s.fwd != nil {
		c.s.fwd.notify()
	}
	return nil
}

// dropDuplicates marks the forwarded records of group already committed
// (or twice in it) as duplicates and returns the others, in order.
func (c *Committer) dropDuplicates(group []*commitReq) []*commitReq {
	any := false
	for _, r := range group {
		any = any || r.hasOrigin
	}
	if !any {
		return group
	}
	kept := group[:0:0]
	var inGroup map[originKey]map[uint64]bool
	for _, r := range group {
		if !r.hasOrigin {
			kept = append(kept, r)
			continue
		}
		k := originKey{r.pnum, r.origin.Node}
		if c.originSet(k).has(r.origin.Seq) || inGroup[k][r.origin.Seq] {
			r.dup = true
			continue
		}
		if inGroup == nil {
			inGroup = map[originKey]map[uint64]bool{}
		}
		if inGroup[k] == nil {
			inGroup[k] = map[uint64]bool{}
		}
		inGroup[k][r.origin.Seq] = true
		kept = append(kept, r)
	}
	return kept
}

// originSet returns the committed origins of k (committer goroutine).
func (c *Committer) originSet(k originKey) *originSet {
	o := c.origins[k]
	if o == nil {
		o = &originSet{}
		c.origins[k] = o
	}
	return o
}

// ErrForwardBacklog is wrapped by the error of a commit refused because the
// log holds COLLECTOR_FORWARD_MAX_BACKLOG of records the engine has not
// acknowledged: the engine is unreachable or slower than ingest.
var ErrForwardBacklog = fmt.Errorf("%w: the forward backlog is full (the stream engine is unreachable or behind)", core.ErrUnavailable)

// forwardRoom refuses a commit while the forward backlog is at its bound.
func (c *Committer) forwardRoom() error {
	max := c.s.opts.ForwardMaxBacklog
	if max <= 0 {
		return nil
	}
	if _, b := c.s.fwd.r.Backlog(); b >= max {
		return ErrForwardBacklog
	}
	return nil
}

// admit measures free space before a group, and readies the main
// database's mapped files for the group's chunks, its intent marker and the
// deletion of the previous one.
func (c *Committer) admit(group []*commitReq) (admission, error) {
	m := c.s.mdb
	var mem, vlog int64
	if m != nil {
		mark := 0
		for _, r := range group {
			for _, ch := range r.chunks {
				k := len(ch.prefix) + 10
				mem += m.walBytes(k, len(ch.val))
				vlog += m.vlogBytes(k, len(ch.val))
				mark += binary.MaxVarintLen16 + k
			}
		}
		if mark == 0 {
			m = nil // nothing for the main database
		} else {
			mem += m.walBytes(13, mark) + m.walBytes(13, 0)
			vlog += m.vlogBytes(13, mark)
		}
	}
	return c.s.space.admit(m, forWrite, mem, vlog)
}

// commitRaw commits the group's raw chunks (retention) to the main
// database in one transaction, with the group's intent marker and the
// deletion of the previous group's. It returns the marker (nil when the
// group has no chunks).
func (c *Committer) commitRaw(group []*commitReq, seqs []uint64) (intent, bool, error) {
	first := -1
	for i, r := range group {
		if len(r.chunks) > 0 {
			first = i
			break
		}
	}
	if first < 0 {
		return intent{}, false, nil
	}
	txn := c.s.db.NewTransaction(true)
	defer txn.Discard()
	expires := expiresAt(time.Now(), c.s.opts.RetentionTTL)
	c.mark = c.mark[:0]
	for i, r := range group {
		for part, ch := range r.chunks {
			k0 := len(c.arena)
			c.arena = append(c.arena, ch.prefix...)
			c.arena = binary.BigEndian.AppendUint64(c.arena, seqs[i])
			c.arena = binary.BigEndian.AppendUint16(c.arena, uint16(part))
			k := c.arena[k0:len(c.arena):len(c.arena)]
			c.mark = binary.AppendUvarint(c.mark, uint64(len(k)))
			c.mark = append(c.mark, k...)
			e := badger.NewEntry(k, ch.val)
			e.ExpiresAt = expires
			if err := txn.SetEntry(e); err != nil {
				return intent{}, false, err
			}
		}
	}
	// The one marker key: this group's list replaces the last group's, which
	// made it to the log (a failed group's is deleted, and no group follows
	// one whose chunks could not be).
	mark := intent{key: intentKey, val: c.mark}
	if err := txn.Set(mark.key, mark.val); err != nil {
		return intent{}, false, err
	}
	if err := txn.Commit(); err != nil {
		return intent{}, false, err
	}
	c.hasPrev = false // replaced
	return mark, true, nil
}

// undoRaw deletes the chunks of a group whose log append failed, and its
// marker; when that fails too, the committer holds every later group
// until a retry succeeds (retryStuck).
func (c *Committer) undoRaw(mark intent) {
	err := mark.undo(c.s.db)
	if err == nil {
		return
	}
	c.s.log.Error("cannot delete the raw chunks of a failed commit; refusing writes until they are", "err", err)
	c.stuck = append(c.stuck, intent{key: bytes.Clone(mark.key), val: bytes.Clone(mark.val)})
}

// nextSeq returns the next sequence number of a project's log within the
// round being built, loading the persisted high-water mark on first use.
func (c *Committer) nextSeq(pnum uint32) (uint64, error) {
	if n, ok := c.round[pnum]; ok {
		return n, nil
	}
	if n, ok := c.next[pnum]; ok {
		return n, nil
	}
	// One past the highest record in the log, or the aggregator's
	// checkpoint when it is higher: every record below it has been folded,
	// and a segment is deleted only once all of its records have been.
	n, err := c.s.checkpoint(pnum)
	if err != nil {
		return 0, err
	}
	if last, ok := c.s.ilog.LastSeq(pnum); ok && last+1 > n {
		n = last + 1
	}
	c.next[pnum] = n
	return n, nil
}

// RawPrefix returns the key prefix of one session's raw chunks.
func RawPrefix(pnum uint32, session []byte) []byte {
	k := binary.BigEndian.AppendUint32([]byte{nsRawChunk}, pnum)
	k = binary.BigEndian.AppendUint16(k, uint16(len(session)))
	return append(k, session...)
}
