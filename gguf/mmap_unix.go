//go:build unix

package gguf

import (
	"fmt"
	"math"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapsFiles: mapFile returns a file mapping (whose pages Release may drop).
const mapsFiles = true

// mapFile maps the whole file read-only (shared, so pages come from the page cache).
func mapFile(f *os.File, size int64) ([]byte, func() error, error) {
	if size <= 0 {
		return nil, func() error { return nil }, nil
	}
	if uint64(size) > math.MaxInt {
		return nil, nil, fmt.Errorf("file of %d bytes is too large to map: %w", size, ErrCorrupt)
	}
	b, err := mmapFile(int(f.Fd()), int(size))
	if err != nil {
		return nil, nil, fmt.Errorf("mmap %d bytes: %w", size, err)
	}
	done := false
	return b, func() error {
		if done {
			return nil
		}
		done = true
		return unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(b)), uintptr(len(b)))
	}, nil
}
