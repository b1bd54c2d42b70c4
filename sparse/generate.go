package sparse

// The amd64 kernels and the Go files that share their constants are generated with avo from
// _asm (its own module); CI regenerates them and fails on any difference.

//go:generate go -C _asm run .
//go:generate go -C _asm run ./ternary
