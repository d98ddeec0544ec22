package plugins

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/uptimizr/edge/core"
)

// Linux schedules threads, not processes: sched_setattr with pid 0 and
// PRIO_PROCESS with a thread id both act on the calling thread only.

// setThreadPriority puts the calling thread at nice (SCHED_OTHER) or, for
// core.PluginNiceIdle, under SCHED_IDLE. SCHED_IDLE matters beyond its low
// weight: the kernel lets any other thread that wakes preempt an idle-policy
// thread at once, whereas a niced SCHED_OTHER thread keeps the CPU to the end
// of its slice (milliseconds under EEVDF), whatever its nice value.
func setThreadPriority(nice int) error {
	attr := unix.SchedAttr{Size: uint32(unsafe.Sizeof(unix.SchedAttr{})), Policy: unix.SCHED_NORMAL, Nice: int32(nice)}
	if nice == core.PluginNiceIdle {
		attr.Policy, attr.Nice = unix.SCHED_IDLE, 0
	}
	return unix.SchedSetAttr(0, &attr, 0)
}

// threadPriority returns the calling thread's nice value, or
// core.PluginNiceIdle under SCHED_IDLE.
func threadPriority() (int, error) {
	attr, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		return 0, err
	}
	if attr.Policy == unix.SCHED_IDLE {
		return core.PluginNiceIdle, nil
	}
	return int(attr.Nice), nil
}
