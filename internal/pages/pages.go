// Package pages gives back the resident pages of read-only file mappings (the gguf and
// safetensors readers map checkpoints). A converter reads each tensor of a checkpoint once;
// without Release every page it has read stays in its resident set until the file is closed, so
// converting a 538 MB F32 checkpoint held all 538 MB on top of what it was writing.
package pages

import (
	"os"
	"unsafe"
)

// FaultSpan is the span Release rounds to. On a read fault of a file mapping Linux also maps the
// already-cached pages around the address (fault-around: fault_around_bytes, 64 KiB by default,
// more on some systems, and with large page-cache folios) — never past the 2 MiB-aligned block
// one page table covers (4 KiB pages). So reading the start of a chunk can map the tail of the
// chunk released before it again; rounding every release out to the aligned 2 MiB blocks drops
// those pages with the next release, and nothing piles up. Neighbours of the released bytes in
// the same block cost at most a minor fault (they stay in the page cache).
const FaultSpan = 2 << 20

// span returns the offsets [start, end) in mapping m of the bytes b (a sub-slice of m) rounded
// out to grain-aligned addresses, clamped to m's pages (end may pass len(m) up to its last page:
// the kernel maps whole pages), and false when b is empty, not inside m, or m does not start on
// a page boundary.
func span(m, b []byte, grain uintptr) (start, end uintptr, ok bool) {
	if len(b) == 0 || len(m) == 0 {
		return 0, 0, false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(m)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	ps := uintptr(os.Getpagesize())
	if base%ps != 0 || p < base || p-base+uintptr(len(b)) > uintptr(len(m)) {
		return 0, 0, false
	}
	lo := max(p&^(grain-1), base)
	hi := min((p+uintptr(len(b))+grain-1)&^(grain-1), base+(uintptr(len(m))+ps-1)&^(ps-1))
	return lo - base, hi - base, true
}

// grain is the rounding of Release: FaultSpan, at least a page.
func grain() uintptr { return max(uintptr(os.Getpagesize()), FaultSpan) }
