package storage

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uptimizr/edge/core"
)

// mountTmpfs mounts a tmpfs of size bytes on a new temporary dir. It needs
// root; the test is skipped elsewhere.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fillDisk allocates what is left free on path's filesystem to a file of
// its own, as fast as it can (in 1 MiB, then 4 KiB steps, until ENOSPC), as
// another process filling the disk would.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var off int64
	for _, step := range []int64{1 << 20, 4 << 10} {
		for unix.Fallocate(int(f.Fd()), 0, off, step) == nil {
			off += step
		}
	}
}

// loadBatch is the batch of one test request: its sessions hold its events
// only. Even requests carry small chunks (kept in the LSM tree: memtable
// flushes and compactions), odd ones one large chunk (the value log).
func loadBatch(pnum uint32, id int, r *rand.Rand) (*core.Batch, map[string]int) {
	b := &core.Batch{ProjectID: "p", ProjectNum: pnum, ReceivedAt: 1700000000000}
	want := map[string]int{}
	add := func(sess string, n int) {
		for i := 0; i < n; i++ {
			js := fmt.Sprintf(`{"type":"custom","sessionId":%q,"ts":%d,"i":%d,"pad":"%016x%016x"}`, sess, 1000+i, i, r.Uint64(), r.Uint64())
			b.AppendEvent(core.TypeCustom, int64(1000+i), []byte(sess), []byte(js))
		}
		want[sess] = n
	}
	if id%2 == 0 {
		for j := 0; j < 5; j++ {
			add(fmt.Sprintf("r%d-%d", id, j), 3)
		}
	} else {
		add(fmt.Sprintf("r%d", id), 60)
	}
	return b, want
}

// diskLoad commits loadBatch requests from several writers and records
// what was acknowledged and what refused.
type diskLoad struct {
	t        *testing.T
	s        *Store
	pnum     uint32
	next     atomic.Int64
	mu       sync.Mutex
	acked    map[string]int // session → events, of acknowledged requests
	refused  map[string]bool
	okN      atomic.Int64
	refusedN atomic.Int64
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startLoad(t *testing.T, s *Store, pnum uint32, writers int) *diskLoad {
	l := &diskLoad{t: t, s: s, pnum: pnum, acked: map[string]int{}, refused: map[string]bool{}, stop: make(chan struct{})}
	for w := 0; w < writers; w++ {
		l.wg.Add(1)
		go func(w int) {
			defer l.wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				b, want := loadBatch(l.pnum, int(l.next.Add(1)), r)
				err := l.s.Sink().Commit(context.Background(), b)
				l.mu.Lock()
				switch {
				case err == nil:
					for sess, n := range want {
						l.acked[sess] = n
					}
					l.okN.Add(1)
				case errors.Is(err, core.ErrUnavailable):
					for sess := range want {
						l.refused[sess] = true
					}
					l.refusedN.Add(1)
				default:
					l.t.Errorf("commit: %v (want success or ErrUnavailable)", err)
				}
				l.mu.Unlock()
				if err != nil {
					time.Sleep(time.Millisecond) // a client's Retry-After, shortened
				}
			}
		}(w)
	}
	return l
}

func (l *diskLoad) end() {
	close(l.stop)
	l.wg.Wait()
}

// waitFor waits until cond holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkStored compares the store with what the load saw: every
// acknowledged request's events are in raw replay and in the aggregates,
// exactly; no refused request left anything in either.
func checkStored(t *testing.T, s *Store, pnum uint32, acked map[string]int, refused map[string]bool) {
	t.Helper()
	if err := s.Aggregator().Sync(t.Context()); err != nil {
		t.Fatalf("fold: %v", err)
	}
	q := core.DefaultQuery()
	q.Limit = 1 << 30
	rows, err := s.Reader().Sessions(pnum, q)
	if err != nil {
		t.Fatal(err)
	}
	folded := map[string]int64{}
	for _, r := range rows {
		folded[r.SessionID] = r.Events
	}
	bad := 0
	for sess, n := range acked {
		raw := len(readRaw(t, s, pnum, sess, 0, 1<<50))
		if raw != n || folded[sess] != int64(n) {
			if bad++; bad <= 5 {
				t.Errorf("acknowledged session %s: %d raw events and %d folded, want %d", sess, raw, folded[sess], n)
			}
		}
	}
	for sess := range refused {
		if _, ok := acked[sess]; ok {
			continue // refused, then acknowledged on a later try: not here (ids are unique)
		}
		if raw := len(readRaw(t, s, pnum, sess, 0, 1<<50)); raw != 0 || folded[sess] != 0 {
			if bad++; bad <= 5 {
				t.Errorf("refused session %s: %d raw events and %d folded, want none", sess, raw, folded[sess])
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d sessions wrong of %d acknowledged and %d refused", bad, len(acked), len(refused))
	}
}

// TestDiskFullUnderLoad runs the store, retention on, on a 64 MiB tmpfs
// under load from four writers, with the free-space floor at 8 MiB and
// with it off. The disk is filled at once by another file, then freed;
// then filled by the store's own growth, then given room by deleting a
// file that held it. Throughout: the process does not crash (Badger's
// files are mapped: a store into a page the filesystem cannot back would
// be SIGBUS), every refusal is ErrUnavailable and logged once when it
// starts and once when writes are taken again, writes succeed again once
// there is room, and every acknowledged request is intact — in raw replay
// and in the aggregates — while nothing of a refused one is, after the
// room is back and after a reopen.
func TestDiskFullUnderLoad(t *testing.T) {
	for _, c := range []struct {
		name  string
		floor int64
	}{{"floor-8MiB", 8 << 20}, {"floor-off", -1}} {
		t.Run(c.name, func(t *testing.T) { diskFullUnderLoad(t, c.floor) })
	}
}

func diskFullUnderLoad(t *testing.T, floor int64) {
	dir := mountTmpfs(t, 64<<20)
	// A file holding room, deleted in the last step.
	spare := filepath.Join(dir, "spare")
	if f, err := os.Create(spare); err != nil {
		t.Fatal(err)
	} else {
		if err := unix.Fallocate(int(f.Fd()), 0, 0, 16<<20); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	lg, logged := captureLog()
	opts := Options{Dir: dir, MinFreeDisk: floor, Retention: true, Logger: lg}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	l := startLoad(t, s, pnum, 4)
	defer func() {
		select {
		case <-l.stop:
		default:
			l.end()
		}
	}()
	refusals := func() int { return strings.Count(logged(), "refusing writes") }
	recoveries := func() int { return strings.Count(logged(), "taking writes again") }

	// 1. Filled at once from outside.
	waitFor(t, 20*time.Second, "writes are acknowledged", func() bool { return l.okN.Load() > 300 })
	if n := refusals(); n != 0 {
		t.Fatalf("writes refused before the disk was filled: %s", logged())
	}
	filler := filepath.Join(dir, "filler")
	fillDisk(t, filler)
	before := l.refusedN.Load()
	waitFor(t, 10*time.Second, "writes are refused on the full disk", func() bool { return l.refusedN.Load() > before+50 })
	if err := s.Writable(); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("Writable on a full disk: %v", err)
	}
	if n := refusals(); n != 1 {
		t.Fatalf("%d log lines for one refusal: %s", n, logged())
	}
	time.Sleep(500 * time.Millisecond) // stays full a while under load
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	ok := l.okN.Load()
	waitFor(t, 20*time.Second, "writes succeed once the filler is gone", func() bool { return l.okN.Load() > ok+100 })
	if n := recoveries(); n != 1 {
		t.Fatalf("%d log lines for one recovery: %s", n, logged())
	}

	// 2. Filled by the store's own growth (at the edge, the aggregator's
	// folds free ingest-log segments: writes may be taken again and refused
	// again a few times, each change logged once).
	before = l.refusedN.Load()
	waitFor(t, 120*time.Second, "the store's growth fills the disk", func() bool { return l.refusedN.Load() > before+50 })
	if n := refusals(); n < 2 {
		t.Fatalf("%d refusals logged, want at least 2: %s", n, logged())
	}
	if err := os.Remove(spare); err != nil {
		t.Fatal(err)
	}
	ok = l.okN.Load()
	waitFor(t, 30*time.Second, "writes succeed once there is room", func() bool { return l.okN.Load() > ok+20 })
	l.end()
	// One line per change: refusals and recoveries alternate.
	var changes []string
	for _, line := range strings.Split(logged(), "\n") {
		switch {
		case strings.Contains(line, "refusing writes"):
			changes = append(changes, "refusing")
		case strings.Contains(line, "taking writes again"):
			changes = append(changes, "taking")
		}
	}
	for i, c := range changes {
		if want := [2]string{"refusing", "taking"}[i%2]; c != want || len(changes) < 4 || len(changes)%2 != 0 {
			t.Fatalf("state changes logged %v: want refusing and taking writes alternating, at least twice each, ending taking: %s", changes, logged())
		}
	}
	t.Logf("%d requests acknowledged, %d refused", l.okN.Load(), l.refusedN.Load())

	checkStored(t, s, pnum, l.acked, l.refused)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	s2, err := Open(opts)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	checkStored(t, s2, pnum, l.acked, l.refused)
}

// TestDiskGuardLogsEachStateChange: whichever check notices it — a commit,
// the 20 ms look, the one-second review — the refusal is logged once when
// it starts and once when writes are taken again, and a refused commit
// returns only after its line is written.
func TestDiskGuardLogsEachStateChange(t *testing.T) {
	var free atomic.Int64
	free.Store(1 << 40)
	lg, logged := captureLog()
	s := openTest(t, Options{MinFreeDisk: 64 << 20, Logger: lg, DisableAggregation: true,
		freeSpace: func() (int64, error) { return free.Load(), nil }})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	for cycle := 1; cycle <= 2; cycle++ {
		if err := s.Sink().Commit(t.Context(), testBatch(pnum, 5, "a")); err != nil {
			t.Fatalf("cycle %d: commit with room: %v", cycle, err)
		}
		free.Store(60 << 20)
		for i := 0; i < 20; i++ {
			err := s.Sink().Commit(t.Context(), testBatch(pnum, 5, "a"))
			if !errors.Is(err, core.ErrUnavailable) {
				t.Fatalf("cycle %d: commit under the floor: %v", cycle, err)
			}
			if n := strings.Count(logged(), "refusing writes"); n != cycle {
				t.Fatalf("cycle %d, refused commit %d: %d refusal lines logged, want %d: %s", cycle, i, n, cycle, logged())
			}
		}
		free.Store(1 << 40)
		waitFor(t, 10*time.Second, "writes are taken again", func() bool { return s.Writable() == nil })
		if n := strings.Count(logged(), "taking writes again"); n != cycle {
			t.Fatalf("cycle %d: %d recovery lines logged, want %d: %s", cycle, n, cycle, logged())
		}
	}
}

// fillAtOnce takes all the free space of path's filesystem in one
// allocation (tmpfs allocates all of it or nothing), and then nothing more.
func fillAtOnce(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := 0; ; i++ {
		free, err := freeBytes(filepath.Dir(path))
		if err != nil || i == 100 {
			t.Fatalf("cannot fill the disk: %v", err)
		}
		if free == 0 || unix.Fallocate(int(f.Fd()), 0, 0, free) == nil {
			return
		}
	}
}

// TestCloseAndOpenOnAFullDisk: a store closed on a disk another file has
// filled closes cleanly (Badger flushes its memtables into the reserve's
// room, given back when the disk filled); an open on a full disk is refused
// with an error saying so, not a fault in Badger's first write; once there
// is room it opens with everything acknowledged.
func TestCloseAndOpenOnAFullDisk(t *testing.T) {
	dir := mountTmpfs(t, 64<<20)
	opts := Options{Dir: dir, Retention: true, MinFreeDisk: 8 << 20}
	s, pnum, acked := openWithLoad(t, opts)
	filler := filepath.Join(dir, "filler")
	fillAtOnce(t, filler)
	waitFor(t, 10*time.Second, "the full disk is seen", func() bool { return s.Writable() != nil })
	if err := s.Close(); err != nil {
		t.Fatalf("close on a full disk: %v", err)
	}
	fillDisk(t, filler+"2") // what the close left
	if _, err := Open(opts); err == nil || !strings.Contains(err.Error(), "free some space") {
		t.Fatalf("open on a full disk: %v, want an error asking for space", err)
	}
	os.Remove(filler)
	os.Remove(filler + "2")
	s2, err := Open(opts)
	if err != nil {
		t.Fatalf("open once there is room: %v", err)
	}
	defer s2.Close()
	checkStored(t, s2, pnum, acked, nil)
}

// TestCloseOnADiskKeptFull: when something takes every byte the store gives
// back, Badger cannot flush its memtables as it closes (it retries every
// second); Close gives up after a while and says so, nothing acknowledged
// is lost, and the next open, once there is room, replays the memtable
// logs.
func TestCloseOnADiskKeptFull(t *testing.T) {
	dir := mountTmpfs(t, 64<<20)
	opts := Options{Dir: dir, Retention: true, MinFreeDisk: 8 << 20, closeWait: 2 * time.Second}
	s, pnum, acked := openWithLoad(t, opts)
	filler := filepath.Join(dir, "filler")
	fillDisk(t, filler)
	waitFor(t, 10*time.Second, "the full disk is seen", func() bool { return s.Writable() != nil })
	fillDisk(t, filler+"2") // the reserve the store gave back
	start := time.Now()
	// Close either flushes into what room is left or gives up flushing
	// (ErrClosedUnflushed); either way it ends, and nothing is lost.
	if err := s.Close(); err != nil && !errors.Is(err, ErrClosedUnflushed) {
		t.Fatalf("close on a disk kept full: %v, want nil or ErrClosedUnflushed", err)
	} else {
		t.Logf("close on a disk kept full: %v", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("close took %v", d)
	}
	os.Remove(filler)
	os.Remove(filler + "2")
	var s2 *Store
	waitFor(t, 30*time.Second, "the store opens again", func() bool {
		var err error
		s2, err = Open(opts) // once the abandoned close has finished
		return err == nil
	})
	defer s2.Close()
	checkStored(t, s2, pnum, acked, nil)
}

// openWithLoad opens a store and commits 300 requests to it.
func openWithLoad(t *testing.T, opts Options) (*Store, uint32, map[string]int) {
	t.Helper()
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	r := rand.New(rand.NewPCG(1, 2))
	acked := map[string]int{}
	for i := 0; i < 300; i++ {
		b, want := loadBatch(pnum, i, r)
		if err := s.Sink().Commit(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		for k, v := range want {
			acked[k] = v
		}
	}
	return s, pnum, acked
}

// TestOpenAfterACrashLeftTheNextMemtableLog: the store makes Badger's next
// memtable log ahead, empty; a crash leaves it, and Badger cannot open a
// database with an empty one. The next open removes it first.
func TestOpenAfterACrashLeftTheNextMemtableLog(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir, DisableAggregation: true})
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	if err := s.Sink().Commit(t.Context(), testBatch(pnum, 5, "a")); err != nil {
		t.Fatal(err)
	}
	next := s.mdb.next.path
	if info, err := os.Stat(next); err != nil || info.Size() != 0 {
		t.Fatalf("the next memtable log is not made ahead: %v %v", info, err)
	}
	s.Close()
	// What the crash leaves: the close removed it.
	if err := os.WriteFile(next, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, Options{Dir: dir, DisableAggregation: true})
	if seqs := s2.ProjectLog(pnum); len(seqs) != 1 {
		t.Fatalf("log after the reopen: %v", seqs)
	}
}

// An idle store's guard measures its files about once a second, not on
// every tick; a write makes the next tick measure them.
func TestIdleStoreMeasuresRarely(t *testing.T) {
	s := openTest(t, Options{Dir: t.TempDir()})
	if !s.mdb.seekHole {
		t.Skip("SEEK_HOLE does not find the write position here")
	}
	measures := func() uint64 {
		var n uint64
		for _, m := range s.space.dbs {
			m.mu.Lock()
			n += m.measures
			m.mu.Unlock()
		}
		return n
	}
	time.Sleep(3 * spaceTick) // the writes of the open
	before := measures()
	idle := 20 * spaceTick
	time.Sleep(idle)
	// Two files per store, at most one measure each per second (and one
	// for a tick that may have begun before the count), against two per
	// tick before.
	files := uint64(2 * len(s.space.dbs))
	if got, most := measures()-before, files*(2+uint64(idle/(idleMeasure*spaceTick))); got > most {
		t.Fatalf("an idle store measured its files %d times in %v, want at most %d", got, idle, most)
	}
	s.Registry().CreateProject("p")
	pnum := s.Registry().Project("p").Num
	before = measures()
	if err := s.Sink().Commit(t.Context(), testBatch(pnum, 5, "a")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * spaceTick)
	if measures() == before {
		t.Fatal("no measure after a write")
	}
}
