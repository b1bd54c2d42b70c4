//go:build linux

package sparse

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugeAlign is the x86-64 transparent huge page size.
const hugeAlign = 2 << 20

// makeU16Huge returns a zeroed []uint16 of length n for a large pack. Packs of at least 4 MiB
// start on a 2 MiB boundary and are marked MADV_HUGEPAGE (best effort: with the kernel's
// transparent huge pages in "madvise" mode, the default on many distributions, this is what
// makes them 2 MiB pages). A token's active columns are runs at scattered addresses all over
// the pack, so with 4 KiB pages nearly every run starts with a TLB miss and a page walk;
// with 2 MiB pages a 90 MB pack needs 45 TLB entries. Measured on 4096x11008 at 50 %
// (interleaved, 2 threads): ~5-10 % less time for the sparse GEMV.
func makeU16Huge(n int) []uint16 {
	if 2*n < 2*hugeAlign {
		return make([]uint16, n)
	}
	b := makeBytesHuge(2 * n)
	return unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(b))), n)
}

// makeBytesHuge is makeU16Huge for bytes (the int8 ternary pack, whose 64-byte column lines
// are read at scattered addresses too).
func makeBytesHuge(n int) []byte {
	if n < 2*hugeAlign {
		return make([]byte, n)
	}
	buf := make([]byte, n+hugeAlign)
	off := (hugeAlign - int(uintptr(unsafe.Pointer(unsafe.SliceData(buf)))%hugeAlign)) % hugeAlign
	s := buf[off : off+n : off+n]
	_ = unix.Madvise(s[:n/hugeAlign*hugeAlign], unix.MADV_HUGEPAGE) // advice only; errors ignored
	return s
}
