//go:build unix && !linux

package gguf

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmapFile maps size bytes of fd read-only and shared.
func mmapFile(fd, size int) ([]byte, error) {
	p, err := unix.MmapPtr(fd, 0, nil, uintptr(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	return unsafe.Slice((*byte)(p), size), nil
}
