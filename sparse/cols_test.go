package sparse

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestGemmF16Cols: GEMM on the column-major pack equals GemmF16 on the row-major matrix bit
// for bit (whole pack and a row range of a stacked pack), on the calling goroutine and on a
// pool, on every backend.
func TestGemmF16Cols(t *testing.T) {
	defer SetBackend(Backend())
	p := NewPool(3)
	defer p.Close()
	for _, be := range Backends() {
		if err := SetBackend(be); err != nil {
			t.Fatal(err)
		}
		for _, sh := range [][3]int{{1, 7, 5}, {2, 64, 16}, {5, 100, 37}, {67, 192, 64}, {300, 130, 576}, {3, 40, 1600}} {
			n, rows, cols := sh[0], sh[1], sh[2]
			r := rand.New(rand.NewPCG(uint64(n), uint64(rows)))
			w := randF16(r, rows*cols)
			x := randF32(r, n*cols)
			pk, err := PackF16Cols(w, rows, cols)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]float32, n*rows)
			GemmF16(want, x, w, n, rows, cols)
			got := make([]float32, n*rows)
			GemmF16Cols(got, x, pk, 0, rows, n)
			cmpExact(t, fmt.Sprintf("%s n%d %dx%d", be, n, rows, cols), got, want)
			clear(got)
			p.GemmF16Cols(got, x, pk, 0, rows, n)
			cmpExact(t, fmt.Sprintf("%s pool n%d %dx%d", be, n, rows, cols), got, want)
			// rows [r0, r0+nr) of the pack
			r0, nr := rows/3, rows/2
			want2 := make([]float32, n*nr)
			GemmF16(want2, x, w[r0*cols:(r0+nr)*cols], n, nr, cols)
			got2 := make([]float32, n*nr)
			p.GemmF16Cols(got2, x, pk, r0, nr, n)
			cmpExact(t, fmt.Sprintf("%s rows n%d %dx%d", be, n, rows, cols), got2, want2)
		}
	}
}

func cmpExact(t *testing.T, name string, got, want []float32) {
	t.Helper()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: element %d = %g, want %g", name, i, got[i], want[i])
		}
	}
}

// BenchmarkGemmCols: prefill GEMM (512 tokens) on the row-major matrix vs the column-major pack.
func BenchmarkGemmCols(b *testing.B) {
	p := NewPool(benchThreads)
	defer p.Close()
	for _, sh := range [][2]int{{960, 576}, {3072, 576}, {576, 1536}} {
		rows, cols := sh[0], sh[1]
		const n = 512
		r := rand.New(rand.NewPCG(5, 6))
		w := randF16(r, rows*cols)
		pk, _ := PackF16Cols(w, rows, cols)
		x := randF32(r, n*cols)
		y := make([]float32, n*rows)
		b.Run(fmt.Sprintf("rows/%dx%d", rows, cols), func(b *testing.B) {
			for b.Loop() {
				p.GemmF16(y, x, w, n, rows, cols)
			}
		})
		b.Run(fmt.Sprintf("cols/%dx%d", rows, cols), func(b *testing.B) {
			for b.Loop() {
				p.GemmF16Cols(y, x, pk, 0, rows, n)
			}
		})
	}
}

// BenchmarkDecodeShapes: one token through SmolLM2's site shapes (2 threads): dense GEMV on
// the row-major matrix, the sparse kernel over all columns of the pack, and at 50%.
func BenchmarkDecodeShapes(b *testing.B) {
	p := NewPool(benchThreads)
	defer p.Close()
	for _, sh := range [][2]int{{960, 576}, {576, 576}, {3072, 576}, {576, 1536}, {49152, 576}} {
		rows, cols := sh[0], sh[1]
		r := rand.New(rand.NewPCG(7, 8))
		w := randF16(r, rows*cols)
		pk, _ := PackF16Cols(w, rows, cols)
		x := randF32(r, cols)
		y := make([]float32, rows)
		all := make([]int32, cols)
		for i := range all {
			all[i] = int32(i)
		}
		half := TopK(nil, x, cols/2)
		b.Run(fmt.Sprintf("gemv/%dx%d", rows, cols), func(b *testing.B) {
			for b.Loop() {
				p.GemvF16(y, w, x, rows, cols)
			}
		})
		b.Run(fmt.Sprintf("cols-all/%dx%d", rows, cols), func(b *testing.B) {
			for b.Loop() {
				p.SparseGemvF16(y, pk, x, all)
			}
		})
		b.Run(fmt.Sprintf("cols-s50/%dx%d", rows, cols), func(b *testing.B) {
			for b.Loop() {
				p.SparseGemvF16(y, pk, x, half)
			}
		})
		b.Run(fmt.Sprintf("topk/%d", cols), func(b *testing.B) {
			idx := make([]int32, 0, cols)
			for b.Loop() {
				TopK(idx, x, cols/2)
			}
		})
	}
}
