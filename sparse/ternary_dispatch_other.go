//go:build !amd64 || purego

package sparse

// q8ColsKernel returns the pure-Go column kernel of the int8 ternary GEMV.
func q8ColsKernel() func(acc []int32, nstrips int, codes []byte, colBytes int, idx4, qx []int32) {
	return ternaryQ8ColsGeneric
}
