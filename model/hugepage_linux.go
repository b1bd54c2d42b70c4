//go:build linux

package model

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePages asks the kernel to back the 2 MiB-aligned part of [p, p+n) with transparent huge
// pages (madvise MADV_HUGEPAGE; needed when /sys/kernel/mm/transparent_hugepage/enabled is
// "madvise"). Call it before the memory is first written, so the first touch faults in huge
// pages. Failure only costs speed and is ignored.
func hugePages(p unsafe.Pointer, n int) {
	const huge = 2 << 20
	start := (uintptr(p) + huge - 1) &^ (huge - 1)
	end := (uintptr(p) + uintptr(n)) &^ (huge - 1)
	if end <= start {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Add(p, start-uintptr(p))), end-start)
	_ = unix.Madvise(b, unix.MADV_HUGEPAGE)
}
