//go:build amd64 && !purego

package sparse

func initArch() {}

const archHasSIMD = false // set true once SIMD kernels land
