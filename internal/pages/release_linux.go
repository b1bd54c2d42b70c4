//go:build linux

package pages

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Release drops the process's page-table entries for the pages of the read-only file mapping m
// (as returned by mmap: page-aligned) that hold b, a sub-slice of m, rounded out to the
// FaultSpan-aligned blocks around it: they leave the resident set, and the next read of any byte there faults the page back
// in from the page cache, so the data stay valid (neighbours of b in the same blocks cost at most
// that minor fault). b outside m or empty is ignored; errors are ignored (it is advice). m must
// be a read-only file mapping: on anonymous or written memory MADV_DONTNEED discards the
// contents.
func Release(m, b []byte) {
	start, end, ok := span(m, b, grain())
	if !ok {
		return
	}
	p := unsafe.Add(unsafe.Pointer(unsafe.SliceData(m)), start)
	_ = unix.Madvise(unsafe.Slice((*byte)(p), end-start), unix.MADV_DONTNEED)
}
