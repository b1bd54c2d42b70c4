//go:build !unix

package gguf

import (
	"fmt"
	"io"
	"os"
)

// mapsFiles: mapFile reads the file into memory (nothing to Release).
const mapsFiles = false

// mapFile reads the whole file into memory (no mmap on this platform).
func mapFile(f *os.File, size int64) ([]byte, func() error, error) {
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, nil, fmt.Errorf("read %d bytes: %w", size, err)
	}
	return b, func() error { return nil }, nil
}
