//go:build !amd64 || purego

package sparse

func initArch() {}

const archHasSIMD = false
