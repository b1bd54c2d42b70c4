package sparse

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// benchShapes are rows×cols of the benchmark grid.
var benchShapes = [][2]int{{576, 576}, {576, 1536}, {1536, 576}, {2048, 2048}, {4096, 11008}, {11008, 4096}}

const benchThreads = 2

// measure runs f b.N times and reports, besides ns/op, the CPU time per op (all threads) and
// the custom metrics computed from the wall time.
func measure(b *testing.B, f func(), metrics func(sec float64)) {
	c0 := cpuTime()
	for b.Loop() {
		f()
	}
	b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
	if metrics != nil {
		metrics(b.Elapsed().Seconds() / float64(b.N))
	}
}

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
			measure(b, func() { p.GemvF16(y, h, x, rows, cols) }, nil)
		})
		w := randF32(r, rows*cols)
		b.Run(fmt.Sprintf("F32/%dx%d", rows, cols), func(b *testing.B) {
			b.SetBytes(int64(4 * rows * cols))
			measure(b, func() { p.GemvF32(y, w, x, rows, cols) }, nil)
		})
	}
}

// BenchmarkGemm: prompt processing of 512 tokens on SmolLM2-135M shapes (and 2048²), 2 threads.
func BenchmarkGemm(b *testing.B) {
	p := NewPool(benchThreads)
	defer p.Close()
	const n = 512
	for _, sh := range [][2]int{{576, 576}, {192, 576}, {1536, 576}, {576, 1536}, {2048, 2048}} {
		rows, cols := sh[0], sh[1]
		r := rand.New(rand.NewPCG(1, 1))
		x := randF32(r, n*cols)
		y := make([]float32, n*rows)
		h := randF16(r, rows*cols)
		w := randF32(r, rows*cols)
		flop := 2 * float64(n) * float64(rows) * float64(cols)
		gf := func(b *testing.B) func(float64) {
			return func(sec float64) { b.ReportMetric(flop/sec/1e9, "GFLOP/s") }
		}
		b.Run(fmt.Sprintf("F16/n%d/%dx%d", n, rows, cols), func(b *testing.B) {
			measure(b, func() { p.GemmF16(y, x, h, n, rows, cols) }, gf(b))
		})
		b.Run(fmt.Sprintf("F32/n%d/%dx%d", n, rows, cols), func(b *testing.B) {
			measure(b, func() { p.GemmF32(y, x, w, n, rows, cols) }, gf(b))
		})
	}
}

// BenchmarkGemm1: GemmF16 on the calling goroutine alone (one thread), prompt processing of
// 512 tokens on SmolLM2-135M shapes; on a shared machine its cpu-ns/op is the steadier figure.
func BenchmarkGemm1(b *testing.B) {
	const n = 512
	for _, sh := range [][2]int{{576, 576}, {1536, 576}, {576, 1536}} {
		rows, cols := sh[0], sh[1]
		r := rand.New(rand.NewPCG(1, 1))
		x := randF32(r, n*cols)
		y := make([]float32, n*rows)
		h := randF16(r, rows*cols)
		flop := 2 * float64(n) * float64(rows) * float64(cols)
		b.Run(fmt.Sprintf("F16/n%d/%dx%d", n, rows, cols), func(b *testing.B) {
			c0 := cpuTime()
			measure(b, func() { GemmF16(y, x, h, n, rows, cols) }, nil)
			b.ReportMetric(flop*float64(b.N)/float64(cpuTime()-c0), "GFLOP/cpu-s")
		})
	}
}

// BenchmarkPrefillSmolLM2 runs the GEMMs of one 512-token prompt through SmolLM2-135M
// (30 layers of q,k,v,o,gate,up,down, plus the tied 49152-row output) with fp16 weights on 2
// threads and reports tokens/s of the matrix products alone (attention excluded).
func BenchmarkPrefillSmolLM2(b *testing.B) {
	p := NewPool(benchThreads)
	defer p.Close()
	const n, dim, ffn, kv, vocab = 512, 576, 1536, 192, 49152
	r := rand.New(rand.NewPCG(1, 1))
	mats := []struct{ rows, cols int }{{dim, dim}, {kv, dim}, {kv, dim}, {dim, dim}, {ffn, dim}, {ffn, dim}, {dim, ffn}}
	ws := make([][]uint16, len(mats))
	for i, m := range mats {
		ws[i] = randF16(r, m.rows*m.cols)
	}
	out := randF16(r, vocab*dim)
	x := randF32(r, n*ffn)
	y := make([]float32, n*ffn)
	logits := make([]float32, vocab) // only the last token's logits, as a prompt needs
	b.Run("F16/n512", func(b *testing.B) {
		measure(b, func() {
			for l := 0; l < 30; l++ {
				for i, m := range mats {
					p.GemmF16(y, x, ws[i], n, m.rows, m.cols)
				}
			}
			p.GemvF16(logits, out, x, vocab, dim)
		}, func(sec float64) { b.ReportMetric(n/sec, "tok/s") })
	})
	_ = time.Second
}
