package gguf

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// reserve sets f's size to n and, where the file system supports it, allocates the space, so a
// full disk fails here rather than in the middle of the write.
func reserve(f *os.File, n int64) error {
	if n > 0 {
		err := unix.Fallocate(int(f.Fd()), 0, 0, n)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
			return err
		}
	}
	return f.Truncate(n)
}
