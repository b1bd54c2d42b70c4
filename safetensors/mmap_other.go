//go:build !unix

package safetensors

import (
	"fmt"
	"io"
	"os"
)

// mapsFiles: mapFile reads the file into memory (nothing to Release).
const mapsFiles = false

// mapFile reads f into memory (no mmap on this platform).
func mapFile(f *os.File, size int64) ([]byte, func() error, error) {
	if int64(int(size)) != size {
		return nil, nil, fmt.Errorf("file of %d bytes too large to read", size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, nil, err
	}
	return b, func() error { return nil }, nil
}
