package sparse

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestGemmF32Strided checks the strided GEMM against float64 sums on every backend, that a row
// of y does not depend on the other rows computed with it, and that nothing outside y is
// written.
func TestGemmF32Strided(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, c := range []struct{ n, rows, cols int }{
			{1, 1, 1}, {1, 7, 64}, {5, 13, 64}, {9, 64, 48}, {4, 3, 16}, {33, 21, 100}, {3, 5, 0}, {17, 64, 528},
			{1, 64, 64}, {1, 45, 24}, {1, 8, 16}, {1, 203, 1552}, {1, 19, 130},
		} {
			t.Run(fmt.Sprintf("%dx%dx%d", c.n, c.rows, c.cols), func(t *testing.T) {
				xs, ws, ys := c.cols+5, c.cols+3, c.rows+7
				x := randF32(r, c.n*xs)
				w := randF32(r, c.rows*ws)
				y := make([]float32, c.n*ys)
				for i := range y {
					y[i] = 42
				}
				GemmF32Strided(y, ys, x, xs, w, ws, c.n, c.rows, c.cols)
				for tt := range c.n {
					for rr := range ys {
						got := y[tt*ys+rr]
						if rr >= c.rows {
							if got != 42 {
								t.Fatalf("y[%d][%d] outside the output written", tt, rr)
							}
							continue
						}
						var want, mag float64
						for k := range c.cols {
							p := float64(x[tt*xs+k]) * float64(w[rr*ws+k])
							want += p
							mag += math.Abs(p)
						}
						if math.Abs(float64(got)-want) > 1e-5*(mag+1) {
							t.Fatalf("y[%d][%d] = %g, want %g", tt, rr, got, want)
						}
						// the same element computed alone
						var one [1]float32
						GemmF32Strided(one[:], 1, x[tt*xs:], xs, w[rr*ws:], ws, 1, 1, c.cols)
						if one[0] != got {
							t.Fatalf("y[%d][%d] = %g in the batch, %g alone", tt, rr, got, one[0])
						}
					}
				}
			})
		}
	})
}

// TestSiLUMulSoftmax checks the float32 exponential kernels against float64 on every backend
// (e^x is clamped to x <= 88.02, so SiLU of g < -88 is a tiny value, not its exact one).
func TestSiLUMulSoftmax(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, n := range []int{0, 1, 7, 16, 17, 33, 100, 1536} {
			g := randF32(r, n)
			for i := range g {
				g[i] *= float32(1 + i%5*10) // up to ±200: clamps, tiny and huge e^x
			}
			u := randF32(r, n)
			got := append([]float32(nil), g...)
			SiLUMul(got, u)
			for i := range g {
				want := float64(g[i]) / (1 + math.Exp(-float64(g[i]))) * float64(u[i])
				if d := math.Abs(float64(got[i]) - want); d > 4e-7*math.Abs(want)+1e-30 {
					t.Fatalf("n=%d: SiLUMul(%g)·%g = %g, want %g", n, g[i], u[i], got[i], want)
				}
			}
			x := randF32(r, n)
			for i := range x {
				x[i] *= 20
			}
			var m float64 = -1e30
			for _, v := range x {
				m = max(m, float64(v*0.125))
			}
			e := append([]float32(nil), x...)
			Softmax(e, 0.125)
			var wsum float64
			for i := range x {
				wsum += math.Exp(float64(x[i]*0.125) - m)
			}
			for i := range x {
				want := math.Exp(float64(x[i]*0.125)-m) / wsum
				if d := math.Abs(float64(e[i]) - want); d > 1e-6*want+1e-37 {
					t.Fatalf("n=%d: softmax[%d] = %g, want %g", n, i, e[i], want)
				}
			}
		}
	})
}
