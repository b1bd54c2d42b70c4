package gguf

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugeSize is the x86-64 (and arm64 4K-granule) transparent huge page size.
const hugeSize = 2 << 20

// mmapFile maps size bytes of fd read-only and shared, at a 2 MiB-aligned address, and marks
// the mapping MADV_HUGEPAGE: file offset k·2 MiB then lands on a huge-page boundary, so where
// the page cache holds the file in 2 MiB folios (ext4 and xfs on recent kernels read a
// MADV_HUGEPAGE mapping's faults into such folios), the kernel maps them with 2 MiB TLB
// entries. A decoded token reads a pack's active columns at scattered addresses all over its
// site tensors; with 4 KiB pages nearly every column starts with a TLB miss. Best effort: any
// failure of the placement falls back to a plain mapping.
func mmapFile(fd, size int) ([]byte, error) {
	if size < 2*hugeSize {
		return plainMap(fd, size)
	}
	// Reserve size + 2 MiB of address space, map the file over its first aligned part, and
	// give back the slack on both sides.
	res, err := unix.MmapPtr(-1, 0, nil, uintptr(size+hugeSize), unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return plainMap(fd, size)
	}
	r0 := uintptr(res)
	head := int((r0+hugeSize-1)&^(hugeSize-1) - r0) // slack before the aligned start
	p, err := unix.MmapPtr(fd, 0, unsafe.Add(res, head), uintptr(size), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_FIXED)
	if err != nil {
		_ = unix.MunmapPtr(res, uintptr(size+hugeSize))
		return plainMap(fd, size)
	}
	page := unix.Getpagesize()
	end := head + (size+page-1)/page*page // end of the file mapping, from res
	if head > 0 {
		_ = unix.MunmapPtr(res, uintptr(head))
	}
	if rest := size + hugeSize - end; rest > 0 {
		_ = unix.MunmapPtr(unsafe.Add(res, end), uintptr(rest))
	}
	b := unsafe.Slice((*byte)(p), size)
	_ = unix.Madvise(b[:size/hugeSize*hugeSize], unix.MADV_HUGEPAGE) // advice only
	return b, nil
}

func plainMap(fd, size int) ([]byte, error) {
	p, err := unix.MmapPtr(fd, 0, nil, uintptr(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	return unsafe.Slice((*byte)(p), size), nil
}
