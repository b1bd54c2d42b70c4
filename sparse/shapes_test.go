package sparse

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// closeTo: |a-b| within the float32 accumulation-order tolerance for a sum of n terms whose
// magnitudes add up to abs.
func closeTo(a, b float32, abs float64, n int) bool {
	return math.Abs(float64(a)-float64(b)) <= abs*float64(n+4)*1.2e-7+1e-30
}

// TestBackendsOnBenchShapes: every backend against the pure-Go kernels on the benchmark
// shapes (dense GEMV, sparse GEMV at 50%, GEMM with 5 tokens), outputs guarded.
func TestBackendsOnBenchShapes(t *testing.T) {
	if len(Backends()) == 1 {
		t.Skip("only the pure-Go backend in this build")
	}
	shapes := benchShapes
	if testing.Short() {
		shapes = shapes[:4]
	}
	old := Backend()
	defer SetBackend(old)
	for _, sh := range shapes {
		rows, cols := sh[0], sh[1]
		r := rand.New(rand.NewPCG(uint64(rows), uint64(cols)))
		h := withGuardsU16(randF16(r, rows*cols))
		w := make([]float32, rows*cols)
		F16ToF32Slice(w, h)
		w = withGuardsF32(w)
		const n = 5
		x := withGuardsF32(randF32(r, n*cols))
		pk, _ := PackF16Cols(h, rows, cols)
		tp, _ := PackTernary(randTernary(r, rows*cols), []float32{0.1}, rows, cols)
		idx := TopK(nil, x[:cols], cols/2)
		// per-row sums of |terms| for the tolerance
		absRow := make([]float64, rows)
		absTok := make([]float64, n*rows)
		for i := 0; i < rows; i++ {
			for c := 0; c < cols; c++ {
				absRow[i] += math.Abs(float64(w[i*cols+c] * x[c]))
			}
		}
		gemm := cols*rows <= 2048*2048
		if gemm {
			for tk := 0; tk < n; tk++ {
				for i := 0; i < rows; i++ {
					for c := 0; c < cols; c++ {
						absTok[tk*rows+i] += math.Abs(float64(w[i*cols+c] * x[tk*cols+c]))
					}
				}
			}
		}
		type outs struct{ gv32, gv16, sp16, spT, gm32, gm16 []float32 }
		run := func() outs {
			var o outs
			var chks []func(*testing.T)
			mk := func(m int) []float32 {
				s, c := guardedF32(m, 0)
				chks = append(chks, c)
				return s
			}
			p := NewPool(2)
			defer p.Close()
			o.gv32, o.gv16, o.sp16, o.spT = mk(rows), mk(rows), mk(rows), mk(rows)
			p.GemvF32(o.gv32, w, x, rows, cols)
			p.GemvF16(o.gv16, h, x, rows, cols)
			p.SparseGemvF16(o.sp16, pk, x, idx)
			p.SparseGemvTernary(o.spT, tp, x, idx)
			if gemm {
				o.gm32, o.gm16 = mk(n*rows), mk(n*rows)
				p.GemmF32(o.gm32, x, w, n, rows, cols)
				p.GemmF16(o.gm16, x, h, n, rows, cols)
			}
			for _, c := range chks {
				c(t)
			}
			return o
		}
		SetBackend("purego")
		ref := run()
		for _, b := range Backends()[1:] {
			SetBackend(b)
			got := run()
			name := fmt.Sprintf("%s %dx%d", b, rows, cols)
			for i := 0; i < rows; i++ {
				if !closeTo(got.gv32[i], ref.gv32[i], absRow[i], cols) || !closeTo(got.gv16[i], ref.gv16[i], absRow[i], cols) {
					t.Fatalf("%s dense GEMV row %d: %g %g vs %g %g", name, i, got.gv32[i], got.gv16[i], ref.gv32[i], ref.gv16[i])
				}
				if !closeTo(got.sp16[i], ref.sp16[i], absRow[i], cols) {
					t.Fatalf("%s sparse F16 row %d: %g vs %g", name, i, got.sp16[i], ref.sp16[i])
				}
				if got.spT[i] != ref.spT[i] {
					t.Fatalf("%s sparse ternary row %d: %g vs %g (must be exact)", name, i, got.spT[i], ref.spT[i])
				}
			}
			if gemm {
				for i := range got.gm32 {
					if !closeTo(got.gm32[i], ref.gm32[i], absTok[i], cols) || !closeTo(got.gm16[i], ref.gm16[i], absTok[i], cols) {
						t.Fatalf("%s GEMM elem %d: %g %g vs %g %g", name, i, got.gm32[i], got.gm16[i], ref.gm32[i], ref.gm16[i])
					}
				}
			}
		}
	}
}
