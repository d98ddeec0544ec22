package suite

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// 100 on every Linux architecture Go supports).
const clockTicks = 100

// statFields reads /proc/PID/stat and returns its fields from field 3
// (state) on: the command name (field 2) may hold spaces, so they start
// after the last ')'. It wants at least n of them.
func statFields(pid, n int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < n {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return f, nil
}

// cpuTime reads a process's user+system CPU time from /proc/PID/stat.
func cpuTime(pid int) (time.Duration, error) {
	// utime and stime are fields 14 and 15.
	f, err := statFields(pid, 13)
	if err != nil {
		return 0, err
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return time.Duration(u+s) * time.Second / clockTicks, nil
}

// memory reads VmRSS and VmHWM (peak RSS since the process started), in
// bytes, from /proc/PID/status.
func memory(pid int) (rss, hwm int64, err error) {
	m, err := status(pid)
	return m["VmRSS"], m["VmHWM"], err
}

// status reads the memory lines of /proc/PID/status (VmRSS, VmHWM,
// RssAnon, RssFile, …) in bytes.
func status(pid int) (map[string]int64, error) {
	out := map[string]int64{}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 3 && fs[2] == "kB" {
			kb, _ := strconv.ParseInt(fs[1], 10, 64)
			out[strings.TrimSuffix(fs[0], ":")] = kb << 10
		}
	}
	return out, sc.Err()
}

// sampler watches a process during a measured window: CPU time used, the
// highest RSS seen, and the RSS samples' median (the steady state).
type sampler struct {
	pid   int
	start time.Time
	cpu0  time.Duration

	mu      sync.Mutex
	samples []int64 // VmRSS
	anon    []int64 // RssAnon: the heap and stacks, without mapped files
	stop    chan struct{}
	done    chan struct{}
}

func startSampler(pid int, every time.Duration) (*sampler, error) {
	cpu, err := cpuTime(pid)
	if err != nil {
		return nil, err
	}
	s := &sampler{pid: pid, start: time.Now(), cpu0: cpu, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if m, err := status(pid); err == nil && m["VmRSS"] > 0 {
				s.mu.Lock()
				s.samples = append(s.samples, m["VmRSS"])
				s.anon = append(s.anon, m["RssAnon"])
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s, nil
}

// procStats is what a sampler saw.
type procStats struct {
	Cores      float64 // CPU time / wall time
	PeakRSS    int64   // highest RSS sample in the window
	MedianRSS  int64   // median RSS sample in the window
	HWM        int64   // peak RSS since the process started
	MedianAnon int64   // median RssAnon sample (RSS less mapped files)
}

func (s *sampler) finish() procStats {
	wall := time.Since(s.start)
	close(s.stop)
	<-s.done
	var st procStats
	if cpu, err := cpuTime(s.pid); err == nil && wall > 0 {
		st.Cores = float64(cpu-s.cpu0) / float64(wall)
	}
	_, st.HWM, _ = memory(s.pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.samples); n > 0 {
		sorted := slices.Clone(s.samples)
		slices.Sort(sorted)
		st.PeakRSS = sorted[n-1]
		st.MedianRSS = sorted[n/2]
		anon := slices.Clone(s.anon)
		slices.Sort(anon)
		st.MedianAnon = anon[n/2]
	}
	return st
}
