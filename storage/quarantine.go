package storage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/uptimizr/edge/core"
)

// DefaultQuarantineTTL is how long a quarantined batch is kept.
const DefaultQuarantineTTL = 7 * 24 * time.Hour

// ErrQuarantineNotFound is returned for an unknown or expired entry.
var ErrQuarantineNotFound = fmt.Errorf("quarantined batch %w", core.ErrNotFound)

// expiresAt is the Badger expiry (Unix seconds) of an entry written at now
// that must live at least ttl. Badger's own WithTTL truncates to the second,
// so an entry could expire up to a second early; this rounds up instead.
func expiresAt(now time.Time, ttl time.Duration) uint64 {
	end := now.Add(ttl)
	sec := end.Unix()
	if end.Nanosecond() > 0 {
		sec++
	}
	return uint64(sec)
}

// QuarantineStore keeps batches whose plugin failed, apart from normal data:
// admin-only, with a TTL, until they are replayed or expire.
type QuarantineStore struct {
	s      *Store
	mu     sync.Mutex
	lastID uint64
}

// QuarantineEntry is the core type.
type QuarantineEntry = core.QuarantineEntry

// Quarantine returns the quarantine store.
func (s *Store) Quarantine() *QuarantineStore {
	s.qOnce.Do(func() { s.q = &QuarantineStore{s: s} })
	return s.q
}

func quarantineKey(pnum uint32, id uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32([]byte{nsQuarantine}, pnum), id)
}

func (q *QuarantineStore) nextID() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	id := uint64(time.Now().UnixNano())
	if id <= q.lastID {
		id = q.lastID + 1
	}
	q.lastID = id
	return id
}

// Put stores a batch apart. It is durable when Put returns.
func (q *QuarantineStore) Put(_ context.Context, pnum uint32, plugin string, version int, reason string, b *core.Batch) error {
	if err := q.s.Writable(); err != nil {
		return err
	}
	if len(reason) > 1024 {
		reason = reason[:1024]
	}
	id := q.nextID()
	meta, _ := json.Marshal(QuarantineEntry{ID: strconv.FormatUint(id, 16), Plugin: plugin, Version: version, Reason: reason,
		At: time.Now().UTC().Truncate(time.Millisecond), Events: len(b.Events), ReceivedAt: b.ReceivedAt})
	val := binary.AppendUvarint(nil, uint64(len(meta)))
	val = append(val, meta...)
	val, _ = encodeRecord(val, nil, b, nil, true)
	ttl := q.s.opts.QuarantineTTL
	if ttl <= 0 {
		ttl = DefaultQuarantineTTL
	}
	adm, err := q.s.admitWrite(len(val) + 64)
	if err != nil {
		return err
	}
	defer adm.done()
	return q.s.db.Update(func(txn *badger.Txn) error {
		e := badger.NewEntry(quarantineKey(pnum, id), val)
		e.ExpiresAt = expiresAt(time.Now(), ttl)
		return txn.SetEntry(e)
	})
}

func splitQuarantine(val []byte) (QuarantineEntry, []byte, error) {
	var e QuarantineEntry
	n, k := binary.Uvarint(val)
	if k <= 0 || uint64(len(val)-k) < n {
		return e, nil, ErrCorruptRecord
	}
	if err := json.Unmarshal(val[k:k+int(n)], &e); err != nil {
		return e, nil, ErrCorruptRecord
	}
	return e, val[k+int(n):], nil
}

// List returns up to limit entries of a project, oldest first, and the
// total count.
func (q *QuarantineStore) List(pnum uint32, limit int) ([]QuarantineEntry, int, error) {
	var out []QuarantineEntry
	total := 0
	err := q.s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: binary.BigEndian.AppendUint32([]byte{nsQuarantine}, pnum)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			total++
			if len(out) >= limit {
				continue
			}
			err := it.Item().Value(func(v []byte) error {
				e, _, err := splitQuarantine(v)
				out = append(out, e)
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return out, total, err
}

func parseQID(id string) (uint64, error) {
	n, err := strconv.ParseUint(id, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrQuarantineNotFound, id)
	}
	return n, nil
}

// Get returns an entry and its batch, rebuilt as it entered the chain.
func (q *QuarantineStore) Get(pnum uint32, id string) (QuarantineEntry, *core.Batch, error) {
	var e QuarantineEntry
	n, err := parseQID(id)
	if err != nil {
		return e, nil, err
	}
	b := &core.Batch{}
	err = q.s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(quarantineKey(pnum, n))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("%w: %s", ErrQuarantineNotFound, id)
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			var rec []byte
			if e, rec, err = splitQuarantine(v); err != nil {
				return err
			}
			b.ReceivedAt, _, err = DecodeRecord(rec, nil, func(ev RecordEvent) error {
				b.AppendEvent(ev.Type, ev.TS, ev.Session, ev.JSON)
				return nil
			})
			return err
		})
	})
	if err != nil {
		return e, nil, err
	}
	return e, b, nil
}

// Delete removes an entry (after a successful replay).
func (q *QuarantineStore) Delete(pnum uint32, id string) error {
	n, err := parseQID(id)
	if err != nil {
		return err
	}
	return q.s.db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get(quarantineKey(pnum, n)); errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("%w: %s", ErrQuarantineNotFound, id)
		} else if err != nil {
			return err
		}
		return txn.Delete(quarantineKey(pnum, n))
	})
}
