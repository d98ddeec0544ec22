//go:build linux

package plugins

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uptimizr/edge/core"
)

// nicedThreads counts the process's threads at nice: that nice value under
// SCHED_OTHER, or the SCHED_IDLE policy for core.PluginNiceIdle.
func nicedThreads(t *testing.T, nice int) int {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*/stat")
	if err != nil || len(tasks) == 0 {
		t.Skip("no /proc/self/task here")
	}
	n := 0
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses: the
		// nice value is field 19 of stat, the 17th after ")"; the policy
		// field 41, the 39th.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) < 39 {
			continue
		}
		v, err1 := strconv.Atoi(f[16])
		pol, err2 := strconv.Atoi(f[38])
		if err1 != nil || err2 != nil {
			continue
		}
		if idle := pol == unix.SCHED_IDLE; idle == (nice == core.PluginNiceIdle) && (idle || v == nice) {
			n++
		}
	}
	return n
}

// TestGuestCodeRunsNiced: with Options.Nice a guest call runs on a thread
// of that nice value (or under SCHED_IDLE) while it runs, gives the same
// output as at the caller's priority, and leaves no thread at that priority
// once it has returned.
func TestGuestCodeRunsNiced(t *testing.T) {
	for _, c := range []struct {
		name string
		nice int
	}{{"nice 7", 7}, {"idle", core.PluginNiceIdle}} {
		t.Run(c.name, func(t *testing.T) { testGuestCodeRunsNiced(t, c.nice) })
	}
}

func testGuestCodeRunsNiced(t *testing.T, nice int) {
	if nicedThreads(t, nice) != 0 {
		t.Fatalf("threads at %d exist before any call", nice)
	}
	if _, err := probeRenice(nice); err != nil {
		t.Skipf("this process may not restore a thread's priority: %v", err)
	}
	plain := guestPlugin(t, newTestHost(t, Options{}), "keep", PolicyQuarantine)
	h := newTestHost(t, Options{Nice: nice, CallTimeout: 300 * time.Millisecond})
	niced := guestPlugin(t, h, "keep", PolicyQuarantine)
	in := encodeBatch(nil, batchOf(t,
		`{"type":"custom","projectId":"proj","sessionId":"s","ts":1,"sdkVersion":"1","name":"a"}`,
		`{"type":"scene_change","projectId":"proj","sessionId":"s","ts":2,"sdkVersion":"1"}`))
	want, err := plain.Run(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				got, err := niced.Run(context.Background(), in, nil)
				if err != nil || !bytes.Equal(got, want) {
					errs <- fmt.Sprintf("a niced call: %v, output equal: %v", err, bytes.Equal(got, want))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	// While a guest spins to its deadline, its thread is at the nice value.
	spinner := guestPlugin(t, h, "spin-on-marker", PolicyQuarantine)
	spin := encodeBatch(nil, batchOf(t, `{"type":"custom","projectId":"proj","sessionId":"s","ts":1,"sdkVersion":"1","name":"spin-now"}`))
	seen := make(chan int, 1)
	go func() {
		most := 0
		for i := 0; i < 20; i++ {
			time.Sleep(10 * time.Millisecond)
			most = max(most, nicedThreads(t, nice))
		}
		seen <- most
	}()
	if _, err := spinner.Run(context.Background(), spin, nil); !errors.Is(err, ErrTimeout) {
		t.Fatalf("spin: %v, want ErrTimeout", err)
	}
	if n := <-seen; n != 1 {
		t.Fatalf("%d threads at nice %d while one guest spun, want 1", n, nice)
	}
	if n := nicedThreads(t, nice); n != 0 {
		t.Fatalf("%d threads left at nice %d after the calls", n, nice)
	}
}

// BenchmarkGuestThreads: a small call on the caller's thread against the same
// call handed to a niced guest thread (the handoff's cost per call).
func BenchmarkGuestThreads(b *testing.B) {
	in := encodeBatch(nil, batchOf(b,
		`{"type":"custom","projectId":"proj","sessionId":"s","ts":1,"sdkVersion":"1","name":"a"}`))
	for _, c := range []struct {
		name string
		o    Options
	}{{"caller", Options{}}, {"niced", Options{Nice: 10}}, {"idle", Options{Nice: core.PluginNiceIdle}}} {
		b.Run(c.name, func(b *testing.B) {
			p := guestPlugin(b, newTestHost(b, c.o), "keep", PolicyQuarantine)
			var out []byte
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if out, err = p.Run(context.Background(), in, out[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
