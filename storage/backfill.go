package storage

import (
	"encoding/binary"
	"errors"

	badger "github.com/dgraph-io/badger/v4"
)

// everySceneDone marks, in the aggregates database, that the derived
// session cells (derivations) exist for all it folded: the folds make them
// as they go, and a store folded before they existed gets them once, at
// open, from its session cells. Its last byte is the version of the
// derivations: a store marked with an older one gets the new ones.
var everySceneDone = []byte{nsMeta, 'e', 's', 4}

// backfillEveryScene writes the derived session cells of a store that
// folded without them, before its aggregator starts. Each is written whole
// (what it derives from: the session's cells of its hour over every scene,
// or of its scene), not merged into: run again after a crash half-way, or
// over cells a fold already derived, it writes the same cells.
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
		if err := s.deleteRetired(wb, pnum); err != nil {
			return cells, err
		}
		for _, d := range derivations {
			n, err := s.backfillKind(wb, pnum, d)
			if err != nil {
				return cells, err
			}
			cells += n
		}
	}
	if err := wb.Set(append([]byte(nil), everySceneDone...), nil); err != nil {
		return cells, err
	}
	for v := byte(1); v < everySceneDone[3]; v++ { // older versions' marks
		if err := wb.Delete([]byte{nsMeta, 'e', 's', v}); err != nil {
			return cells, err
		}
	}
	if err := wb.Delete([]byte{nsMeta, 'e', 's', 1}); err != nil { // the first version's mark
		return cells, err
	}
	return cells, wb.Flush()
}

// backfillKind writes project pnum's cells of derivation d: a session's
// cells come one after another (keys go by session, then scene, then
// hour), so one session's are held at a time.
func (s *Store) backfillKind(wb *badger.WriteBatch, pnum uint32, d derivation) (int, error) {
	ops := kindOps[d.from]
	var session string
	type sceneHour struct {
		scene  string
		bucket int64
	}
	cells := map[sceneHour]cell{}
	written := 0
	flush := func() error {
		for sh, c := range cells {
			if len(c) == 0 {
				continue
			}
			if err := wb.Set(cellKey(pnum, d.to, []byte(session), []byte(sh.scene), sh.bucket), c.encode(ops)); err != nil {
				return err
			}
			written++
		}
		clear(cells)
		return nil
	}
	prefix := append(binary.BigEndian.AppendUint32([]byte{nsAgg}, pnum), byte(d.from), scopeSession)
	row := make([]float64, len(ops))
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
			sh := sceneHour{bucket: int64(binary.BigEndian.Uint64(rest[len(rest)-8:]))}
			scene := rest[2+n+1 : len(rest)-8]
			if !d.allScenes {
				sh.scene = string(scene)
			}
			c := cells[sh]
			if c == nil {
				c = cell{}
				cells[sh] = c
			}
			err := it.Item().Value(func(v []byte) error {
				return walkCell(ops, v, row, func(item []byte, row []float64) {
					if d.keep != nil && !d.keep(string(item)) {
						return
					}
					var pre []byte
					if d.sceneItems {
						pre = sceneItem(nil, string(scene))
					}
					switch {
					case d.item != nil:
						item = d.item(pre, string(item))
					case d.sceneItems:
						item = append(pre, item...)
					}
					c.add(ops, string(item), row...)
				})
			})
			if err != nil {
				return err
			}
		}
		return flush()
	})
	return written, err
}

// deleteRetired deletes project pnum's cells of the retiredKinds.
func (s *Store) deleteRetired(wb *badger.WriteBatch, pnum uint32) error {
	for _, k := range retiredKinds {
		prefix := append(binary.BigEndian.AppendUint32([]byte{nsAgg}, pnum), byte(k))
		err := s.adb.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				if err := wb.Delete(it.Item().KeyCopy(nil)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
