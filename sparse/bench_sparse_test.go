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
			measure(b, func() { TopK(idx, x, d/2) }, nil)
		})
	}
	x := genVec(rand.New(rand.NewPCG(1, 2)), 4096, 0)
	idx := make([]int32, 0, 4096)
	b.Run("BlockTopN/d4096/8:16", func(b *testing.B) {
		measure(b, func() { BlockTopN(idx, x, 8, 16) }, nil)
	})
}

// BenchmarkSparseGemv: sparse GEMV over the column-major packs on 2 threads. SetBytes is the
// weight bytes actually streamed (active columns only), so MB/s is the streamed bandwidth;
// Gweights/s counts weights covered (active columns × rows) per second.
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
			gw := func(b *testing.B) func(float64) {
				return func(sec float64) { b.ReportMetric(float64(k)*float64(rows)/sec/1e9, "Gweights/s") }
			}
			b.Run(fmt.Sprintf("F16/%dx%d/s%d", rows, cols, sp), func(b *testing.B) {
				b.SetBytes(int64(k) * int64(pk.Stride) * 2)
				measure(b, func() { p.SparseGemvF16(y, pk, x, idx) }, gw(b))
			})
			b.Run(fmt.Sprintf("Ternary/%dx%d/s%d", rows, cols, sp), func(b *testing.B) {
				b.SetBytes(int64(k) * int64(padRows(rows)) / 4)
				measure(b, func() { p.SparseGemvTernary(y, tp, x, idx) }, gw(b))
			})
		}
	}
}
