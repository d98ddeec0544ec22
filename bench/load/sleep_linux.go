package load

import (
	"syscall"
	"time"
)

// prSetTimerSlack is PR_SET_TIMERSLACK of prctl(2).
const prSetTimerSlack = 29

// preciseTimers sets the calling thread's timer slack to 1 ns, so that its
// sleeps overshoot by the kernel's wake-up time only (tens of microseconds
// on a virtual machine) rather than that plus the default 50 µs slack. It reports whether the thread may use sleepFor's
// high-resolution path. The caller must be locked to its thread.
func preciseTimers() bool {
	_, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, 1, 0)
	return errno == 0
}

// sleepFor blocks the thread in nanosleep(2) for d when precise, or uses the
// runtime's timers, which on Linux wake up to about a millisecond late.
func sleepFor(d time.Duration, precise bool) {
	if !precise {
		time.Sleep(d)
		return
	}
	ts := syscall.NsecToTimespec(int64(d))
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
}
