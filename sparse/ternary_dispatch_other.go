//go:build !amd64 || purego

package sparse

// q8StripKernel returns the pure-Go strip kernel of the int8 ternary GEMV.
func q8StripKernel() func(acc *[q8Strip]int32, codes []byte, idx4, qx []int32) {
	return ternaryQ8StripGeneric
}

// sparseF16Kernel returns the fp16 sparse-column kernel for the backend in use.
func sparseF16Kernel() func(acc []float32, w []uint16, stride int, idx []int32, vals []float32) {
	return k.sparseF16
}
