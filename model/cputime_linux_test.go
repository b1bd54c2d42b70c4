package model

import (
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU returns the calling OS thread's user+system CPU time (lock the goroutine to its
// thread first): on a shared machine, CPU time per token is the cost without the waiting.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
