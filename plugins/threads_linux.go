package plugins

import "golang.org/x/sys/unix"

// Linux schedules threads, not processes: PRIO_PROCESS with a thread id
// sets that thread's nice value only.

func setThreadPriority(nice int) error {
	return unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), nice)
}

func threadPriority() (int, error) {
	// The raw system call returns 20 - nice.
	p, err := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
	if err != nil {
		return 0, err
	}
	return 20 - p, nil
}
