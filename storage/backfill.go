package storage

import (
	"encoding/binary"
	"errors"

	badger "github.com/dgraph-io/badger/v4"
)

// everySceneDone marks, in the aggregates database, that every session's
// every-scene cells (kindPerfAll, kindStepsAll, kindTurnsAll) exist for
// all it folded: the folds make them as they go, and a store folded before
// they existed gets them once, at open, from its per-scene session cells.
var everySceneDone = []byte{nsMeta, 'e', 's', 1}

// backfillEveryScene writes the every-scene cells of a store that folded
// without them, before its aggregator starts. Each is written whole (the
// merge of the session's cells of its hour over every scene), not merged
// into: run again after a crash half-way, it writes the same cells.
func (s *Store) backfillEveryScene() (cells int, err error) {
	if s.adb == nil {
		return 0, nil
	}
	var done bool
	var pnums []uint32
	err = s.adb.View(func(txn *badger.Txn) error {
		if _, err := txn.Get(everySceneDone); err == nil {
			done = true
			return nil
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{nsCheckpoint}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if k := it.Item().Key(); len(k) == 5 {
				pnums = append(pnums, binary.BigEndian.Uint32(k[1:]))
			}
		}
		return nil
	})
	if err != nil || done {
		return 0, err
	}
	wb := s.adb.NewWriteBatch()
	defer wb.Cancel()
	for _, pnum := range pnums {
		for k, ak := range allScenesOf {
			if ak == 0 {
				continue
			}
			n, err := s.backfillKind(wb, pnum, aggKind(k), ak)
			if err != nil {
				return cells, err
			}
			cells += n
		}
	}
	if err := wb.Set(append([]byte(nil), everySceneDone...), nil); err != nil {
		return cells, err
	}
	return cells, wb.Flush()
}

// backfillKind writes project pnum's cells of ak from its session cells of
// kind: a session's cells come one after another (keys go by session,
// then scene, then hour), so one session's hours are held at a time.
func (s *Store) backfillKind(wb *badger.WriteBatch, pnum uint32, kind, ak aggKind) (int, error) {
	ops := kindOps[kind]
	var session string
	hours := map[int64]cell{}
	written := 0
	flush := func() error {
		for bucket, c := range hours {
			if err := wb.Set(cellKey(pnum, ak, []byte(session), nil, bucket), c.encode(ops)); err != nil {
				return err
			}
			written++
		}
		clear(hours)
		return nil
	}
	prefix := append(binary.BigEndian.AppendUint32([]byte{nsAgg}, pnum), byte(kind), scopeSession)
	err := s.adb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			rest := it.Item().Key()[len(prefix):]
			if len(rest) < 2 {
				continue
			}
			n := int(binary.BigEndian.Uint16(rest))
			if len(rest) < 2+n+1 || len(rest) != 2+n+1+int(rest[2+n])+8 {
				continue
			}
			if sess := rest[2 : 2+n]; string(sess) != session {
				if err := flush(); err != nil {
					return err
				}
				session = string(sess)
			}
			bucket := int64(binary.BigEndian.Uint64(rest[len(rest)-8:]))
			c := hours[bucket]
			if c == nil {
				c = cell{}
				hours[bucket] = c
			}
			if err := it.Item().Value(func(v []byte) error { return decodeCell(ops, v, c) }); err != nil {
				return err
			}
		}
		return flush()
	})
	return written, err
}
