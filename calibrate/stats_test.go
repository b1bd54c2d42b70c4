package calibrate

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qsparse/qsparse/sparse"
)

// TestTokenMatchesTopK checks the proxy of one token against a plain computation with the
// forward pass's own selection (sparse.TopK, sparse.TopKWeighted), ties included.
func TestTokenMatchesTopK(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const d = 48
	for _, weighted := range []bool{false, true} {
		x := make([]float32, d)
		norms := make([]float32, d)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
			if i%7 == 0 {
				x[i] = 0.5 // ties
			}
			norms[i] = float32(0.5 + rng.Float64())
		}
		c := &collector{weighted: weighted}
		g := newGrid(d, 1)
		acc := make([]float64, len(g.keep))
		c.token(x, norms, g, make([]uint64, d), acc)
		idx := make([]int32, d)
		scratch := make([]float32, d)
		for j, k := range g.keep {
			var kept []int32
			if weighted {
				kept = sparse.TopKWeighted(idx, x, norms, k, scratch)
			} else {
				kept = sparse.TopK(idx, x, k)
			}
			in := make([]bool, d)
			for _, i := range kept {
				in[i] = true
			}
			var want float64
			for i := range x {
				if !in[i] {
					e := math.Abs(float64(x[i])) * float64(norms[i])
					want += e * e
				}
			}
			if math.Abs(acc[j]-want) > 1e-9*(1+want) {
				t.Fatalf("weighted=%v K=%d: proxy %g, want %g", weighted, k, acc[j], want)
			}
		}
	}
}
