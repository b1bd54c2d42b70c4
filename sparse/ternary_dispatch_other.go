//go:build !amd64 || purego

package sparse

// q8StripKernel returns the pure-Go strip kernel of the int8 ternary GEMV.
func q8StripKernel() func(acc *[q8Strip]int32, codes []byte, idx4, qx []int32) {
	return ternaryQ8StripGeneric
}
