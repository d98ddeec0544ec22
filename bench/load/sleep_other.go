//go:build !linux

package load

import "time"

// preciseTimers reports that only the runtime's timers are available.
func preciseTimers() bool { return false }

// sleepFor sleeps with the runtime's timers.
func sleepFor(d time.Duration, _ bool) { time.Sleep(d) }
