package storage

import (
	"container/heap"
	"encoding/binary"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/klauspost/compress/s2"
)

// Raw reads the raw per-session streams the committer writes when retention
// is on. A session's stream is stored as chunks, one per (session, request):
//
//	r <pnum:4> <len:2> <sessionID> <minTs:8> <seq:8> <part:2>
//
// Each chunk holds that request's events of the session sorted by ts, ties in
// arrival order; keys order a session's chunks by first ts, then log sequence
// number. Chunks of different requests may overlap in ts, so the stream is
// read back with a k-way merge that opens a chunk only once no event before
// its first ts is left: memory is bounded by the number of chunks that
// overlap at one point in time, not by the length of the session.
//
// Expired chunks (RAW_RETENTION_DAYS, a Badger TTL) are invisible to reads at
// once; their space comes back through compaction and value-log GC (gc.go).
type Raw struct{ s *Store }

// Raw returns the reader of raw session streams.
func (s *Store) Raw() *Raw { return &Raw{s: s} }

// rawKeySuffix is the length of <minTs:8> <seq:8> <part:2> after a session's
// prefix.
const rawKeySuffix = 8 + 8 + 2

// maxRawSession is the longest session id a chunk key can hold. Event
// validation bounds ids far below it (128 UTF-16 units).
const maxRawSession = 1<<16 - 1

// HasSession reports whether the project holds any (unexpired) raw chunk of
// the session.
func (r *Raw) HasSession(projectNum uint32, sessionID []byte) (bool, error) {
	if len(sessionID) == 0 || len(sessionID) > maxRawSession {
		return false, nil
	}
	prefix := RawPrefix(projectNum, sessionID)
	found := false
	err := r.s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		it.Rewind()
		found = it.Valid()
		return nil
	})
	return found, err
}

// SessionEvents calls fn, in stored order, for each event of the session
// whose ts is within [since, until]: ordered by ts, equal ts in arrival order
// (log sequence, then position in the request). fn's slice is valid only
// during the call. The first error fn returns stops the read and is returned
// as is. All events are read from one consistent snapshot.
func (r *Raw) SessionEvents(projectNum uint32, sessionID []byte, since, until int64, fn func(ts int64, event []byte) error) error {
	if len(sessionID) == 0 || len(sessionID) > maxRawSession || since > until {
		return nil
	}
	return r.s.db.View(func(txn *badger.Txn) error {
		return mergeSession(txn, RawPrefix(projectNum, sessionID), since, until, fn)
	})
}

// mergeSession is the k-way merge of one session's chunks under prefix.
func mergeSession(txn *badger.Txn, prefix []byte, since, until int64, fn func(int64, []byte) error) error {
	// Values are fetched one chunk at a time as the merge reaches it.
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
	defer it.Close()
	var (
		h    cursorHeap
		free []*chunkCursor // cursors done with, kept for their buffers
		raw  []byte         // the stored (compressed) value being opened
	)
	it.Rewind()
	for {
		// Open every chunk that could hold an event at or before the
		// smallest ts pending: keys order chunks by their first ts.
		for it.Valid() {
			item := it.Item()
			key := item.Key()
			if len(key) != len(prefix)+rawKeySuffix {
				return fmt.Errorf("%w: raw chunk key of %d bytes", ErrCorruptRecord, len(key))
			}
			sfx := key[len(prefix):]
			minTs := int64(binary.BigEndian.Uint64(sfx[0:8]))
			if minTs > until || (len(h) > 0 && minTs > h[0].ts) {
				break
			}
			var c *chunkCursor
			if n := len(free); n > 0 {
				c, free = free[n-1], free[:n-1]
			} else {
				c = new(chunkCursor)
			}
			var err error
			if raw, err = item.ValueCopy(raw[:0]); err != nil {
				return err
			}
			c.seq = binary.BigEndian.Uint64(sfx[8:16])
			c.part = binary.BigEndian.Uint16(sfx[16:18])
			if err := c.open(raw); err != nil {
				return err
			}
			// Events before since are skipped without entering the heap.
			ok, err := c.next()
			for ok && err == nil && c.ts < since {
				ok, err = c.next()
			}
			if err != nil {
				return err
			}
			if ok {
				heap.Push(&h, c)
			} else {
				free = append(free, c)
			}
			it.Next()
		}
		if len(h) == 0 {
			return nil
		}
		c := h[0]
		if c.ts > until {
			return nil
		}
		if err := fn(c.ts, c.json); err != nil {
			return err
		}
		ok, err := c.next()
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
			free = append(free, c)
		}
	}
}

// chunkCursor walks the events of one decoded raw chunk.
type chunkCursor struct {
	seq  uint64
	part uint16

	buf  []byte       // decompressed body (owned, reused)
	rd   recordReader // the rest of the body
	left uint64       // events not yet read

	// current event
	ts   int64
	json []byte
}

// open decodes the record header of a stored chunk value. val may be reused
// by the caller afterwards.
func (c *chunkCursor) open(val []byte) error {
	if len(val) < 2 || val[0] != recordVersion {
		return ErrCorruptRecord
	}
	body := val[2:]
	if val[1]&flagCompressedS != 0 {
		n, err := s2.DecodedLen(body)
		if err != nil || n > 64<<20 {
			return fmt.Errorf("%w: %v", ErrCorruptRecord, err)
		}
		if cap(c.buf) < n {
			c.buf = make([]byte, n)
		}
		if c.buf, err = s2.Decode(c.buf[:n], body); err != nil {
			return fmt.Errorf("%w: %v", ErrCorruptRecord, err)
		}
	} else {
		c.buf = append(c.buf[:0], body...)
	}
	c.rd = recordReader{c.buf}
	if _, ok := c.rd.uvarint(); !ok { // receivedAt
		return ErrCorruptRecord
	}
	n, ok := c.rd.uvarint()
	if !ok || n > uint64(len(c.rd.b)) {
		return ErrCorruptRecord
	}
	c.left = n
	return nil
}

// next moves to the chunk's next event; false at the end.
func (c *chunkCursor) next() (bool, error) {
	if c.left == 0 {
		if len(c.rd.b) != 0 {
			return false, ErrCorruptRecord
		}
		return false, nil
	}
	c.left--
	if len(c.rd.b) == 0 {
		return false, ErrCorruptRecord
	}
	c.rd.b = c.rd.b[1:] // type
	ts, ok := c.rd.uvarint()
	if !ok || ts > 1<<62 {
		return false, ErrCorruptRecord
	}
	if _, ok := c.rd.bytes(); !ok { // sessionId: the key already names it
		return false, ErrCorruptRecord
	}
	js, ok := c.rd.bytes()
	if !ok {
		return false, ErrCorruptRecord
	}
	c.ts, c.json = int64(ts), js
	return true, nil
}

// cursorHeap orders open chunks by their current event: ts, then log
// sequence (arrival order of the requests), then part.
type cursorHeap []*chunkCursor

func (h cursorHeap) Len() int { return len(h) }
func (h cursorHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if a.ts != b.ts {
		return a.ts < b.ts
	}
	if a.seq != b.seq {
		return a.seq < b.seq
	}
	return a.part < b.part
}
func (h cursorHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)   { *h = append(*h, x.(*chunkCursor)) }
func (h *cursorHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return c
}
