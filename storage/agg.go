package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dgraph-io/badger/v4"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/storage/ingestlog"
)

// Key namespaces of the aggregator.
const (
	nsAgg        = 'a' // a <pnum:4> <kind:1> <scope> <bucket:8>
	nsSession    = 'x' // x <pnum:4> <len:2> <sessionId>
	nsCheckpoint = 'c' // c <pnum:4> → next log seq to fold
	nsSessionIdx = 't' // t <pnum:4> <startedAt:8> <sessionId> → summary
)

const (
	scopeScene   = 's' // s <len:1> <sceneId>
	scopeSession = 'S' // S <len:2> <sessionId> <len:1> <sceneId>
)

// foldRecords bounds the log records folded in one transaction.
const foldRecords = 1024

// foldGrowAfter is how many full folds that fit a transaction double a
// halved fold limit back.
const foldGrowAfter = 64

// limit is the records a fold takes now (foldLimit; foldRecords at first).
func (a *Aggregator) limit() int {
	if n := a.foldLimit.Load(); n > 0 {
		return int(n)
	}
	a.foldLimit.CompareAndSwap(0, foldRecords)
	return int(a.foldLimit.Load())
}

// Aggregator folds the ingest log into aggregates. It is the only writer of
// aggregate keys. For each project it reads the log from a checkpoint, folds
// a run of records in memory, and commits the updated aggregates, the new
// checkpoint and the deletion of the folded log records in one transaction:
// after a crash at any moment, a record is either wholly folded (and gone from
// the log) or not at all, so every acknowledged event is counted exactly once.
type Aggregator struct {
	s      *Store
	notify chan struct{}

	// dirty holds the projects with log records committed since the last
	// pass took the set; a pass folds only those (a node with thousands of
	// projects does not scan every project's log on every commit).
	dirtyMu  sync.Mutex
	dirty    map[uint32]struct{}
	allDirty bool // at open: every project may have a backlog
	done     chan struct{}

	threadsMu sync.RWMutex // held shared while a fold runs on a thread
	threads   *foldThreads // set while run runs
	mu        sync.Mutex   // serialises folding (the loop and Sync)
	members   members      // the event being folded
	st        foldState    // the fold's delta, reused by every fold
	event     logEvent     // the event being folded
	cellBuf   []byte       // merged cells of a fold (commitFold)
	// foldLimit is how many records a fold takes: foldRecords, halved
	// while folds do not fit one transaction, doubled back after
	// foldGrowAfter folds that did (foldUntilCaughtUp).
	foldLimit, foldFits atomic.Int64
	recBuf              []byte            // the log record being folded
	ents                []ingestlog.Entry // the records of a fold
	keyBuf              []string          // a cell's sorted items (commitFold)
	rowBuf              [][]float64       // their rows
	entBuf              []int32           // their entries

	records, events, errors atomic.Uint64
	stale                   atomic.Uint64 // records found already folded (dropped unfolded)
	orphaned                atomic.Uint64 // records of projects not in the registry, dropped
	// orphans holds when each project with log records but no registry
	// entry was first seen so (the run goroutine's).
	orphans     map[uint32]time.Time
	orphanCheck time.Time     // the last look for them
	committed   atomic.Uint64 // log records committed since open
	backlog     uint64        // log records waiting at open
}

// AggStats counts what the aggregator has folded since the store opened.
type AggStats struct {
	Records, Events uint64
	Errors          uint64
	// Orphaned counts the log records dropped unfolded because their
	// project is not in the registry (dropOrphans).
	Orphaned uint64
	// Lag is the number of committed log records not folded yet.
	Lag uint64
}

func newAggregator(s *Store) *Aggregator {
	a := &Aggregator{s: s, notify: make(chan struct{}, 1), done: make(chan struct{}), dirty: map[uint32]struct{}{}, allDirty: true}
	a.backlog = uint64(s.ilog.Records())
	return a
}

// markDirty records that project pnum has new log records.
func (a *Aggregator) markDirty(pnum uint32) {
	a.dirtyMu.Lock()
	a.dirty[pnum] = struct{}{}
	a.dirtyMu.Unlock()
}

// takeDirty returns the projects to fold in the next pass and clears the
// set; all is true when every project must be looked at.
func (a *Aggregator) takeDirty(into []uint32) (pnums []uint32, all bool) {
	a.dirtyMu.Lock()
	defer a.dirtyMu.Unlock()
	all, a.allDirty = a.allDirty, false
	for p := range a.dirty {
		into = append(into, p)
		delete(a.dirty, p)
	}
	return into, all
}

// poke records n newly committed log records and wakes the aggregator
// (non-blocking); the committer calls it after each group commit.
func (a *Aggregator) poke(n int) {
	a.committed.Add(uint64(n))
	select {
	case a.notify <- struct{}{}:
	default:
	}
}

// foldInterval is the least time between two passes of the aggregator.
// Each pass rewrites every aggregate cell it touches, and under load the
// same scene-wide cells (heatmaps, hourly counts) are touched by every
// pass; spacing passes lets each one fold more records per rewrite, so
// the cost of a cell is paid a few times a second, not once per commit.
// Reads see aggregates at most this much (plus one pass) behind.
const foldInterval = 250 * time.Millisecond

// passSpacing is how many times its own duration a pass is apart from the
// next at least (run), up to maxPassSpacing: a pass that caught up a
// backlog is long, and spacing by it without a bound would let the next
// backlog grow, and the next pass, and so on.
const (
	passSpacing    = 4
	maxPassSpacing = time.Second
)

// Folding runs on one of two OS threads. Normally it is the background
// thread, niced to backgroundNice, so that a pass (tens of milliseconds of
// CPU every foldInterval under load) takes CPU the request path leaves
// over instead of delaying requests; the server gives the Go scheduler
// one more P than it has cores (docs/RATIONALE.md), so a pass waiting for
// the CPU holds no P that requests need. When the log is more than
// behindRecords records behind, as it can be when requests take every
// core, passes run on a thread at normal priority until folding has
// caught up: the backlog stays bounded. (A thread's nice value can be
// raised without privilege but not lowered back, hence two threads.)
const (
	backgroundNice = 19
	behindRecords  = 2 * foldRecords
	// checkBehindEvery is how many records a fold on the background thread
	// folds between looks at the backlog: it ends early (and the next fold
	// goes to the normal thread) as soon as the log is behind, rather than
	// finish a fold the background thread gets little CPU for.
	checkBehindEvery = 32
)

type foldThreads struct{ background, normal foldThread }

// foldThread runs the passes handed to it on one locked OS thread.
type foldThread chan func()

func startFoldThread(nice int, log func(error)) foldThread {
	t := make(foldThread)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if nice != 0 {
			if err := lowerThreadPriority(nice); err != nil {
				log(err)
			}
		}
		for f := range t {
			f()
		}
	}()
	return t
}

// do runs f on the thread and waits for it.
func (t foldThread) do(f func()) {
	done := make(chan struct{})
	t <- func() { f(); close(done) }
	<-done
}

func (a *Aggregator) run(stop <-chan struct{}) {
	defer close(a.done)
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	logNice := func(err error) { a.s.log.Warn("aggregator: cannot lower the folding thread's priority", "err", err) }
	th := &foldThreads{startFoldThread(backgroundNice, logNice), startFoldThread(0, nil)}
	a.threadsMu.Lock()
	a.threads = th
	a.threadsMu.Unlock()
	defer func() {
		a.threadsMu.Lock() // waits for folds on the threads to finish
		a.threads = nil
		close(th.background)
		close(th.normal)
		a.threadsMu.Unlock()
	}()
	var pnums []uint32
	for {
		select {
		case <-stop:
			return
		case <-a.notify:
		case <-t.C:
		}
		start := time.Now()
		var all bool
		pnums, all = a.takeDirty(pnums[:0])
		var err error
		if all {
			err = a.foldAll(stop)
		} else {
			err = a.foldProjects(stop, pnums)
		}
		if errors.Is(err, core.ErrUnavailable) {
			// The disk is full (the guard logged it): the log keeps the
			// records, and folding goes on once there is room.
			a.dirtyMu.Lock()
			a.allDirty = true
			a.dirtyMu.Unlock()
		} else if err != nil && !errors.Is(err, badger.ErrDBClosed) {
			a.s.log.Error("aggregation failed; will retry", "err", err)
			a.errors.Add(1)
			a.dirtyMu.Lock()
			a.allDirty = true
			a.dirtyMu.Unlock()
		}
		if start.Sub(a.orphanCheck) >= a.s.opts.orphanCheckEvery() {
			a.orphanCheck = start
			a.dropOrphans(start)
		}
		// A pass that took long (many hot cells to rewrite) spaces the next
		// one out, up to a second: each pass folds more records per
		// rewrite.
		took := time.Since(start)
		if wait := min(max(foldInterval, passSpacing*took), maxPassSpacing) - took; wait > 0 {
			select {
			case <-stop:
				return
			case <-time.After(wait):
			}
		}
	}
}

// Stats returns the aggregator's counters. It takes no lock.
func (a *Aggregator) Stats() AggStats {
	st := AggStats{Records: a.records.Load(), Events: a.events.Load(), Errors: a.errors.Load(), Orphaned: a.orphaned.Load()}
	if pending, done := a.backlog+a.committed.Load(), st.Records+a.stale.Load()+st.Orphaned; pending > done {
		st.Lag = pending - done
	}
	return st
}

// Sync folds everything committed so far; reads issued after it returns see
// every event acknowledged before it was called.
func (a *Aggregator) Sync(ctx context.Context) error {
	return a.foldAll(ctx.Done())
}

func (a *Aggregator) foldAll(stop <-chan struct{}) error {
	for _, p := range a.s.reg.Projects() {
		if err := a.foldUntilCaughtUp(stop, p.Num); err != nil {
			return err
		}
	}
	return nil
}

func (a *Aggregator) foldProjects(stop <-chan struct{}, pnums []uint32) error {
	for _, p := range pnums {
		if err := a.foldUntilCaughtUp(stop, p); err != nil {
			return err
		}
	}
	return nil
}

func (a *Aggregator) foldUntilCaughtUp(stop <-chan struct{}, pnum uint32) error {
	for {
		limit := a.limit()
		select {
		case <-stop:
			return nil
		default:
		}
		// Each fold goes to a thread chosen by the backlog at that moment, so
		// a long catch-up moves to the normal-priority thread as soon as the
		// log falls behind, and back once it has caught up.
		var n int
		var err error
		cutShort := false
		a.onThread(func(background bool) {
			var behind func() bool
			if background {
				behind = a.behind
			}
			n, err = a.foldProjectUnless(pnum, limit, behind)
			cutShort = background && n < limit && a.behind()
		})
		if errors.Is(err, badger.ErrTxnTooBig) && limit > 1 {
			// The fold's cells do not fit one transaction: fold fewer
			// records, from now on.
			a.foldLimit.CompareAndSwap(int64(limit), int64(limit/2))
			a.foldFits.Store(0)
			continue
		}
		if err == nil && n == limit && limit < foldRecords && a.foldFits.Add(1) >= foldGrowAfter {
			a.foldFits.Store(0)
			a.foldLimit.CompareAndSwap(int64(limit), int64(min(foldRecords, 2*limit)))
		}
		if err != nil || (n < limit && !cutShort) {
			return err
		}
	}
}

// onThread runs f on the background folding thread, or on the normal one
// when the log is behind; inline when no folding threads run (aggregation
// disabled: Sync folds in its caller).
func (a *Aggregator) onThread(f func(background bool)) {
	a.threadsMu.RLock()
	defer a.threadsMu.RUnlock()
	th := a.threads
	if th == nil {
		f(false)
		return
	}
	if a.behind() {
		th.normal.do(func() { f(false) })
		return
	}
	th.background.do(func() { f(true) })
}

// behind reports whether the log is more than behindRecords records behind.
func (a *Aggregator) behind() bool { return a.Stats().Lag > behindRecords }

// foldState is one fold's in-memory delta.
type foldState struct {
	cells    foldCells
	sessions map[string]*sessionDelta
	strs     map[string]string // interned session and scene ids

	// recent remembers, per kind and scope (scene, session), the cell last
	// used: consecutive events of a record mostly share session, scene and
	// time bucket, so most lookups skip the map (and hashing two strings).
	recent [numKinds][2]recentCell

	sessionCells []int32 // deriveScenes' scratch

	// The previous event's scene, session and session delta: consecutive
	// events mostly share them.
	lastScene, lastSession string
	lastDelta              *sessionDelta
	lastDeltaOf            string

	buf     []byte     // an item key being built
	row1    [1]float64 // a one-number row being added
	members members    // a session_start object's members

	// origins are the forwarded records folded, by node (a hub's records,
	// origin.go): the fold's transaction adds them to the node's set.
	origins map[string][]uint64

	// atCommit is set while commitFold adds what needed the sessions'
	// records, after deriveScenes: bump then derives what it adds.
	atCommit bool
	dbuf     []byte // derive's item being built
}

// reset readies the state for the next fold. Its maps are new for every
// fold: a cleared map keeps its size, and iterating or probing a big,
// nearly empty one (sessions come and go) costs more than a new one.
func (st *foldState) reset() {
	st.cells.reset()
	st.sessions = map[string]*sessionDelta{}
	st.strs = map[string]string{}
	st.recent = [numKinds][2]recentCell{}
	st.lastScene, st.lastSession, st.lastDelta, st.lastDeltaOf = "", "", nil, ""
	st.origins = nil
}

// item returns b, an item key built in st.buf, and keeps the grown buffer
// for the next one.
func (st *foldState) item(b []byte) []byte {
	st.buf = b[:0]
	return b
}

// typeItems and resourceItems are the items of the counts and resource
// kinds as bytes.
var (
	typeItems = func() (t [core.NumEventTypes][]byte) {
		for i := range t {
			t[i] = []byte(core.EventType(i).String())
		}
		return t
	}()
	resourceItems = func() (r [][]byte) {
		for _, m := range ResourceMetrics {
			r = append(r, []byte(m))
		}
		return r
	}()
)

// stringBytes returns the bytes of s without copying; they must not be
// modified.
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

type recentCell struct {
	id   cellID
	cell int32 // 1 + the cell's index in the fold's cells; 0 for none
}

// cellID names a cell while folding; its Badger key is built once, at commit.
type cellID struct {
	kind    aggKind
	session string // "" for the scene scope
	scene   string
	bucket  int64
}

// intern returns b as a string, allocating once per distinct value per fold.
// last is the caller's previous result: consecutive events mostly repeat it.
func (st *foldState) intern(last *string, b []byte) string {
	if *last == string(b) {
		return *last
	}
	*last = st.internMap(b)
	return *last
}

func (st *foldState) internMap(b []byte) string {
	if s, ok := st.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	st.strs[s] = s
	return s
}

type sessionDelta struct {
	lastScene     string // the scene last added to scenes
	visitor       string
	events        int64
	started, last int64
	scenes        map[string]struct{}
	sceneOrder    []string // scenes in the order first seen
	meta          map[string]json.RawMessage
	inputs        inputSeen
	turns         turnState
	steps         turnState // positions (aDir.dir holds the position)
	pathSec       int64     // 1 + the second of the path's last point (foldPath)
	xr            int64     // events of an input type from a headset's source (xrSources)
	cam           camState  // the latest camera_sample (clicks join it)
	pendingClicks []pendingClick
}

// foldProject folds up to max log records of one project and returns how many.
func (a *Aggregator) foldProject(pnum uint32, max int) (int, error) {
	return a.foldProjectUnless(pnum, max, nil)
}

// foldProjectUnless is foldProject, ending the fold early (with what it has
// folded) once stop, looked at every checkBehindEvery records, says so.
func (a *Aggregator) foldProjectUnless(pnum uint32, max int, stop func() bool) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.s.closed.Load() {
		return 0, badger.ErrDBClosed
	}
	if err := a.s.space.check(forFold, 0); err != nil {
		return 0, err // no fold that could not be committed
	}
	cpKey := checkpointKey(pnum)
	st := &a.st
	st.reset()
	events := 0
	var scratch []byte
	next, err := a.s.checkpoint(pnum)
	if err != nil {
		return 0, err
	}
	// Records below the checkpoint were folded by a pass that ended before
	// it let go of them (a crash between the two steps): they are dropped
	// now, never folded again.
	stale := a.s.ilog.Drop(pnum, next)
	a.ents = a.s.ilog.Pending(a.ents[:0], pnum, next, max)
	folded := 0
	for _, e := range a.ents {
		if stop != nil && folded%checkBehindEvery == checkBehindEvery-1 && stop() {
			break
		}
		if e.Seq != next {
			// Sequence numbers are gapless as written; a gap means records
			// were lost to a corrupt segment (the log said so at open).
			a.s.log.Warn("ingest log records missing", "project_num", pnum, "from_seq", next, "to_seq", e.Seq-1)
			next = e.Seq
		}
		// The record is read into a buffer of the aggregator's (the segment is
		// in the page cache: about a microsecond for 200 events).
		rec, buf, err := a.s.ilog.Read(a.recBuf, pnum, e)
		a.recBuf = buf
		var skipped int
		if node, seq, ok := recordOrigin(rec); ok && err == nil {
			if st.origins == nil {
				st.origins = map[string][]uint64{}
			}
			st.origins[string(node)] = append(st.origins[string(node)], seq)
		}
		if err == nil {
			scratch, skipped, err = decodeLogRecordInto(rec, scratch, &a.members, &a.event, func(e *logEvent) error {
				events++
				a.foldEvent(st, e)
				return nil
			})
		}
		if err != nil {
			return 0, fmt.Errorf("log record %d of project %d: %w", e.Seq, pnum, err)
		}
		// A pass can fold for tens of milliseconds on end; between records
		// it steps aside, so that requests waiting for a CPU (their commit
		// acknowledgements above all) are not held up behind it.
		runtime.Gosched()
		if skipped > 0 {
			a.s.log.Warn("events not folded: not JSON objects", "project_num", pnum, "seq", e.Seq, "events", skipped)
		}
		folded++
		next++
	}
	a.stale.Add(uint64(stale))
	if folded > 0 {
		st.deriveScenes()
	}
	// The writes run at normal priority, never on the niced thread: Badger
	// marks a commit begun under a lock and every new transaction of that
	// database waits for it to be done, so a commit preempted on a niced
	// thread would stall the committer's (and every request's) commits
	// behind it for as long as the kernel leaves that thread waiting.
	if folded > 0 {
		err = atNormalPriority(func() error {
			if err := a.commitFold(pnum, st, cpKey, next); err != nil {
				return err
			}
			// Folded and checkpointed: the records go, and with them every
			// segment left with nothing to fold.
			a.s.ilog.Drop(pnum, next)
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	// Segments left with nothing to fold are deleted here, on the folding
	// thread, where the system time it takes competes least with requests.
	a.s.ilog.RemoveDead()
	a.records.Add(uint64(folded))
	a.events.Add(uint64(events))
	return folded, nil
}

func checkpointKey(pnum uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{nsCheckpoint}, pnum)
}

// checkpoint returns the aggregator's checkpoint of project pnum: the next
// log sequence number to fold.
func (s *Store) checkpoint(pnum uint32) (uint64, error) {
	if s.adb == nil {
		return 0, nil
	}
	var next uint64
	err := s.adb.View(func(txn *badger.Txn) error {
		item, err := txn.Get(checkpointKey(pnum))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) != 8 {
				return ErrCorruptRecord
			}
			next = binary.BigEndian.Uint64(v)
			return nil
		})
	})
	return next, err
}

// atNormalPriority runs f on a goroutine of its own (so on an OS thread of
// normal priority, not the caller's locked fold thread) and waits for it.
func atNormalPriority(f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	return <-done
}

// commitFold merges the delta into the stored aggregates and commits it with
// the checkpoint, in the aggregates database. The folded log records are
// deleted after (deleteLog): a crash in between leaves them below the
// checkpoint, where the next pass deletes them without folding them again.
func (a *Aggregator) commitFold(pnum uint32, st *foldState, cpKey []byte, next uint64) error {
	txn := a.s.adb.NewTransaction(true)
	defer txn.Discard()
	// What the transaction writes, for the room its commit asks for.
	m := a.s.madb
	var memBytes, vlogBytes int64
	set := func(k, v []byte) error {
		if m != nil {
			memBytes += m.walBytes(len(k), len(v))
			vlogBytes += m.vlogBytes(len(k), len(v))
		}
		return txn.Set(k, v)
	}
	// A session's first turn and step of this fold are measured from the
	// direction and position its record kept; they join the cells before
	// they are written.
	st.atCommit = true
	defer func() { st.atCommit = false }()
	for sess, d := range st.sessions {
		if !d.turns.first.set && !d.steps.first.set && len(d.pendingClicks) == 0 {
			continue
		}
		rec, err := readSessionRecord(txn, pnum, sess)
		if err != nil {
			return err
		}
		if f := d.turns.first; f.set && rec.LastDir != nil {
			st.addTurn(sess, f.scene, f.ts, *rec.LastDir, f.dir)
		}
		if f := d.steps.first; f.set && rec.LastPos != nil {
			st.addStep(sess, f.scene, f.ts, *rec.LastPos, f.dir)
		}
		if rec.LastCam != nil {
			cam := *rec.LastCam
			cam.Set, cam.parsed = true, true // its optics came decoded
			for i := range d.pendingClicks {
				p := &d.pendingClicks[i]
				st.addClick(sess, p, []byte(p.mesh), &cam)
			}
		}
	}
	// Merged cells are built in one buffer, reused by the next fold: Badger
	// holds the values until Commit returns, and a slice handed to it stays
	// valid even when the buffer grows (append moves on to a new array).
	out := a.cellBuf[:0]
	c := &st.cells
	for ci, id := range c.ids {
		ops := kindOps[id.kind]
		a.entBuf = c.sorted(a.entBuf, int32(ci))
		if len(a.entBuf) == 0 {
			continue
		}
		a.keyBuf, a.rowBuf = a.keyBuf[:0], a.rowBuf[:0]
		for _, e := range a.entBuf {
			a.keyBuf = append(a.keyBuf, c.item(&c.ents[e]))
			a.rowBuf = append(a.rowBuf, c.row(&c.ents[e]))
		}
		var sess []byte
		if id.session != "" {
			sess = []byte(id.session)
		}
		k := cellKey(pnum, id.kind, sess, []byte(id.scene), id.bucket)
		start := len(out)
		item, err := txn.Get(k)
		switch {
		case err == nil:
			err = item.Value(func(v []byte) error {
				var err error
				out, err = mergeSorted(out, ops, v, a.keyBuf, a.rowBuf)
				return err
			})
			if err != nil {
				return err
			}
		case errors.Is(err, badger.ErrKeyNotFound):
			out, _ = mergeSorted(out, ops, nil, a.keyBuf, a.rowBuf)
		default:
			return err
		}
		if err := set(k, out[start:len(out):len(out)]); err != nil {
			return err
		}
	}
	if cap(out) <= 16<<20 { // do not keep a peak's buffer for ever
		a.cellBuf = out[:0]
	} else {
		a.cellBuf = nil
	}
	for node, seqs := range st.origins {
		k := originKeyBytes(originKey{pnum, node})
		o := &originSet{}
		item, err := txn.Get(k)
		switch {
		case err == nil:
			if err := item.Value(func(v []byte) error {
				var err error
				o, err = decodeOriginSet(v)
				return err
			}); err != nil {
				return err
			}
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		}
		for _, s := range seqs {
			o.add(s)
		}
		if err := set(k, appendOriginSet(nil, o)); err != nil {
			return err
		}
	}
	for sess, d := range st.sessions {
		k := sessionKey(pnum, []byte(sess))
		var rec SessionRecord
		item, err := txn.Get(k)
		switch {
		case err == nil:
			if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &rec) }); err != nil {
				return err
			}
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		default:
			rec.ID, rec.StartedAt, rec.EndedAt = sess, d.started, d.last
			rec.XR = new(int64)
		}
		oldStart, existed := rec.StartedAt, err == nil
		rec.merge(d)
		b, _ := json.Marshal(&rec)
		if err := set(k, b); err != nil {
			return err
		}
		// The by-start index holds the summary without metadata, so a
		// listing reads only the rows it returns.
		if existed && oldStart != rec.StartedAt {
			memBytes += 64 + int64(len(sess))
			if err := txn.Delete(sessionIndexKey(pnum, oldStart, []byte(sess))); err != nil {
				return err
			}
		}
		summary := rec
		summary.Meta = nil
		sb, _ := json.Marshal(&summary)
		if err := set(sessionIndexKey(pnum, rec.StartedAt, []byte(sess)), sb); err != nil {
			return err
		}
	}
	if err := set(cpKey, binary.BigEndian.AppendUint64(nil, next)); err != nil {
		return err
	}
	adm, err := a.s.space.admit(m, forFold, memBytes, vlogBytes)
	if err != nil {
		return err
	}
	defer adm.done()
	return txn.Commit()
}

// SessionRecord is a session's summary and metadata.
type SessionRecord struct {
	ID        string                     `json:"id"`
	VisitorID string                     `json:"visitor"`
	Events    int64                      `json:"events"`
	StartedAt int64                      `json:"started"`
	EndedAt   int64                      `json:"ended"`
	Scenes    []string                   `json:"scenes"`
	Meta      map[string]json.RawMessage `json:"meta,omitempty"`
	// LastDir is the view direction of the session's last camera_sample
	// folded: the next fold's first turn is measured from it.
	LastDir *[3]float64 `json:"lastDir,omitempty"`
	// LastPos is its position, for the next fold's first step.
	LastPos *[3]float64 `json:"lastPos,omitempty"`
	// LastCam is its camera, for the clicks of the next fold before its
	// first camera_sample.
	LastCam *camState `json:"lastCam,omitempty"`
	// XR counts the session's events of an input type from a headset's
	// source (the input cells' count of those items, all scenes and
	// hours), so xr/abandonment tells a headset session from its record
	// alone. Nil in a record folded before the count was kept: it stays
	// nil (a count from then on would be short), and the reads fall back
	// to the input cells.
	XR *int64 `json:"xr,omitempty"`
}

// readSessionRecord reads a session's record in txn; the zero record when
// there is none yet.
func readSessionRecord(txn *badger.Txn, pnum uint32, sess string) (SessionRecord, error) {
	var rec SessionRecord
	item, err := txn.Get(sessionKey(pnum, []byte(sess)))
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return rec, nil
	case err != nil:
		return rec, err
	}
	err = item.Value(func(v []byte) error { return json.Unmarshal(v, &rec) })
	return rec, err
}

func (r *SessionRecord) merge(d *sessionDelta) {
	r.Events += d.events
	r.StartedAt = min(r.StartedAt, d.started)
	r.EndedAt = max(r.EndedAt, d.last)
	if r.XR != nil {
		*r.XR += d.xr
	}
	if d.visitor != "" {
		r.VisitorID = d.visitor
	}
	for _, s := range d.sceneOrder {
		found := false
		for _, x := range r.Scenes {
			if x == s {
				found = true
				break
			}
		}
		if !found && len(r.Scenes) < 64 {
			r.Scenes = append(r.Scenes, s)
		}
	}
	if d.turns.last.set {
		dir := d.turns.last.dir
		r.LastDir = &dir
	}
	if d.steps.last.set {
		pos := d.steps.last.dir
		r.LastPos = &pos
	}
	if d.cam.Set {
		c := d.cam
		c.parseOptics()
		r.LastCam = &c
	}
	if len(d.meta) > 0 {
		if r.Meta == nil {
			r.Meta = map[string]json.RawMessage{}
		}
		for k, v := range d.meta {
			r.Meta[k] = v
		}
	}
}

func sessionKey(pnum uint32, session []byte) []byte {
	k := binary.BigEndian.AppendUint32([]byte{nsSession}, pnum)
	k = binary.BigEndian.AppendUint16(k, uint16(len(session)))
	return append(k, session...)
}

func sessionIndexKey(pnum uint32, started int64, session []byte) []byte {
	k := binary.BigEndian.AppendUint32([]byte{nsSessionIdx}, pnum)
	k = binary.BigEndian.AppendUint64(k, uint64(started))
	return append(k, session...)
}

// cellKey builds an aggregate key for a scope (scene, or session within scene).
func cellKey(pnum uint32, kind aggKind, session, scene []byte, bucket int64) []byte {
	k := binary.BigEndian.AppendUint32([]byte{nsAgg}, pnum)
	k = append(k, byte(kind))
	if session == nil {
		k = append(k, scopeScene, byte(len(scene)))
		k = append(k, scene...)
	} else {
		k = append(k, scopeSession)
		k = binary.BigEndian.AppendUint16(k, uint16(len(session)))
		k = append(k, session...)
		k = append(k, byte(len(scene)))
		k = append(k, scene...)
	}
	return binary.BigEndian.AppendUint64(k, uint64(bucket))
}

// bump adds a row to item of kind for an event of session in scene. While
// folding, rows go to the session's cell only; the scene-wide cells, and
// the hourly roll-ups of per-minute kinds, are derived from the session
// cells once per fold (deriveScenes): merging is associative and
// commutative, and a fold touches each session cell many times but
// derives from it once, so most events cost one cell lookup instead of
// three.
func (st *foldState) bump(kind aggKind, session, scene string, ts int64, item []byte, row ...float64) {
	bucket := ts - ts%kindBucket(kind)
	if session == "" {
		if !sessionOnly[kind] {
			st.toScene(kind, scene, bucket, item, row)
		}
		return
	}
	st.add(kind, session, scene, bucket, item, row)
	if st.atCommit {
		// Added at commit, after deriveScenes: derived here.
		st.derive(kind, session, scene, bucket, string(item), row)
	}
}

// toScene adds an item to its scene's cell and, for a per-minute kind,
// the scene's hourly roll-up.
func (st *foldState) toScene(kind aggKind, scene string, bucket int64, item []byte, row []float64) {
	st.add(kind, "", scene, bucket, item, row)
	if hk := rollupOf[kind]; hk != 0 {
		st.add(hk, "", scene, bucket-bucket%hourMs, item, row)
	}
}

// derive adds an item of a session's cell to the cells derived from it:
// its scene's (toScene), or, for a session-only kind, its derivations'.
func (st *foldState) derive(kind aggKind, session, scene string, bucket int64, item string, row []float64) {
	if !sessionOnly[kind] {
		st.toScene(kind, scene, bucket, stringBytes(item), row)
		return
	}
	for _, d := range derivedFrom[kind] {
		if d.keep != nil && !d.keep(item) {
			continue
		}
		sc := scene
		if d.allScenes {
			sc = ""
		}
		it := stringBytes(item)
		switch {
		case d.sceneItems:
			st.dbuf = sceneItem(st.dbuf[:0], scene)
			if d.item != nil {
				st.dbuf = d.item(st.dbuf, item)
			} else {
				st.dbuf = append(st.dbuf, item...)
			}
			it = st.dbuf
		case d.item != nil:
			st.dbuf = d.item(st.dbuf[:0], item)
			it = st.dbuf
		}
		st.add(d.to, session, sc, bucket, it, row)
	}
}

// add merges row into item of the cell (kind, session, scene, bucket).
func (st *foldState) add(kind aggKind, session, scene string, bucket int64, item []byte, row []float64) {
	id := cellID{kind, session, scene, bucket}
	scope := 0
	if session != "" {
		scope = 1
	}
	r := &st.recent[kind][scope]
	if r.cell == 0 || r.id != id {
		r.id, r.cell = id, st.cells.cell(id)+1
	}
	st.cells.add(r.cell-1, kindOps[kind], item, row)
}

// deriveScenes merges every session cell into its scene-wide cell, and
// per-minute kinds also into the scene's hourly roll-up (session queries
// read minutes; there is no per-session roll-up).
func (st *foldState) deriveScenes() {
	c := &st.cells
	st.sessionCells = st.sessionCells[:0]
	for i, id := range c.ids {
		if id.session != "" {
			st.sessionCells = append(st.sessionCells, int32(i))
		}
	}
	// derive adds to other cells only; the rows may move as the table
	// grows, so each is copied before (a row is at most 7 numbers: kindOps).
	var buf [16]float64
	for _, ci := range st.sessionCells {
		id := c.ids[ci]
		for e := c.heads[ci]; e >= 0; e = c.ents[e].prev {
			ent := &c.ents[e]
			row := buf[:copy(buf[:], c.row(ent))]
			st.derive(id.kind, id.session, id.scene, id.bucket, c.item(ent), row)
		}
	}
}

// Grid resolutions of the heatmaps (see docs/API.md).
const (
	PointerGrid  = 100  // screen cells per axis
	GazeVoxel    = 0.1  // base voxel edge in scene units (gaze and pointer hits)
	CameraVoxel  = 0.25 // base voxel edge of camera positions
	CameraDegree = 1    // camera direction cells are 1° × 1°
)

func (a *Aggregator) foldEvent(st *foldState, e *logEvent) {
	scene := st.intern(&st.lastScene, tokStr(e.f[fSceneID]))
	sess := st.intern(&st.lastSession, e.Session)
	ts := e.TS
	st.bump(kindCounts, sess, scene, ts, typeItems[e.Type], 1, float64(ts))

	sd := st.lastDelta
	if sd == nil || st.lastDeltaOf != sess {
		sd = st.sessions[sess]
		if sd == nil {
			sd = &sessionDelta{started: ts, last: ts, scenes: map[string]struct{}{}}
			st.sessions[sess] = sd
		}
		st.lastDelta, st.lastDeltaOf = sd, sess
		sd.lastScene = ""
	}
	sd.events++
	sd.started, sd.last = min(sd.started, ts), max(sd.last, ts)
	if sd.lastScene != scene {
		if _, seen := sd.scenes[scene]; !seen {
			sd.scenes[scene] = struct{}{}
			sd.sceneOrder = append(sd.sceneOrder, scene)
		}
		sd.lastScene = scene
	}
	if vid := tokStr(e.f[fVisitorID]); len(vid) > 0 && sd.visitor != string(vid) {
		sd.visitor = string(vid)
	}

	switch e.Type {
	case core.TypeCapabilityChange:
		b := append(append(st.buf[:0], tokStr(e.f[fKind])...), 0)
		b = append(append(b, tokStr(e.f[fFrom])...), 0)
		st.bump(kindCapabilities, sess, scene, ts, st.item(append(b, tokStr(e.f[fTo])...)), 1)
	case core.TypeSessionStart:
		if sd.meta == nil {
			sd.meta = map[string]json.RawMessage{}
		}
		for _, f := range sessionMetaFields {
			if x := e.f[f]; x != nil {
				sd.meta[aggFields[f-1]] = json.RawMessage(bytes.Clone(x))
			}
		}
	case core.TypeFramePerf:
		if fps, ok := parseNum(e.f[fFPS]); ok {
			st.bump(kindPerf, sess, scene, ts, nil, 1, fps, fps)
			st.bump(kindPerfHist, sess, scene, ts, st.item(appendFPSBin(st.buf[:0], fps)), 1)
		}
	case core.TypeResourceSample:
		st.bump(kindResources, sess, scene, ts, nil, 1, 0, 0)
		for i, f := range resourceFields {
			if x, ok := parseNum(e.f[f]); ok {
				st.bump(kindResources, sess, scene, ts, resourceItems[i], 1, x, x)
			}
		}
	case core.TypeMeshInteraction:
		st.bump(kindMeshTop, sess, scene, ts, tokStr(e.f[fMesh]), 1)
	case core.TypeMeshVisibility:
		vis, _ := parseNum(e.f[fVisibleMs])
		cen, _ := parseNum(e.f[fCenteredMs])
		frac, _ := parseNum(e.f[fMaxScreenFraction])
		st.bump(kindMeshDwell, sess, scene, ts, tokStr(e.f[fMesh]), vis, cen, frac, 1)
	case core.TypeHoverDwell:
		d, _ := parseNum(e.f[fDwellMs])
		st.bump(kindHover, sess, scene, ts, tokStr(e.f[fMesh]), d, d, 1)
	case core.TypePointerMove, core.TypePointerClick:
		var c [2]float64
		if tokVec(e.f[fScreen], c[:]) {
			st.bump(kindHeatPtr, sess, scene, ts, st.item(appendPointerCell(st.buf[:0], c[0], c[1])), 1)
		}
		var h [3]float64
		if tokVec(e.f[fHitPoint], h[:]) {
			b := appendGazeVoxel(append(st.buf[:0], sourceOf(e.f[fSource])), h)
			st.bump(kindHeatWorld, sess, scene, ts, st.item(b), 1)
		}
	case core.TypeCameraSample:
		var c, dir, pos [3]float64
		if tokVec(e.f[fHitPoint], c[:]) {
			st.bump(kindHeatGaze, sess, scene, ts, st.item(appendGazeVoxel(st.buf[:0], c)), 1)
		}
		hasDir := tokVec(e.f[fDirection], dir[:])
		if hasDir {
			if b, ok := appendCameraCell(st.buf[:0], dir); ok {
				st.bump(kindHeatCamera, sess, scene, ts, st.item(b), 1)
			}
			st.foldTurn(sd, sess, scene, ts, dir)
		}
		hasPos := tokVec(e.f[fPosition], pos[:])
		if hasPos {
			st.bump(kindCameraPos, sess, scene, ts, st.item(appendVoxel(st.buf[:0], pos, CameraVoxel)), 1)
			st.foldStep(sd, sess, scene, ts, pos)
			st.foldPath(sd, sess, scene, ts, pos)
		}
		sd.foldCamera(e, pos, hasPos, dir, hasDir)
	}
	if inputIndex[e.Type] != 0 {
		st.foldInput(e, sess, scene, ts, sd)
	}
	if perfTypes[e.Type] {
		st.foldPerf(e, sess, scene, ts)
	}
}

// perfTypes are the event types foldPerf reads.
var perfTypes = [core.NumEventTypes]bool{core.TypeFramePerf: true, core.TypeResourceSample: true,
	core.TypeCompileStall: true, core.TypeGraphicsDiagnostic: true, core.TypeSessionStart: true}

// ResourceMetrics are the resource_sample fields aggregated (resourceFields
// in the log record).
var ResourceMetrics = []string{"jsHeapBytes", "triangles", "vertices", "textureBytes", "geometryBytes"}

func appendFPSBin(dst []byte, fps float64) []byte {
	b := int(math.Floor(fps * 2))
	b = max(0, min(b, 2000))
	return binary.BigEndian.AppendUint16(dst, uint16(b))
}

// FPSBinValue is the representative fps of a sketch bin (its midpoint).
func FPSBinValue(item string) float64 {
	if len(item) != 2 {
		return 0
	}
	return (float64(binary.BigEndian.Uint16([]byte(item))) + 0.5) / 2
}

func appendPointerCell(dst []byte, x, y float64) []byte {
	gx := max(0, min(PointerGrid-1, int(math.Floor(x*PointerGrid))))
	gy := max(0, min(PointerGrid-1, int(math.Floor(y*PointerGrid))))
	return append(dst, byte(gx), byte(gy))
}

func appendGazeVoxel(dst []byte, c [3]float64) []byte { return appendVoxel(dst, c, GazeVoxel) }

// appendVoxel appends the voxel of edge size holding c.
func appendVoxel(dst []byte, c [3]float64, size float64) []byte {
	for _, x := range c {
		v := math.Floor(x / size)
		v = math.Max(math.MinInt32, math.Min(math.MaxInt32, v))
		dst = binary.BigEndian.AppendUint32(dst, uint32(int32(v)))
	}
	return dst
}

// appendCameraCell bins a view direction by azimuth (degrees clockwise from
// +z around +y, [0,360)) and elevation ([-90,90] → 0..179).
func appendCameraCell(dst []byte, d [3]float64) ([]byte, bool) {
	n := math.Sqrt(d[0]*d[0] + d[1]*d[1] + d[2]*d[2])
	if n == 0 || math.IsNaN(n) || math.IsInf(n, 0) {
		return dst, false
	}
	az := math.Atan2(d[0], d[2]) * 180 / math.Pi
	if az < 0 {
		az += 360
	}
	el := math.Asin(math.Max(-1, math.Min(1, d[1]/n))) * 180 / math.Pi
	ai := min(359, int(math.Floor(az)))
	ei := max(0, min(179, int(math.Floor(el+90))))
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(dst, uint16(ai)), uint16(ei)), true
}
