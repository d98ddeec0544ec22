package storage

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Records of projects that are not in the registry.
//
// The committer writes only batches of registered projects, so the ingest
// log can hold records of a project missing from the registry only when the
// registry was lost or put back from an older copy. The aggregator folds the
// projects of the registry, and such records would keep their segments for
// ever; after a grace period they are dropped (dropOrphans). Until then,
// and for as long as the aggregates hold data of a number, no new project
// may take it: the project counter is raised past every number the log or
// the aggregates still hold (raiseProjectCounter), so tenants never mix.

// dropOrphans drops the log records of projects that are not in the
// registry once they have been so for the grace period. The aggregator
// folds only the projects of the registry, so such records (a registry lost
// or restored from an older copy) would keep their segments for ever; the
// grace leaves an operator time to put the registry back. The records are
// gone when it ends, and the log says how many of which project.
func (a *Aggregator) dropOrphans(now time.Time) {
	pnums := a.s.ilog.Projects(nil)
	known := map[uint32]bool{}
	for _, p := range a.s.reg.Projects() {
		known[p.Num] = true
	}
	for pnum := range a.orphans {
		if known[pnum] || !slices.Contains(pnums, pnum) {
			delete(a.orphans, pnum)
		}
	}
	grace := a.s.opts.orphanGraceOrDefault()
	dropped := false
	for _, pnum := range pnums {
		if known[pnum] {
			continue
		}
		if a.orphans == nil {
			a.orphans = map[uint32]time.Time{}
		}
		since, seen := a.orphans[pnum]
		if !seen {
			a.orphans[pnum] = now
			a.s.log.Warn("ingest log holds records of a project not in the registry; they are dropped unless it comes back",
				"project_num", pnum, "records", a.s.ilog.Count(pnum), "grace", grace.String())
			since = now
		}
		if now.Sub(since) < grace {
			continue
		}
		a.mu.Lock() // not while a fold of that project runs (Sync)
		n := a.s.ilog.Forget(pnum)
		a.mu.Unlock()
		delete(a.orphans, pnum)
		a.orphaned.Add(uint64(n))
		dropped = dropped || n > 0
		a.s.log.Warn("dropped the ingest log records of a project not in the registry", "project_num", pnum, "records", n)
	}
	if dropped {
		a.s.ilog.RemoveDead()
	}
}

// raiseProjectCounter raises the registry's project counter (the last number
// handed out) to at least the highest project number the ingest log or the
// aggregates hold, so that a registry that lost projects never gives their
// numbers to new ones. It returns the new counter when it raised it.
func (s *Store) raiseProjectCounter() (uint32, bool, error) {
	var held uint32
	for _, p := range s.ilog.Projects(nil) {
		held = max(held, p)
	}
	if s.adb != nil {
		err := s.adb.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{nsCheckpoint}})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				if k := it.Item().Key(); len(k) == 5 {
					held = max(held, binary.BigEndian.Uint32(k[1:]))
				}
			}
			return nil
		})
		if err != nil {
			return 0, false, err
		}
	}
	if held == 0 {
		return 0, false, nil
	}
	raised := false
	err := s.db.Update(func(txn *badger.Txn) error {
		n, err := projectNumCounter(txn)
		if err != nil {
			return err
		}
		if n >= held {
			return nil
		}
		raised = true
		return setProjectNumCounter(txn, held)
	})
	return held, raised, err
}
