//go:build unix

package sparse

import (
	"syscall"
	"time"
)

// cpuTime returns the process's user+system CPU time: on a shared machine, CPU time per
// operation is the cost without the waiting.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
