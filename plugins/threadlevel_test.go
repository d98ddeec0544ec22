package plugins

import (
	"testing"

	"github.com/uptimizr/edge/core"
)

// The level a guest call runs at is the one the start-up probe checked:
// never above the threads' own priority, and SCHED_IDLE when either is.
func TestGuestLevel(t *testing.T) {
	idle := core.PluginNiceIdle
	for _, c := range []struct{ nice, base, want int }{
		{7, 0, 7},
		{7, 15, 15}, // started under nice 15: guests do not run above it
		{19, 15, 19},
		{idle, 0, idle},
		{idle, 15, idle},
		{7, idle, idle}, // started under SCHED_IDLE: nothing is lower
		{idle, idle, idle},
	} {
		if got := guestLevel(c.nice, c.base); got != c.want {
			t.Errorf("guestLevel(nice %d, base %d) = %d, want %d", c.nice, c.base, got, c.want)
		}
	}
}
