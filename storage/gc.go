package storage

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Value-log garbage collection. Badger keeps values over the value threshold
// (large raw chunks, plugin modules) in append-only value-log files;
// deleting or expiring a key (raw chunks carry the RAW_RETENTION_DAYS TTL)
// does not shrink them. Compactions drop expired keys from the LSM tree and
// count the bytes they leave dead in each value-log file; RunValueLogGC then
// rewrites a file whose dead share is at least gcDiscardRatio, and deletes the
// old one. A store that is not read-only runs it every
// Options.ValueLogGCInterval.

// DefaultValueLogGCInterval is how often value-log GC runs unless
// Options.ValueLogGCInterval says otherwise.
const DefaultValueLogGCInterval = 5 * time.Minute

// gcDiscardRatio is the share of a value-log file that must be dead before
// it is rewritten: Badger's recommended 0.5 bounds the rewrite cost at about
// one extra write of each live value over its life.
const gcDiscardRatio = 0.5

// gcInterval is the effective GC period: 0 when disabled.
func (o *Options) gcInterval() time.Duration {
	switch {
	case o.ValueLogGCInterval < 0:
		return 0
	case o.ValueLogGCInterval == 0:
		return DefaultValueLogGCInterval
	}
	return o.ValueLogGCInterval
}

// startValueLogGC starts the GC goroutine (stopped by Close through s.stop).
func (s *Store) startValueLogGC() {
	if s.opts.ReadOnly {
		return
	}
	if every := s.opts.gcInterval(); every > 0 {
		s.every(every, func() { s.valueLogGC(s.db) })
	}
}

// valueLogGC rewrites value-log files of db while one qualifies, and
// returns how many it rewrote. It stops early when the store is closing.
func (s *Store) valueLogGC(db *badger.DB) int {
	n := 0
	for {
		select {
		case <-s.stop:
			return n
		default:
		}
		if db == s.db && !s.space.roomForGC(s.mdb) {
			return n // not with the disk this full: its rewrite needs room first
		}
		s.gc.runs.Add(1)
		err := db.RunValueLogGC(gcDiscardRatio)
		switch {
		case err == nil:
			n++
			s.gc.rewrites.Add(1)
			continue
		case errors.Is(err, badger.ErrNoRewrite), errors.Is(err, badger.ErrRejected):
			// Nothing (more) to reclaim, or a GC is already running.
		default:
			s.log.Warn("value-log GC failed", "err", err)
		}
		if n > 0 {
			s.log.Info("value-log GC reclaimed space", "files_rewritten", n)
		}
		return n
	}
}

// gcStats counts value-log GC work since the store was opened.
type gcStats struct {
	runs     atomic.Uint64 // RunValueLogGC calls
	rewrites atomic.Uint64 // value-log files rewritten
}

// ValueLogGCStats reports how many times value-log GC has been tried and how
// many value-log files it has rewritten since the store was opened.
func (s *Store) ValueLogGCStats() (runs, rewrites uint64) {
	return s.gc.runs.Load(), s.gc.rewrites.Load()
}
