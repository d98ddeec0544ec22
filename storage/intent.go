package storage

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Raw chunks and the ingest log commit or fail together.
//
// A group's raw chunks (retention on) go to the main database and its log
// records to the segment files: two stores, no shared transaction. The
// chunks are committed first, in one transaction with the intent marker
//
//	i
//
// whose value lists the keys of the chunks written (each a uvarint length
// and the key; a chunk key ends in the request's seq and part, and starts
// with its project number). The committer is the only writer and commits
// one group at a time, so one marker serves: each group's replaces the
// last group's, whose records made it to the log. Then the records are
// appended:
//
//   - the append succeeds: nothing more (the marker is replaced by the next
//     group's, or deleted at close);
//   - the append fails: the chunks and the marker are deleted before the
//     requests are answered 503, so nothing of them is stored. If that
//     delete fails too, the committer refuses every group (503) until a
//     retry succeeds: the failed group's sequence numbers are used again by
//     the next group, and they must not be while its chunks may still be
//     there;
//   - the process dies between the two writes: at the next open the marker
//     left is resolved before the first commit. A request's record was
//     committed if the log holds it, or if its project's checkpoint is past
//     it (folded, and its segment deleted); the chunks of the others are
//     deleted. Sequence numbers are never skipped, so the checkpoint passes
//     only records that were written.
const nsIntent = 'i'

// intentKey is the marker's key.
var intentKey = []byte{nsIntent}

// rawChunkRequest returns the project number and log sequence number of the
// request a raw chunk key belongs to.
func rawChunkRequest(k []byte) (pnum uint32, seq uint64, ok bool) {
	if len(k) < 1+4+2+rawKeySuffix || k[0] != nsRawChunk {
		return 0, 0, false
	}
	n := len(k)
	return binary.BigEndian.Uint32(k[1:5]), binary.BigEndian.Uint64(k[n-10 : n-2]), true
}

// intentKeys calls fn for each chunk key listed in a marker's value.
func intentKeys(v []byte, fn func(k []byte) error) error {
	for len(v) > 0 {
		n, w := binary.Uvarint(v)
		if w <= 0 || uint64(len(v)-w) < n {
			return fmt.Errorf("%w: intent marker", ErrCorruptRecord)
		}
		if err := fn(v[w : w+int(n)]); err != nil {
			return err
		}
		v = v[w+int(n):]
	}
	return nil
}

// intent is a marker the committer still has to act on.
type intent struct{ key, val []byte }

// undo deletes the chunks a marker lists and the marker, in one transaction.
func (it intent) undo(db *badger.DB) error {
	txn := db.NewTransaction(true)
	defer txn.Discard()
	if err := intentKeys(it.val, func(k []byte) error { return txn.Delete(k) }); err != nil {
		return err
	}
	if err := txn.Delete(it.key); err != nil {
		return err
	}
	return txn.Commit()
}

// resolveIntents settles the markers a crash (or a failed cleanup) left at
// open: chunks of requests whose log record was never written are deleted,
// the markers go. It returns how many chunks it deleted.
func (s *Store) resolveIntents() (int, error) {
	var its []intent
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{nsIntent}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			its = append(its, intent{it.Item().KeyCopy(nil), v})
		}
		return nil
	})
	if err != nil || len(its) == 0 {
		return 0, err
	}
	checkpoints := map[uint32]uint64{}
	committed := func(pnum uint32, seq uint64) (bool, error) {
		if s.ilog.Has(pnum, seq) {
			return true, nil
		}
		cp, ok := checkpoints[pnum]
		if !ok {
			var err error
			if cp, err = s.checkpoint(pnum); err != nil {
				return false, err
			}
			checkpoints[pnum] = cp
		}
		return cp > seq, nil
	}
	deleted := 0
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, it := range its {
		err := intentKeys(it.val, func(k []byte) error {
			pnum, seq, ok := rawChunkRequest(k)
			if !ok {
				return fmt.Errorf("%w: intent marker lists a key that is not a raw chunk's", ErrCorruptRecord)
			}
			done, err := committed(pnum, seq)
			if err != nil || done {
				return err
			}
			deleted++
			return wb.Delete(k)
		})
		if errors.Is(err, ErrCorruptRecord) {
			// A damaged marker cannot say which chunks were committed: they
			// are left (they expire with their TTL), the marker goes.
			s.log.Warn("intent marker unreadable; its raw chunks are left as they are", "err", err)
		} else if err != nil {
			return 0, fmt.Errorf("storage: resolve intent marker: %w", err)
		}
		if err := wb.Delete(it.key); err != nil {
			return 0, err
		}
	}
	if err := wb.Flush(); err != nil {
		return 0, fmt.Errorf("storage: resolve intent markers: %w", err)
	}
	return deleted, nil
}
