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
// are (Linux; false elsewhere). Every mapping starts on a 2 MiB boundary and is marked
// MADV_HUGEPAGE (see mmapFile), so file pages that the page cache holds as 2 MiB folios are
// mapped with one TLB entry each; ext4 and xfs on recent kernels read such a mapping's faults
// into 2 MiB folios, but pages already cached in small folios (a file just written or copied)
// stay small. HugePages reads one 2 MiB block of each mapping and checks (/proc/self/smaps
// FilePmdMapped) whether it came as a huge page. If not, it drops that block from the page
// cache (posix_fadvise DONTNEED: clean pages, the data stay on disk) and reads it again; only
// when it then comes back huge (the kernel and filesystem can do it) does it drop the whole
// file's cached pages and this process's page-table entries for them, so that the reads that
// follow fault the file back in 2 MiB folios: one read of the file from disk (or the host's
// cache) on the first open after the file was written or copied, none after. Where huge
// folios are not to be had, the cost is one 2 MiB block read again. Data stay valid
// throughout; pages that other processes map are not dropped.
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
	off := len(m) / 2 / hugeSize * hugeSize // a block in the middle (tensor data)
	touch(m, off)
	if pmdMapped(m, off) {
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
	drop(off, hugeSize)
	touch(m, off)
	if !pmdMapped(m, off) {
		return false // no huge folios here (filesystem, kernel, or the block is in use)
	}
	drop(0, len(m))
	touch(m, off)
	return pmdMapped(m, off)
}

// pmdMapped reports whether /proc/self/smaps counts FilePmdMapped bytes in the VMA of mapping m
// that holds offset off.
func pmdMapped(m []byte, off int) bool {
	fh, err := os.Open("/proc/self/smaps")
	if err != nil {
		return false
	}
	defer fh.Close()
	addr := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(m)))) + uint64(off)
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
			return kb > 0
		}
	}
	return false
}
