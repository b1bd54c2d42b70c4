//go:build unix

package pull

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// lockFile takes an exclusive advisory lock on f (a .part file) so that two pulls of the same
// file do not write it at once; the lock goes with the file descriptor.
func lockFile(f *os.File) error {
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if err == unix.EWOULDBLOCK {
			return fmt.Errorf("%s: another pull is downloading this file; wait for it to finish", f.Name())
		}
		return fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return nil
}
