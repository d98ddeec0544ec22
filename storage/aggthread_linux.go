package storage

import "golang.org/x/sys/unix"

// lowerThreadPriority sets the calling OS thread's nice value (Linux
// schedules threads, not processes, so this affects only the thread the
// caller is locked to). Raising a nice value needs no privilege.
func lowerThreadPriority(nice int) error {
	return unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), nice)
}
