package sparse

import (
	"fmt"
	"os"
	"strings"
)

// Kernel function table. The pure-Go functions are installed first; init in the
// architecture-specific file replaces them with SIMD versions when the CPU supports them.
type kernelSet struct {
	name string
	// dense
	gemvF32      func(y, w, x []float32, cols, r0, r1 int)
	gemvF16      func(y []float32, w []uint16, x []float32, cols, r0, r1 int)
	gemmF32Block func(y, x, w []float32, rows, cols, t0, t1, r0, r1 int, scratch []float32)
	gemmF16Block func(y, x []float32, w []uint16, rows, cols, t0, t1, r0, r1 int, scratch []float32)
	// gemmF32Strided: y[t*ys+r] = Σ_{c<cols} x[t*xs+c]*w[r*ws+c] (sizes checked by the caller)
	gemmF32Strided func(y []float32, ys int, x []float32, xs int, w []float32, ws, n, rows, cols int)
	siluMul        func(g, u []float32)                     // g[i] = g[i]/(1+e^-g[i])*u[i]
	expSub         func(x []float32, sc, m float32) float32 // x[i] = e^(x[i]*sc-m), returns Σ
	maxF32         func(x []float32) float32                // largest (len(x) > 0)
	scaleF32       func(x []float32, a float32)             // x[i] *= a
	// gemmScratch reports how many float32s of scratch gemmF16Block (f16) or gemmF32Block
	// needs for a block of nr rows (0: none).
	gemmScratch func(f16 bool, nr, cols int) int
	// gemmTokens is the token width of a GEMM work item (0: 64).
	gemmTokens int
	f16ToF32   func(dst []float32, src []uint16) // nil: Go loop
	f32ToF16   func(dst []uint16, src []float32) // nil: Go loop
	// sparse: acc[:n] (n a multiple of 64) accumulates the active columns of a chunk of rows
	sparseF16     func(acc []float32, w []uint16, stride int, idx []int32, x []float32) // multipliers x[idx[j]]
	sparseTernary func(acc []float32, planes []uint64, words, wordOff int, idx []int32, vals []float32)
	// ternaryQ8Cols: the column kernel of the int8 ternary GEMV (see ternaryQ8ColsGeneric); every
	// backend gives the same integers.
	ternaryQ8Cols func(acc []int32, nstrips int, codes []byte, colBytes int, idx4, qx []int32)
	// top-K emit pass (optional, nil: Go loop): writes indices into dst (which it may fill to
	// its length with scratch) and returns how many it wrote and how many inputs it used.
	topkEmit func(dst []int32, src []float32, lo uint32) (count, done int)
	// topkCount (optional, nil: radix select) counts the keys of src that are at least t
	// (t >= 1); TopK then finds its threshold by binary search (countThreshold).
	topkCount func(src []float32, t uint32) int
	// block16 (optional, nil: Go loop) is BlockTopN's n of every 16 for the whole blocks of src
	// (len(src) a multiple of 16, 0 < n < 16): it writes n indices per block, ascending, into
	// dst, which must have room for len(src)/16*n + 16 (its stores write whole vectors).
	block16 func(dst []int32, src []float32, n int)
}

var genericKernels = kernelSet{
	name:    "purego",
	gemvF32: gemvF32Generic,
	gemvF16: gemvF16Generic,
	gemmF32Block: func(y, x, w []float32, rows, cols, t0, t1, r0, r1 int, _ []float32) {
		gemmF32BlockGeneric(y, x, w, rows, cols, t0, t1, r0, r1)
	},
	gemmF16Block:   gemmF16BlockGeneric,
	gemmF32Strided: gemmF32StridedGeneric,
	siluMul:        siluMulGeneric,
	expSub:         expSubGeneric,
	maxF32:         maxF32Generic,
	scaleF32:       scaleF32Generic,
	gemmScratch: func(f16 bool, nr, cols int) int {
		if f16 {
			return nr * cols
		}
		return 0
	},
	sparseF16:     sparseF16Generic,
	sparseTernary: sparseTernaryGeneric,
	ternaryQ8Cols: ternaryQ8ColsGeneric,
}

// kern is the active kernel set.
var kern = genericKernels

// available lists the backends this CPU and build can run, best last.
var available = []kernelSet{genericKernels}

func init() {
	initArch() // appends SIMD backends when supported
	kern = available[len(available)-1]
	if want := strings.TrimSpace(os.Getenv("QSPARSE_KERNEL")); want != "" {
		// An unknown or unsupported backend keeps the best one: library code does not fail at
		// init; Backend() tells what runs (and the tests check it).
		_ = SetBackend(want)
	}
}

// Backend returns the name of the kernel backend in use: "purego", "avx2" or "avx512".
// The best one the CPU supports is chosen at start-up; the environment variable
// QSPARSE_KERNEL=purego|avx2|avx512 forces one.
func Backend() string { return kern.name }

// Backends lists the backends available on this CPU and build, slowest first.
func Backends() []string {
	out := make([]string, len(available))
	for i, b := range available {
		out[i] = b.name
	}
	return out
}

// SetBackend switches the kernel backend (for tests and benchmarks). It must not be called
// while kernels run. It fails if the backend is unknown or not supported here.
func SetBackend(name string) error {
	for _, b := range available {
		if b.name == name {
			kern = b
			return nil
		}
	}
	return fmt.Errorf("sparse: kernel backend %q not available on this CPU/build (have %v); "+
		"unset QSPARSE_KERNEL or pick one of those", name, Backends())
}

func gemmF16BlockGeneric(y, x []float32, w []uint16, rows, cols, t0, t1, r0, r1 int, scratch []float32) {
	convertRowsF16(scratch, w, cols, r0, r1)
	gemmF32BlockGeneric(y[r0:], x, scratch, rows, cols, t0, t1, 0, r1-r0)
}
