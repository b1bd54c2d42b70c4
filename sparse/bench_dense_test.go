package sparse

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchShapes are rows×cols of the benchmark grid.
var benchShapes = [][2]int{{576, 576}, {576, 1536}, {1536, 576}, {2048, 2048}, {4096, 11008}, {11008, 4096}}

const benchThreads = 2

func BenchmarkGemvDense(b *testing.B) {
	p := NewPool(benchThreads)
	defer p.Close()
	for _, sh := range benchShapes {
		rows, cols := sh[0], sh[1]
		r := rand.New(rand.NewPCG(1, 1))
		x := randF32(r, cols)
		y := make([]float32, rows)
		h := randF16(r, rows*cols)
		b.Run(fmt.Sprintf("F16/%dx%d", rows, cols), func(b *testing.B) {
			b.SetBytes(int64(2 * rows * cols))
			for b.Loop() {
				p.GemvF16(y, h, x, rows, cols)
			}
		})
		w := randF32(r, rows*cols)
		b.Run(fmt.Sprintf("F32/%dx%d", rows, cols), func(b *testing.B) {
			b.SetBytes(int64(4 * rows * cols))
			for b.Loop() {
				p.GemvF32(y, w, x, rows, cols)
			}
		})
	}
}

// BenchmarkGemm: prompt processing of n tokens; reports GFLOP/s (as MB/s units of 1e6 flop... see
// the custom metric) for SmolLM2-135M shapes.
func BenchmarkGemm(b *testing.B) {
	p := NewPool(benchThreads)
	defer p.Close()
	const n = 512
	for _, sh := range [][2]int{{576, 576}, {1536, 576}, {576, 1536}, {192, 576}, {2048, 2048}} {
		rows, cols := sh[0], sh[1]
		r := rand.New(rand.NewPCG(1, 1))
		x := randF32(r, n*cols)
		y := make([]float32, n*rows)
		h := randF16(r, rows*cols)
		w := randF32(r, rows*cols)
		flop := 2 * float64(n) * float64(rows) * float64(cols)
		b.Run(fmt.Sprintf("F16/n%d/%dx%d", n, rows, cols), func(b *testing.B) {
			for b.Loop() {
				p.GemmF16(y, x, h, n, rows, cols)
			}
			b.ReportMetric(flop*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(fmt.Sprintf("F32/n%d/%dx%d", n, rows, cols), func(b *testing.B) {
			for b.Loop() {
				p.GemmF32(y, x, w, n, rows, cols)
			}
			b.ReportMetric(flop*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
