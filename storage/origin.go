package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/storage/ingestlog"
)

// A hub commits records forwarded by the fleet's nodes. Each carries its
// origin: the node it came from and its sequence number in its project's
// log there. A stream engine delivers at least once (a redelivery after the
// hub's acknowledgement was lost; a node that sends again what it had sent
// before a crash; JetStream's duplicate window is bounded, Kafka's
// idempotence holds within one producer session), so the hub keeps, per
// node and project, which origins it has committed, and commits each once.
//
// The state is kept where the records are. A hub's log record (version 4,
// fullrecord.go) carries its origin before the aggregator's part, and the
// aggregator's fold writes the origins it folded into the same
// transaction as the fold (key n <pnum:4> <node> → originSet). At open the
// committer's state is the folded sets and the origins of the records in
// the log not folded yet: a record is known committed exactly when it is.

// nsOrigin holds, in the aggregates database, the origins folded per node
// and project.
const nsOrigin = 'n' // n <pnum:4> <node> → originSet

// Origin is where a forwarded record comes from.
type Origin struct {
	Node string // the node id
	Seq  uint64 // the record's sequence number in its project's log on that node
}

// ErrDuplicate is returned by CommitForwarded for a record already committed.
var ErrDuplicate = errors.New("storage: forwarded record already committed")

// maxOriginGaps bounds the sequence numbers kept above a set's contiguous
// prefix. A node's numbers are gapless as it writes them, and arrive mostly
// in order; a number that never comes (lost to a damaged segment on its
// node) would keep the set from closing up, so past this many the set
// gives up waiting and moves on past the oldest gap.
const maxOriginGaps = 4096

// originSet is which sequence numbers of one node's project have been
// committed: all below next, and those in above.
type originSet struct {
	next  uint64
	above map[uint64]struct{}
}

func (o *originSet) has(seq uint64) bool {
	if seq < o.next {
		return true
	}
	_, ok := o.above[seq]
	return ok
}

func (o *originSet) add(seq uint64) {
	switch {
	case seq < o.next:
		return
	case seq == o.next:
		o.next++
	default:
		if o.above == nil {
			o.above = map[uint64]struct{}{}
		}
		o.above[seq] = struct{}{}
	}
	o.closeUp()
}

// closeUp moves next past the numbers held above it, and past the oldest
// gap while more than maxOriginGaps are kept.
func (o *originSet) closeUp() {
	for {
		if _, ok := o.above[o.next]; ok {
			delete(o.above, o.next)
			o.next++
			continue
		}
		if len(o.above) <= maxOriginGaps {
			return
		}
		// A gap that does not fill: move past it to the lowest kept.
		low, first := uint64(0), true
		for s := range o.above {
			if first || s < low {
				low, first = s, false
			}
		}
		o.next = low
	}
}

// appendOriginSet encodes o: uvarint next, uvarint n, then the n numbers
// above next in increasing order, each as its distance from the previous
// (the first from next).
func appendOriginSet(dst []byte, o *originSet) []byte {
	dst = binary.AppendUvarint(dst, o.next)
	above := make([]uint64, 0, len(o.above))
	for s := range o.above {
		above = append(above, s)
	}
	slices.Sort(above)
	dst = binary.AppendUvarint(dst, uint64(len(above)))
	prev := o.next
	for _, s := range above {
		dst = binary.AppendUvarint(dst, s-prev)
		prev = s
	}
	return dst
}

func decodeOriginSet(v []byte) (*originSet, error) {
	rd := recordReader{v}
	next, ok1 := rd.uvarint()
	n, ok2 := rd.uvarint()
	if !ok1 || !ok2 || n > uint64(len(rd.b)) {
		return nil, ErrCorruptRecord
	}
	o := &originSet{next: next}
	prev := next
	for range n {
		d, ok := rd.uvarint()
		if !ok || d == 0 {
			return nil, ErrCorruptRecord
		}
		prev += d
		if o.above == nil {
			o.above = map[uint64]struct{}{}
		}
		o.above[prev] = struct{}{}
	}
	if len(rd.b) != 0 {
		return nil, ErrCorruptRecord
	}
	return o, nil
}

type originKey struct {
	pnum uint32
	node string
}

func originKeyBytes(k originKey) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{nsOrigin}, k.pnum), k.node...)
}

// CommitForwarded commits b, the validated events of a record forwarded
// from origin, as Commit commits an accepted batch, unless that record was
// committed before: the error is then ErrDuplicate and nothing is written.
func (c *Committer) CommitForwarded(ctx context.Context, origin Origin, b *core.Batch) error {
	if !c.s.opts.Hub {
		return errors.New("storage: CommitForwarded on a store not opened as a hub's (Options.Hub)")
	}
	if !core.ValidNodeID(origin.Node) {
		return fmt.Errorf("storage: invalid node id %q", origin.Node)
	}
	return c.commit(ctx, b, &origin)
}

// loadOrigins builds the committer's origin sets: what the aggregator has
// folded, and the origins of the hub records still in the log.
func (s *Store) loadOrigins() (map[originKey]*originSet, error) {
	sets := map[originKey]*originSet{}
	if s.adb != nil {
		err := s.adb.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{nsOrigin}, PrefetchValues: true})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				k := it.Item().Key()
				if len(k) < 6 {
					continue
				}
				key := originKey{binary.BigEndian.Uint32(k[1:]), string(k[5:])}
				err := it.Item().Value(func(v []byte) error {
					o, err := decodeOriginSet(v)
					if err != nil {
						return fmt.Errorf("storage: origins of node %q, project %d: %w", key.node, key.pnum, err)
					}
					sets[key] = o
					return nil
				})
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	var buf []byte
	var ents []ingestlog.Entry
	for _, pnum := range s.ilog.Projects(nil) {
		ents = s.ilog.Pending(ents[:0], pnum, 0, 1<<62)
		for _, e := range ents {
			rec, b, err := s.ilog.Read(buf, pnum, e)
			buf = b
			if err != nil {
				return nil, err
			}
			node, seq, ok := recordOrigin(rec)
			if !ok {
				continue
			}
			k := originKey{pnum, string(node)}
			o := sets[k]
			if o == nil {
				o = &originSet{}
				sets[k] = o
			}
			o.add(seq)
		}
	}
	return sets, nil
}
