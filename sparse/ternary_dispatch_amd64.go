//go:build amd64 && !purego

package sparse

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

var hasVNNI = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VNNI

// q8StripKernel returns the strip kernel of the int8 ternary GEMV for the backend in use:
// AVX-512 VNNI with the "avx512" backend (when the CPU has VNNI), AVX2 with "avx2" (or
// "avx512" without VNNI), the pure-Go twin with "purego". All give the same integers.
func q8StripKernel() func(acc *[q8Strip]int32, codes []byte, idx4, qx []int32) {
	switch b := Backend(); {
	case b == "avx512" && hasVNNI:
		return ternaryQ8StripVNNI
	case b == "avx512" || b == "avx2":
		return ternaryQ8StripAVX2Go
	}
	return ternaryQ8StripGeneric
}

func ternaryQ8StripAVX2Go(acc *[q8Strip]int32, codes []byte, idx4, qx []int32) {
	if len(qx) == 0 {
		*acc = [q8Strip]int32{}
		return
	}
	_ = idx4[4*(len(qx)+q8Prefetch)-1] // the kernel reads the prefetch tail
	ternaryQ8StripAVX2(&acc[0], unsafe.SliceData(codes), &idx4[0], &qx[0], len(qx), q8PrefetchDist)
}

func ternaryQ8StripVNNI(acc *[q8Strip]int32, codes []byte, idx4, qx []int32) {
	if len(qx) == 0 {
		*acc = [q8Strip]int32{}
		return
	}
	_ = idx4[4*(len(qx)+q8Prefetch)-1] // the kernel reads the prefetch tail
	ternaryQ8StripAVX512(&acc[0], unsafe.SliceData(codes), &idx4[0], &qx[0], len(qx), q8PrefetchDist)
}

// useF16PF selects sparseF16PFAVX512 for the fp16 sparse GEMV under the "avx512" backend.
var useF16PF = true

// sparseF16Kernel returns the fp16 sparse-column kernel for the backend in use.
func sparseF16Kernel() func(acc []float32, w []uint16, stride int, idx []int32, vals []float32) {
	if useF16PF && Backend() == "avx512" {
		return sparseF16PF
	}
	return k.sparseF16
}

func sparseF16PF(acc []float32, w []uint16, stride int, idx []int32, vals []float32) {
	n := len(acc)
	if n == 0 || len(idx) == 0 {
		return
	}
	_ = vals[len(idx)-1]
	sparseF16PFAVX512(&acc[0], n, &w[0], stride, &idx[0], &vals[0], len(idx))
}
