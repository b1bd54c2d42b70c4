package sparse

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

var benchSparsities = []int{0, 25, 40, 50, 60, 75, 90}

func BenchmarkTopK(b *testing.B) {
	for _, d := range []int{576, 1536, 4096, 11008, 16384} {
		x := genVec(rand.New(rand.NewPCG(1, 2)), d, 0)
		idx := make([]int32, 0, d)
		b.Run(fmt.Sprintf("d%d/k50%%", d), func(b *testing.B) {
			for b.Loop() {
				TopK(idx, x, d/2)
			}
		})
	}
	x := genVec(rand.New(rand.NewPCG(1, 2)), 4096, 0)
	idx := make([]int32, 0, 4096)
	b.Run("BlockTopN/d4096/8:16", func(b *testing.B) {
		for b.Loop() {
			BlockTopN(idx, x, 8, 16)
		}
	})
}

// BenchmarkSparseGemv: sparse GEMV over the column-major packs on 2 threads; SetBytes is the
// weight bytes actually streamed (active columns only), so MB/s is the streamed bandwidth.
func BenchmarkSparseGemv(b *testing.B) {
	p := NewPool(benchThreads)
	defer p.Close()
	for _, sh := range benchShapes {
		rows, cols := sh[0], sh[1]
		r := rand.New(rand.NewPCG(3, 4))
		pk, _ := PackF16Cols(randF16(r, rows*cols), rows, cols)
		tp, _ := PackTernary(randTernary(r, rows*cols), []float32{0.5}, rows, cols)
		x := randF32(r, cols)
		y := make([]float32, rows)
		for _, sp := range benchSparsities {
			k := KeepCount(cols, float64(sp)/100)
			idx := TopK(nil, x, k)
			b.Run(fmt.Sprintf("F16/%dx%d/s%d", rows, cols, sp), func(b *testing.B) {
				b.SetBytes(int64(k) * int64(pk.Stride) * 2)
				for b.Loop() {
					p.SparseGemvF16(y, pk, x, idx)
				}
			})
			b.Run(fmt.Sprintf("Ternary/%dx%d/s%d", rows, cols, sp), func(b *testing.B) {
				b.SetBytes(int64(k) * int64(tp.Words) * 16)
				for b.Loop() {
					p.SparseGemvTernary(y, tp, x, idx)
				}
				b.ReportMetric(float64(k)*float64(rows)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gweights/s")
			})
		}
	}
}
