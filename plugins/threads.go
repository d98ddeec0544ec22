package plugins

import (
	"context"
	"log/slog"
	"runtime"
	"time"

	"github.com/uptimizr/edge/core"
)

// Guest code runs at a lower priority (Options.Nice): for the length of a
// call, the thread that runs it goes under SCHED_IDLE (the default) or is
// reniced, so under CPU contention the kernel runs the request path of every
// project (decoding, validation, commits) before customers' plugins, and a
// plugin that spins to its deadline in one project takes the CPU nothing else
// wants, not the CPU another project's requests need (docs/RATIONALE.md, "Why
// does guest code run at a lower priority?"). With no contention it runs as
// fast as before.
//
// Going back to the thread's own priority after the call needs the right to
// raise a priority (root, CAP_SYS_NICE, or RLIMIT_NICE): the host checks at
// start that it has it, and otherwise runs plugins at normal priority and
// says so once.

// guestPriority renices the threads of guest calls; nil runs them as they
// are.
type guestPriority struct {
	nice, base int
}

func newGuestPriority(nice int, log *slog.Logger) *guestPriority {
	if nice == 0 {
		return nil
	}
	base, err := probeRenice(nice)
	if err != nil {
		log.Warn("cannot lower and restore thread priorities (needs root, CAP_SYS_NICE or RLIMIT_NICE): plugins run at normal priority", "err", err)
		return nil
	}
	return &guestPriority{nice: guestLevel(nice, base), base: base}
}

// guestLevel is the priority a guest call runs at, for the setting nice and
// threads that start at base: never above base (a process started under
// nice 15 keeps its guests at 15 or lower), and SCHED_IDLE when either is.
func guestLevel(nice, base int) int {
	switch {
	case base == core.PluginNiceIdle: // already as low as it goes
		return base
	case nice != core.PluginNiceIdle:
		return max(nice, base)
	}
	return nice
}

// probeRenice checks, on a thread of its own that it throws away, that a
// thread can be reniced to nice and back; it returns the priority threads
// start with.
func probeRenice(nice int) (base int, err error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if base, err = threadPriority(); err != nil {
			return
		}
		if err = setThreadPriority(guestLevel(nice, base)); err != nil {
			return
		}
		err = setThreadPriority(base)
	}()
	<-done
	return base, err
}

// call runs in.call at the guest priority.
func (g *guestPriority) call(in *instance, ctx context.Context, batch, dst []byte, timeout time.Duration) ([]byte, error) {
	if g == nil {
		return in.call(ctx, batch, dst, timeout)
	}
	runtime.LockOSThread()
	lowered := setThreadPriority(g.nice) == nil
	out, err := in.call(ctx, batch, dst, timeout)
	if !lowered || setThreadPriority(g.base) == nil {
		runtime.UnlockOSThread()
	}
	// Else the thread stays locked to this goroutine (and dies with it),
	// so that no other goroutine runs at the guest's priority.
	return out, err
}
