package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/uptimizr/edge/core"
)

func openTest(t testing.TB, o Options) *Store {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.MinFreeDisk == 0 {
		o.MinFreeDisk = -1
	}
	if o.logFS == nil {
		o.logFS = &faultFS{}
	}
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRegistryProjectsAndKeys(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir})
	r := s.Registry()
	keys, err := r.CreateProject("shop")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateProject("shop"); !errors.Is(err, ErrProjectExists) {
		t.Fatalf("duplicate project: %v", err)
	}
	if _, err := r.CreateProject("bad id"); !errors.Is(err, ErrInvalidID) {
		t.Fatalf("bad id: %v", err)
	}
	for _, c := range []struct {
		key  string
		caps Capability
	}{{keys.Ingest, CapIngest}, {keys.Query, CapQuery}, {keys.Admin, CapAdmin}} {
		h := HashKey([]byte(c.key))
		k := r.Lookup(&h)
		if k == nil || k.ProjectID != "shop" || k.Caps != c.caps || k.Project == nil || k.Project.Num == 0 {
			t.Fatalf("lookup %v: %+v", c.caps, k)
		}
	}
	if keys.Ingest == keys.Query || len(keys.Ingest) < 30 {
		t.Fatalf("weak keys: %+v", keys)
	}
	// Revoke by id: the next lookup misses, and it stays revoked after reopen.
	h := HashKey([]byte(keys.Ingest))
	id := r.Lookup(&h).ID
	if _, err := r.RevokeKey("other", id); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("revoke across projects must fail: %v", err)
	}
	if got, err := r.RevokeKey("shop", id); err != nil || got != id {
		t.Fatalf("revoke: %v %v", got, err)
	}
	if r.Lookup(&h) != nil {
		t.Fatal("revoked key still resolves")
	}
	// Revoke by the key itself.
	hq := HashKey([]byte(keys.Query))
	if _, err := r.RevokeKey("shop", keys.Query); err != nil || r.Lookup(&hq) != nil {
		t.Fatalf("revoke by key: %v", err)
	}
	secret, _, err := r.CreateKey("shop", CapIngest|CapQuery)
	if err != nil {
		t.Fatal(err)
	}
	ch := core.DefaultChannels()
	ch.Gaze = true
	if err := r.SetChannels("shop", ch); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateProject("b"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2 := openTest(t, Options{Dir: dir})
	r2 := s2.Registry()
	if r2.Lookup(&h) != nil || r2.Lookup(&hq) != nil {
		t.Fatal("revocation lost on reopen")
	}
	hs := HashKey([]byte(secret))
	if k := r2.Lookup(&hs); k == nil || k.Caps != CapIngest|CapQuery {
		t.Fatalf("created key lost: %+v", k)
	}
	p := r2.Project("shop")
	if p == nil || !p.Channels().Gaze || p.Channels().MeshVisibility {
		t.Fatalf("channels lost: %+v", p)
	}
	if pb := r2.Project("b"); pb == nil || pb.Num == p.Num {
		t.Fatalf("project numbers must differ: %+v %+v", pb, p)
	}
	if got := len(r2.Keys("shop")); got != 2 { // admin + the new one
		t.Fatalf("live keys of shop: %d", got)
	}
}

func testBatch(pnum uint32, n int, sessions ...string) *core.Batch {
	b := &core.Batch{ProjectID: "p", ProjectNum: pnum, ReceivedAt: 1700000000000}
	for i := 0; i < n; i++ {
		s := sessions[i%len(sessions)]
		ts := int64(1000 + (n-i)%7) // out of order, with ties
		js := fmt.Sprintf(`{"type":"custom","sessionId":%q,"ts":%d,"i":%d}`, s, ts, i)
		b.AppendEvent(core.TypeCustom, ts, []byte(s), []byte(js))
	}
	return b
}

func readLog(t *testing.T, s *Store, pnum uint32) (seqs []uint64, events []string) {
	t.Helper()
	for _, e := range s.ilog.Pending(nil, pnum, 0, 1<<30) {
		seqs = append(seqs, e.Seq)
		v, _, err := s.ilog.Read(nil, pnum, e)
		if err != nil {
			t.Fatal(err)
		}
		var m members
		if _, _, err := decodeLogRecord(v, nil, &m, func(e *logEvent) error {
			events = append(events, fmt.Sprintf("%s %s %d", e.Session, e.Type, e.TS))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return
}

func TestCommitLogOrderAndSeqAcrossReopen(t *testing.T) {
	for _, compress := range []bool{true, false} {
		t.Run(fmt.Sprint("compress=", compress), func(t *testing.T) {
			dir := t.TempDir()
			c := compress
			s := openTest(t, Options{Dir: dir, LogCompression: &c})
			const workers, per = 8, 25
			var wg sync.WaitGroup
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := 0; i < per; i++ {
						b := testBatch(7, 3, fmt.Sprintf("w%d", w))
						if err := s.Sink().Commit(context.Background(), b); err != nil {
							t.Error(err)
						}
					}
				}(w)
			}
			wg.Wait()
			seqs, events := readLog(t, s, 7)
			if len(seqs) != workers*per || len(events) != workers*per*3 {
				t.Fatalf("records %d events %d", len(seqs), len(events))
			}
			for i, q := range seqs {
				if q != uint64(i) {
					t.Fatalf("seq %d at %d: log must be gapless from 0", q, i)
				}
			}
			groups, reqs := s.Committer().Stats()
			if reqs != workers*per || groups == 0 || groups > reqs {
				t.Fatalf("stats groups=%d reqs=%d", groups, reqs)
			}
			s.Close()
			// After reopen the sequence continues; it never restarts.
			s2 := openTest(t, Options{Dir: dir, LogCompression: &c})
			if err := s2.Sink().Commit(context.Background(), testBatch(7, 1, "x")); err != nil {
				t.Fatal(err)
			}
			seqs, _ = readLog(t, s2, 7)
			if last := seqs[len(seqs)-1]; last != workers*per {
				t.Fatalf("seq after reopen = %d", last)
			}
		})
	}
}

func TestRetentionChunksOrderedBySessionTs(t *testing.T) {
	s := openTest(t, Options{Retention: true, RetentionTTL: time.Hour})
	b := testBatch(3, 40, "sA", "sB")
	if err := s.Sink().Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	for _, sess := range []string{"sA", "sB"} {
		var last int64 = -1
		var lastI = -1
		n := 0
		err := s.DB().View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: RawPrefix(3, []byte(sess))})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				if it.Item().ExpiresAt() == 0 {
					t.Error("raw chunk without TTL")
				}
				v, _ := it.Item().ValueCopy(nil)
				if _, _, err := DecodeRecord(v, nil, func(e RecordEvent) error {
					if string(e.Session) != sess {
						t.Errorf("chunk of %s holds %s", sess, e.Session)
					}
					var i int
					fmt.Sscanf(string(e.JSON[bytes.Index(e.JSON, []byte(`"i":`))+4:]), "%d", &i)
					if e.TS < last || (e.TS == last && i < lastI) {
						t.Errorf("order: ts %d i %d after ts %d i %d", e.TS, i, last, lastI)
					}
					last, lastI = e.TS, i
					n++
					return nil
				}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n != 20 {
			t.Fatalf("session %s: %d raw events, want 20", sess, n)
		}
	}
}

func TestNoRawChunksWithoutRetention(t *testing.T) {
	s := openTest(t, Options{})
	if err := s.Sink().Commit(context.Background(), testBatch(3, 10, "s")); err != nil {
		t.Fatal(err)
	}
	n := 0
	s.DB().View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{nsRawChunk}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if n != 0 {
		t.Fatalf("%d raw chunks stored with retention off", n)
	}
}

func TestUnavailable(t *testing.T) {
	s := openTest(t, Options{})
	s.Close()
	if err := s.Sink().Commit(context.Background(), testBatch(1, 1, "s")); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("closed store: %v", err)
	}
	// A minimum free space larger than any disk refuses writes.
	s2 := openTest(t, Options{MinFreeDisk: 1 << 62})
	if err := s2.Sink().Commit(context.Background(), testBatch(1, 1, "s")); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("disk low: %v", err)
	}
	seqs, _ := readLog(t, s2, 1)
	if len(seqs) != 0 {
		t.Fatal("refused write was stored")
	}
}

func TestDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	openTest(t, Options{Dir: dir})
	if _, err := Open(Options{Dir: dir}); !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("second open: %v", err)
	}
}

func TestDecodeRecordRejectsCorruption(t *testing.T) {
	b := testBatch(1, 5, "s")
	for _, comp := range []bool{false, true} {
		rec, _ := encodeRecord(nil, nil, b, nil, comp)
		n := 0
		if _, _, err := DecodeRecord(rec, nil, func(RecordEvent) error { n++; return nil }); err != nil || n != 5 {
			t.Fatalf("decode: %v n=%d", err, n)
		}
		for cut := 0; cut < len(rec); cut++ {
			if _, _, err := DecodeRecord(rec[:cut], nil, func(RecordEvent) error { return nil }); err == nil {
				t.Fatalf("truncated at %d/%d decoded without error (compress=%v)", cut, len(rec), comp)
			}
		}
	}
}
