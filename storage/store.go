// Package storage keeps Uptimizr Edge's state in an embedded Badger database:
// projects and their API keys (stored only as hashes), the ordered per-project
// ingest log, raw per-session streams (only when retention is on) and the
// small metadata the rest of the system needs.
//
// Key layout (every key starts with a one-byte namespace):
//
//	p <projectID>                         project record (JSON)
//	k <sha256(key)>                       API key record (JSON)
//	m <name>                              metadata (project number counter, …)
//	q <projectNum:4> ...                  per-project log high-water mark (older versions; moved at open)
//	l <projectNum:4> <seq:8>              ingest log record (older versions; moved at open)
//	r <projectNum:4> <len:2> <sessionID> <minTs:8> <seq:8> <part:2>
//	                                      raw session chunk (retention on; TTL)
//	g <projectNum:4> <sceneID> 0x00       scene representation summary (listing row, JSON)
//	g <projectNum:4> <sceneID> 0x01       scene representation document (canonical JSON)
//	a <projectNum:4> <kind:1> <scope> <bucket:8>
//	                                      aggregate cell; scope is s <len:1> <sceneId>
//	                                      or S <len:2> <sessionId> <len:1> <sceneId>
//	x <projectNum:4> <len:2> <sessionID>  session summary and metadata (JSON)
//	t <projectNum:4> <startedAt:8> <sessionID>
//	                                      session summary, indexed by start
//	c <projectNum:4>                      aggregator checkpoint: next log seq to fold
//	w <sha256:32>                         plugin module bytes
//	u <projectNum:4> <name>               plugin record: versions, active, rollback history (JSON)
//	o <projectNum:4>                      plugin chain order (JSON list of names)
//	z <projectNum:4> <id:8>               quarantined batch (TTL)
//	i                                     intent marker: the raw chunks of the last group,
//	                                      whose log append may not have happened (intent.go)
//
// Integers in keys are big-endian so that Badger's byte order is numeric order.
package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"golang.org/x/sys/unix"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/storage/ingestlog"
)

// Key namespaces.
const (
	nsProject  = 'p'
	nsKey      = 'k'
	nsMeta     = 'm'
	nsRawChunk = 'r'
)

// ErrDataDirInUse is returned by Open when another process (a running server)
// holds the data dir.
var ErrDataDirInUse = errors.New("data dir is in use by another uptimizr-edge process")

// Options configure a Store. Zero values take the defaults noted.
type Options struct {
	// Dir is the data dir; the database lives in Dir/db.
	Dir string
	// SyncWrites fsyncs every group commit (survives power loss). Off, a
	// commit survives a crash of the process.
	SyncWrites bool
	// Retention keeps raw per-session streams for RetentionTTL.
	Retention    bool
	RetentionTTL time.Duration
	// MinFreeDisk is the free space (bytes) under which writes are refused
	// with core.ErrUnavailable instead of running the disk full. Default 64 MiB;
	// negative disables the check.
	MinFreeDisk int64
	// LogCompression S2-compresses ingest-log records (default false: a
	// record holds only what the aggregator reads, 40 bytes an event or so,
	// and lives until the next fold).
	LogCompression *bool
	// Forward keeps each record's canonical events in the ingest log, and
	// the records in it until the fleet forwarder is past them (Store.Forward).
	Forward bool
	// Hub opens the store of a fleet's hub: it commits records forwarded
	// by the nodes (Committer.CommitForwarded), each once (origin.go).
	Hub bool
	// ForwardMaxBacklog is how many bytes of records the engine has not
	// acknowledged the log may hold: past it, commits are refused with
	// core.ErrUnavailable (0: no bound).
	ForwardMaxBacklog int64
	// QuarantineTTL is how long batches whose plugin failed are kept
	// (default DefaultQuarantineTTL).
	QuarantineTTL time.Duration
	// DisableAggregation keeps the aggregator from running, so the ingest log
	// stays as written (tools and tests that inspect it). A serving node
	// always aggregates.
	DisableAggregation bool
	// ValueLogGCInterval is how often value-log GC reclaims the space of
	// expired and deleted values in the main database (gc.go). Default 5
	// minutes; negative disables it. (The ingest log is not in Badger: its
	// segments are deleted whole once folded.)
	ValueLogGCInterval time.Duration
	// MaxBatchBytes is the largest decompressed request body the server
	// takes (its COLLECTOR_BODY_LIMIT). Default 1 MiB.
	MaxBatchBytes int
	// ReadOnly opens the database without taking writes (CLI listings).
	ReadOnly bool
	Logger   *slog.Logger

	logFileBytes int64         // tests: the ingest log's segment size
	logFS        ingestlog.FS  // tests: the ingest log's file system (the OS's when nil)
	orphanGrace  time.Duration // tests: how long records of unknown projects are kept
	closeWait    time.Duration // tests: how long Close waits for room to flush

	// freeSpace, if set (tests), measures the data dir's free bytes in
	// place of statfs.
	freeSpace func() (int64, error)
}

// closeWaitOrDefault is how long Close waits for Badger's flushes on a disk
// too full for them before it gives up on them.
func (o *Options) closeWaitOrDefault() time.Duration {
	if o.closeWait > 0 {
		return o.closeWait
	}
	return 30 * time.Second
}

// defaultOrphanGrace is how long the ingest-log records of a project that
// is not in the registry are kept before they are dropped (agg.go,
// dropOrphans).
const defaultOrphanGrace = 24 * time.Hour

func (o *Options) orphanGraceOrDefault() time.Duration {
	if o.orphanGrace > 0 {
		return o.orphanGrace
	}
	return defaultOrphanGrace
}

// orphanCheckEvery is how often the aggregator looks for such records.
func (o *Options) orphanCheckEvery() time.Duration {
	return min(time.Minute, max(o.orphanGraceOrDefault()/4, 10*time.Millisecond))
}

// Store is the open database.
type Store struct {
	db   *badger.DB
	opts Options
	log  *slog.Logger

	// adb holds the aggregates (cells, session summaries and their index,
	// fold checkpoints), apart from db: Badger writes through one writer
	// per database, and the aggregator's transactions (megabytes of cells,
	// a few milliseconds each) would hold every ingest commit queued behind
	// them. Nil in read-only mode when it does not exist yet.
	adb *badger.DB

	// ilog is the ingest log (package ingestlog): segment files in
	// DATA_DIR/ingest, deleted whole once folded.
	ilog *ingestlog.Log
	fwd  *Forward // nil unless Options.Forward

	reg *Registry
	com *Committer
	agg *Aggregator

	qOnce sync.Once
	q     *QuarantineStore

	// space guards the disk (space.go): nil when read-only. mdb and madb
	// are its view of the main and aggregates databases' mapped files.
	space     *spaceGuard
	mdb, madb *mappedDB
	lock      *os.File // DATA_DIR/store.lock, held while open
	closed    atomic.Bool
	gc        gcStats  // value-log GC (gc.go)
	onClose   []func() // after the background goroutines stop
	closeOnce sync.Once
	stop      chan struct{}
	bg        sync.WaitGroup
}

// Open opens (creating if needed) the store in opts.Dir.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("storage: empty data dir")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MinFreeDisk == 0 {
		opts.MinFreeDisk = 64 << 20
	}
	if opts.RetentionTTL <= 0 {
		opts.RetentionTTL = 30 * 24 * time.Hour
	}
	if opts.LogCompression == nil {
		off := false
		opts.LogCompression = &off
	}
	dbDir := filepath.Join(opts.Dir, "db")
	if err := os.MkdirAll(dbDir, 0o700); err != nil {
		return nil, fmt.Errorf("storage: create data dir: %w", err)
	}
	// Held before anything in the data dir is touched (the memtable logs a
	// crashed process made ahead are removed before Badger opens).
	lock, err := lockDataDir(opts.Dir, !opts.ReadOnly)
	if err != nil {
		return nil, err
	}
	opened := false
	defer func() {
		if !opened {
			lock.Close()
		}
	}()
	if err := removeEmptyMemLogs(dbDir, filepath.Join(opts.Dir, "agg")); err != nil {
		return nil, err
	}
	bo := badgerOptions(dbDir, opts).
		// Raw chunks (KBs) and plugin modules go to the value log; the LSM
		// tree holds keys, pointers and the small values (registry, chains).
		WithValueThreshold(1 << 10).
		WithMemTableSize(4 << 20).
		WithBlockCacheSize(16 << 20).
		WithIndexCacheSize(8 << 20).
		WithValueLogFileSize(256 << 20)
	var space *spaceGuard
	if !opts.ReadOnly {
		if space, err = newSpaceGuard(opts.Dir, opts.MinFreeDisk, opts.Logger); err != nil {
			return nil, err
		}
		if opts.freeSpace != nil {
			space.statfs = opts.freeSpace
		}
		if err := space.prepareOpen(dbDir, filepath.Join(opts.Dir, "agg")); err != nil {
			return nil, err
		}
	}
	db, err := openBadger(bo, opts.Dir)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, opts: opts, log: opts.Logger, stop: make(chan struct{}), space: space, lock: lock}
	if space != nil {
		if err := space.attach("db", dbDir, db, bo); err != nil {
			db.Close()
			return nil, err
		}
		s.mdb = space.dbs[0]
	}
	if s.reg, err = loadRegistry(db); err != nil {
		s.closeSpace()
		db.Close()
		return nil, err
	}
	if s.adb, err = openAggregates(opts, space); err != nil {
		s.closeSpace()
		db.Close()
		return nil, err
	}
	if space != nil && s.adb != nil {
		s.madb = space.dbs[1]
	}
	if s.ilog, err = ingestlog.Open(ingestlog.Options{
		Dir: filepath.Join(opts.Dir, ingestLogDir), SegmentMax: opts.segmentSize(),
		Sync: opts.SyncWrites, ReadOnly: opts.ReadOnly, FS: opts.logFS, Logger: s.log,
		Readers: opts.logReaders(),
	}); err != nil {
		if s.adb != nil {
			s.adb.Close()
		}
		s.closeSpace()
		db.Close()
		return nil, err
	}
	if !opts.ReadOnly {
		n, err := s.resolveIntents()
		if n > 0 {
			s.log.Info("deleted the raw chunks of batches whose ingest-log records were never written (a crash between the two writes)", "chunks", n)
		}
		if err == nil {
			var held uint32
			var raised bool
			if held, raised, err = s.raiseProjectCounter(); raised {
				s.log.Warn("the project counter was behind the project numbers the ingest log or the aggregates hold (a lost registry?); raised so that no new project takes one of them", "counter", held)
			}
		}
		if err == nil {
			var n int
			if n, err = s.backfillEveryScene(); n > 0 {
				s.log.Info("wrote the derived session cells of aggregates folded before they existed", "cells", n)
			}
		}
		if err != nil {
			s.ilog.Close()
			s.adb.Close()
			s.closeSpace()
			db.Close()
			return nil, err
		}
	}
	if opts.Forward && !opts.ReadOnly {
		if s.fwd, err = newForward(s, s.ilog.Reader(forwardReader)); err != nil {
			s.ilog.Close()
			s.adb.Close()
			s.closeSpace()
			db.Close()
			return nil, err
		}
	}
	if !opts.ReadOnly {
		var origins map[originKey]*originSet
		if opts.Hub {
			if origins, err = s.loadOrigins(); err != nil {
				s.ilog.Close()
				s.adb.Close()
				s.closeSpace()
				db.Close()
				return nil, err
			}
		}
		s.com = newCommitter(s, origins)
		// The reserve is sized and its file made before the first write.
		space.review()
		_ = space.check(forWrite, 0)
		s.every(spaceTick, space.tick)
		s.every(time.Second, space.review)
		s.startValueLogGC()
		wb := newWriteback(dbDir, filepath.Join(opts.Dir, "agg"))
		s.every(writebackInterval, wb.push)
		s.onClose = append(s.onClose, wb.close)
		s.agg = newAggregator(s)
		if !opts.DisableAggregation {
			s.bg.Add(1)
			go func() { defer s.bg.Done(); s.agg.run(s.stop) }()
		}
	}
	opened = true
	return s, nil
}

// lockDataDir takes the data dir's lock file, DATA_DIR/store.lock:
// exclusive for a store that writes, shared for a read-only one.
func lockDataDir(dir string, exclusive bool) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "store.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("storage: lock the data dir: %w", err)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s): stop the server or use its admin API", ErrDataDirInUse, dir)
		}
		return nil, fmt.Errorf("storage: lock the data dir: %w", err)
	}
	return f, nil
}

// DB exposes the Badger handle to the packages that build on the store
// (aggregation, retention) within this module.
func (s *Store) DB() *badger.DB { return s.db }

// LogRecords returns how many records the ingest log holds (folded ones
// are gone).
func (s *Store) LogRecords() int { return s.ilog.Records() }

// Degraded says why an operator should look at the store, or "" when
// nothing is wrong: that an fdatasync of the ingest log failed since the
// store was opened (each such failure refused its group and abandoned its
// segment), which holds until the store is opened again; or that damaged
// ingest-log segments are kept aside, which holds until an operator
// deletes them.
func (s *Store) Degraded() string {
	st := s.ilog.Stats()
	var why []string
	if st.SyncFailures > 0 {
		why = append(why, fmt.Sprintf("%d fdatasync failures of the ingest log since start: check the disk, then restart the node", st.SyncFailures))
	}
	if st.Damaged > 0 {
		why = append(why, fmt.Sprintf("%d damaged ingest log segments kept in %s (their readable records were recovered): look at them, then delete them",
			st.Damaged, filepath.Join(s.opts.Dir, ingestLogDir, ingestlog.DamagedDir)))
	}
	return strings.Join(why, "; ")
}

// LogStats returns the ingest log's counters.
func (s *Store) LogStats() ingestlog.Stats { return s.ilog.Stats() }

// ProjectLog returns the sequence numbers of the records of project pnum in
// the ingest log, in order (tests and tools that inspect the log).
func (s *Store) ProjectLog(pnum uint32) []uint64 {
	var seqs []uint64
	for _, e := range s.ilog.Pending(nil, pnum, 0, 1<<30) {
		seqs = append(seqs, e.Seq)
	}
	return seqs
}

// Registry returns the projects-and-keys registry.
func (s *Store) Registry() *Registry { return s.reg }

// retainsRaw is whether the raw per-session stream of the project is kept:
// the project's own choice (a fleet bundle's rawRetention), else the
// node's Retention.
func (s *Store) retainsRaw(projectID string) bool {
	if s.reg != nil {
		if p := s.reg.Project(projectID); p != nil {
			if on, set := p.RawRetention(); set {
				return on
			}
		}
	}
	return s.opts.Retention
}

// Sink returns the group-committing core.Sink for accepted batches.
func (s *Store) Sink() core.Sink { return s.com }

// Aggregator returns the aggregator folding the ingest log (nil when read-only).
func (s *Store) Aggregator() *Aggregator { return s.agg }

// Committer returns the group committer (its statistics).
func (s *Store) Committer() *Committer { return s.com }

// Writable reports whether the store takes writes now, and if not, why.
func (s *Store) Writable() error {
	if s.closed.Load() {
		return fmt.Errorf("%w: store is closed", core.ErrUnavailable)
	}
	if s.opts.ReadOnly {
		return fmt.Errorf("%w: store is read-only", core.ErrUnavailable)
	}
	return s.space.writable()
}

// admitWrite readies the main database for a write of about n bytes of keys
// and values (space.go), or says why the store does not take it; its done
// must be called once the write is made.
func (s *Store) admitWrite(n int) (admission, error) {
	if err := s.Writable(); err != nil {
		return admission{}, err
	}
	return s.space.admit(s.mdb, forWrite, int64(n)+4<<10, int64(n)+4<<10)
}

// closeSpace closes the space guard's files (when Open fails).
func (s *Store) closeSpace() {
	if s.space != nil {
		s.space.close()
	}
}

// Close stops taking writes, waits for in-flight commits and closes Badger
// cleanly. It is safe to call more than once.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if s.com != nil {
			s.com.close()
		}
		close(s.stop)
		s.bg.Wait()
		for _, f := range s.onClose {
			f()
		}
		if s.ilog != nil {
			s.ilog.Close()
		}
		// Badger flushes its memtables as it closes: the reserve's room.
		if s.space != nil {
			s.space.releaseForClose()
		}
		// Both close at once: each may wait for room for its flush.
		closing := make(chan error, 2)
		n := 1
		go func() { closing <- s.db.Close() }()
		if s.adb != nil {
			n++
			go func() { closing <- s.adb.Close() }()
		}
		finish := func() {
			s.closeSpace()
			s.lock.Close()
		}
		start := time.Now()
		for n > 0 {
			select {
			case cerr := <-closing:
				n--
				if err == nil {
					err = cerr
				}
				continue
			case <-time.After(time.Second):
			}
			if s.space == nil || time.Since(start) < s.opts.closeWaitOrDefault() || !s.space.tooFullToFlush() {
				continue
			}
			// A flush Badger retries every second on a disk that something
			// else keeps full: the memtable logs hold what it would have
			// flushed, and the next open replays them. Badger finishes in
			// the background if room comes back.
			s.log.Error("closing without flushing the memtables: the disk is full; they are replayed at the next start")
			go func(n int) {
				for ; n > 0; n-- {
					<-closing
				}
				finish()
			}(n)
			err = ErrClosedUnflushed
			return
		}
		finish()
	})
	return err
}

// ErrClosedUnflushed is returned by Close when the disk stayed too full for
// Badger to flush its memtables: nothing acknowledged is lost (the memtable
// logs hold it and the next open replays them).
var ErrClosedUnflushed = errors.New("storage: closed without flushing the memtables (disk full); they are replayed at the next open")

// every runs f every d, in its own goroutine, until the store closes.
func (s *Store) every(d time.Duration, f func()) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				f()
			}
		}
	}()
}

type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error("badger: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn("badger: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (b badgerLogger) Infof(f string, a ...any) {
	b.l.Debug("badger: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (b badgerLogger) Debugf(f string, a ...any) {}

// subDir returns DATA_DIR/name, created if needed; ok is false when it
// cannot be used: an error, or read-only mode and the dir does not exist
// yet (the database is then nil).
func subDir(opts Options, name string) (dir string, ok bool, err error) {
	dir = filepath.Join(opts.Dir, name)
	if opts.ReadOnly {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			return dir, false, nil
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return dir, false, fmt.Errorf("storage: create %s: %w", dir, err)
	}
	return dir, true, nil
}

// openAggregates opens the aggregates database, DATA_DIR/agg. Cells are
// rewritten several times a second under load, so they are kept in the
// LSM tree (value threshold 1 MiB), where compactions drop old versions,
// rather than in a value log that would need collecting. Its block cache
// (32 MiB) holds what one read of the session-scope aggregates walks at
// 10,000 sessions (docs/RATIONALE.md, "Why is the aggregates' block cache
// 32 MiB?"). Its memtables are 32 MiB: Badger bounds a transaction at 15%
// of one, and a fold writes every cell it touches in one transaction
// (docs/RATIONALE.md, "Why is the aggregates' memtable 32 MiB?").
func openAggregates(opts Options, space *spaceGuard) (*badger.DB, error) {
	dir, ok, err := subDir(opts, "agg")
	if !ok {
		return nil, err
	}
	bo := badgerOptions(dir, opts).
		WithValueThreshold(1 << 20).
		WithMemTableSize(32 << 20).
		WithBlockCacheSize(32 << 20).
		WithIndexCacheSize(4 << 20).
		WithValueLogFileSize(64 << 20)
	db, err := openBadger(bo, opts.Dir)
	if err != nil || space == nil {
		return db, err
	}
	if err := space.attach("agg", dir, db, bo); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// segmentSize is the ingest log's segment size: a new segment is started
// once the one written passes it (a record never spans two).
func (o *Options) segmentSize() int64 {
	if o.logFileBytes > 0 {
		return o.logFileBytes
	}
	return ingestlog.DefaultSegmentMax
}

// logReaders names the ingest log's readers besides the aggregator.
func (o *Options) logReaders() []string {
	if o.Forward {
		return []string{forwardReader}
	}
	return nil
}

// ingestLogDir is the ingest log's folder in the data dir.
const ingestLogDir = "ingest"

// badgerOptions are the settings all three databases share.
func badgerOptions(dir string, opts Options) badger.Options {
	bo := badger.DefaultOptions(dir).
		WithLogger(badgerLogger{opts.Logger}).
		WithSyncWrites(opts.SyncWrites).
		WithDetectConflicts(false).
		WithReadOnly(opts.ReadOnly).
		WithMemTableSize(16 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(4).
		WithNumLevelZeroTablesStall(12).
		WithNumCompactors(2).
		// Every table of every level is of one size. Badger's default
		// doubles it at each level below the base, so the deeper the tree
		// grows with the data, the larger the tables a compaction builds,
		// in memory, before it writes them: the heap's peaks rose with the
		// data dir in the soak (docs/RATIONALE.md, "Why are all of
		// Badger's tables one size?").
		WithBaseTableSize(4 << 20).
		WithCompression(options.Snappy).
		WithMetricsEnabled(false)
	bo.TableSizeMultiplier = 1 // no With… setter
	return bo
}

// openBadger opens one database, naming the data dir when another process
// holds it.
func openBadger(bo badger.Options, dataDir string) (*badger.DB, error) {
	db, err := badger.Open(bo)
	if err != nil {
		if strings.Contains(err.Error(), "Another process is using this Badger database") ||
			strings.Contains(err.Error(), "resource temporarily unavailable") {
			return nil, fmt.Errorf("%w (%s): stop the server or use its admin API", ErrDataDirInUse, dataDir)
		}
		return nil, fmt.Errorf("storage: open %s: %w", bo.Dir, err)
	}
	return db, nil
}
