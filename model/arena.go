package model

import (
	"unsafe"

	"github.com/qsparse/qsparse/internal/hugepage"
)

// arena hands out the weight matrices from a few large allocations backed by 2 MiB pages (see
// internal/hugepage). Decoding streams every weight once per token: with 4 KiB pages that is a
// TLB miss every 4 KiB of each of the GEMV's concurrent row streams, and the hardware
// prefetchers stop at every 4 KiB boundary.
type arena struct {
	buf []byte // current chunk (2 MiB-aligned)
	off int    // bytes used in buf
}

const arenaChunk = 64 << 20 // bytes

// bytes returns n bytes (a multiple of 128 bytes apart from the previous allocation: a pack column starts on a 128-byte boundary), zeroed.
func (a *arena) bytes(n int) unsafe.Pointer {
	n = (n + 127) &^ 127
	if n == 0 {
		return nil
	}
	if a.off+n > len(a.buf) {
		a.buf = hugepage.Bytes(max(arenaChunk, n))
		a.off = 0
	}
	p := unsafe.Add(unsafe.Pointer(unsafe.SliceData(a.buf)), a.off)
	a.off += n
	return p
}

func (a *arena) f16(n int) []uint16 {
	if n == 0 {
		return []uint16{}
	}
	return unsafe.Slice((*uint16)(a.bytes(2*n)), n)
}

func (a *arena) f32(n int) []float32 {
	if n == 0 {
		return []float32{}
	}
	return unsafe.Slice((*float32)(a.bytes(4*n)), n)
}
