package gguf

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// touch reads b[off] (not inlined, so the read that faults the page in is not optimised away).
//
//go:noinline
func touch(b []byte, off int) byte { return b[off] }

// HugePages asks for the file's mappings to be backed by 2 MiB pages and reports whether they
// all are (Linux; false elsewhere). Every mapping starts on a 2 MiB boundary and is marked
// MADV_HUGEPAGE (see mmapFile), so file pages that the page cache holds as 2 MiB folios are
// mapped with one TLB entry each; ext4 and xfs on recent kernels read such a mapping's faults
// into 2 MiB folios, but pages already cached in small folios stay small: a file just written
// or copied, or one whose pages were reclaimed and read back in pieces (seen: a pack file 25 %
// huge while a sample block in its middle was). HugePages touches every 2 MiB block of each
// mapping and checks (/proc/self/smaps FilePmdMapped) that all of them came as huge pages. If
// not, it drops one block from the page cache (posix_fadvise DONTNEED: clean pages, the data
// stay on disk) and reads it again; only when it then comes back huge (the kernel and
// filesystem can do it) does it drop the whole file's cached pages and this process's
// page-table entries for them and touch the blocks again, so that they fault back in 2 MiB
// folios: one read of the file from disk (or the host's cache) on the first open after the
// file was written or copied, none after. Where huge folios are not to be had, the cost is one
// 2 MiB block read again. Data stay valid throughout; pages that other processes map are not
// dropped.
//
// Callers that read a mapping at scattered places over and over (qsparse packs: a decoded
// token reads its active columns all over the site tensors) gain from it; with 4 KiB pages
// nearly every column starts with a TLB miss.
func (f *File) HugePages() bool {
	all := len(f.maps) > 0
	for i, m := range f.maps {
		if !hugeMapped(m, f.mapPaths[i]) {
			all = false
		}
	}
	return all
}

// hugeMapped probes mapping m of file path (see HugePages).
func hugeMapped(m []byte, path string) bool {
	if len(m) < 3*hugeSize || uintptr(unsafe.Pointer(unsafe.SliceData(m)))%hugeSize != 0 {
		return false
	}
	full := len(m) / hugeSize * hugeSize // the part marked MADV_HUGEPAGE (see mmapFile)
	touchAll := func() {
		for o := 0; o < full; o += hugeSize {
			touch(m, o)
		}
	}
	touchAll()
	if pmdKB(m) >= full>>10 {
		return true
	}
	fh, err := os.Open(path)
	if err != nil {
		return false
	}
	defer fh.Close()
	// drop: this process's page-table entries for m[o:o+n] (a read-only file mapping: nothing
	// is lost), then the file's cached pages there
	drop := func(o, n int) {
		_ = unix.Madvise(m[o:o+n], unix.MADV_DONTNEED)
		_ = unix.Fadvise(int(fh.Fd()), int64(o), int64(n), unix.FADV_DONTNEED)
	}
	off := len(m) / 2 / hugeSize * hugeSize // a block in the middle (tensor data)
	drop(off, hugeSize)
	before := pmdKB(m)
	touch(m, off)
	if pmdKB(m) < before+hugeSize>>10 {
		return false // no huge folios here (filesystem, kernel, or the block is in use)
	}
	drop(0, len(m))
	touchAll()
	return pmdKB(m) >= full>>10
}

// pmdKB returns the FilePmdMapped kB that /proc/self/smaps counts in the VMA holding
// mapping m (0 when it cannot tell).
func pmdKB(m []byte) int {
	fh, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0
	}
	defer fh.Close()
	addr := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(m))))
	sc := bufio.NewScanner(fh)
	in := false
	for sc.Scan() {
		line := sc.Text()
		first, _, _ := strings.Cut(line, " ")
		if !strings.HasSuffix(first, ":") { // a VMA header: "start-end perms offset dev inode path"
			lo, hi, _ := strings.Cut(first, "-")
			a, err1 := strconv.ParseUint(lo, 16, 64)
			b, err2 := strconv.ParseUint(hi, 16, 64)
			in = err1 == nil && err2 == nil && a <= addr && addr < b
			continue
		}
		if v, ok := strings.CutPrefix(line, "FilePmdMapped:"); ok && in {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return kb
		}
	}
	return 0
}
