//go:build amd64 && !purego

package sparse

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

var hasVNNI = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VNNI

// q8ColsKernel returns the column kernel of the int8 ternary GEMV for the backend in use:
// AVX-512 VNNI with the "avx512" backend (when the CPU has VNNI), AVX2 with "avx2" (or
// "avx512" without VNNI), the pure-Go twin with "purego". All give the same integers.
func q8ColsKernel() func(acc []int32, nstrips int, codes []byte, colBytes int, idx4, qx []int32) {
	switch b := Backend(); {
	case b == "avx512" && hasVNNI:
		return ternaryQ8ColsVNNI
	case b == "avx512" || b == "avx2":
		return ternaryQ8ColsAVX2Go
	}
	return ternaryQ8ColsGeneric
}

// The kernels read nstrips lines of every listed column, 4·len(qx) (+8 for prefetch) entries
// of idx4, and write acc[:256·nstrips]; the callers (q8Job.do) size them so.
func ternaryQ8ColsVNNI(acc []int32, nstrips int, codes []byte, colBytes int, idx4, qx []int32) {
	_ = acc[nstrips*q8Strip-1]
	_ = idx4[4*len(qx)+8*q8PFPairs-1]
	ternaryQ8ColsAVX512(&acc[0], nstrips, unsafe.SliceData(codes), colBytes, &idx4[0], &qx[0], len(qx))
}

func ternaryQ8ColsAVX2Go(acc []int32, nstrips int, codes []byte, colBytes int, idx4, qx []int32) {
	_ = acc[nstrips*q8Strip-1]
	_ = idx4[4*len(qx)-1]
	ternaryQ8ColsAVX2(&acc[0], nstrips, unsafe.SliceData(codes), colBytes, &idx4[0], &qx[0], len(qx))
}
