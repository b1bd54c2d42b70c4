// Package sparse holds qsparse's CPU kernels: dense GEMV/GEMM over fp16 and float32 weights,
// top-K activation selection, column-major weight packs and sparse GEMV over them.
//
// Dense layout: matrices are row-major [rows=out_features][cols=in_features], as in GGUF and HF.
// fp16 weights are IEEE binary16 bits in []uint16.
//
// Backends: "purego" (always), "avx2" (AVX2+FMA+F16C) and "avx512" (AVX-512 F/BW/VL) on amd64,
// chosen at start-up with golang.org/x/sys/cpu; QSPARSE_KERNEL=purego|avx2|avx512 forces one,
// Backend() reports it. The -tags purego build has only the pure-Go kernels.
package sparse
