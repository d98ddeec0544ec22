package plugins

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// MemoryLimit returns the memory this process may use: the cgroup's limit
// (v2 memory.max, else v1 memory.limit_in_bytes) when one is set, else the
// machine's MemTotal; 0 when none can be read.
func MemoryLimit() int64 {
	total := memTotal()
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := string(bytes.TrimSpace(b))
		if s == "max" {
			break
		}
		n, err := strconv.ParseInt(s, 10, 64)
		// cgroup v1 reports "no limit" as a huge number (about 2^63).
		if err == nil && n > 0 && (total == 0 || n < total) {
			return n
		}
		break
	}
	return total
}

func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			fs := strings.Fields(rest)
			if len(fs) > 0 {
				if kb, err := strconv.ParseInt(fs[0], 10, 64); err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}

// DefaultMemoryBudget is a quarter of MemoryLimit (the rest is the
// collector's own heap, Badger's caches and the page cache), and 1 GiB
// when no limit can be read.
func DefaultMemoryBudget() int64 {
	if l := MemoryLimit(); l > 0 {
		return max(l/4, 64<<20)
	}
	return 1 << 30
}

// DefaultMaxInstances is one live instance per 2 MiB of the memory budget,
// at least 16 and at most 65,536: besides its linear memory an instance
// holds host memory the budget does not count (wazero's per-instance
// tables and globals, the pool's bookkeeping: tens to a few hundred KiB
// for a Go guest), which this cap bounds.
func DefaultMaxInstances(budget int64) int {
	return int(min(max(budget/(2<<20), 16), 1<<16))
}

// DefaultProjectConcurrency is how many batches of one project may run its
// plugins at once by default: half the cores, at least one, so that a
// project whose plugins spin to their deadline always leaves cores to the
// others.
func DefaultProjectConcurrency() int { return max(1, runtime.NumCPU()/2) }
