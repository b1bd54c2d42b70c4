package sparse

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func randIdx(r *rand.Rand, cols int, frac float64) []int32 {
	var idx []int32
	for c := 0; c < cols; c++ {
		if r.Float64() < frac {
			idx = append(idx, int32(c))
		}
	}
	return idx
}

func randTernary(r *rand.Rand, n int) []int8 {
	t := make([]int8, n)
	for i := range t {
		t[i] = int8(r.IntN(3) - 1)
	}
	return t
}

var sparseShapes = [][2]int{{1, 1}, {5, 3}, {63, 7}, {64, 64}, {65, 70}, {130, 33}, {576, 576}, {577, 100}, {2049, 17}, {4095, 5}, {4096, 6}, {4097, 9}, {40, 4095}, {40, 4096}, {40, 4097}}

func TestSparseGemv(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(11, 12))
		shapes := append([][2]int{}, sparseShapes...)
		for n := 0; n <= 70; n++ {
			shapes = append(shapes, [2]int{n, 9}, [2]int{9, n})
		}
		for _, sh := range shapes {
			rows, cols := sh[0], sh[1]
			w := randF16(r, rows*cols)
			pk, err := PackF16Cols(w, rows, cols)
			if err != nil {
				t.Fatal(err)
			}
			tt := randTernary(r, rows*cols)
			colScale := randF32(r, cols)
			tpT, _ := PackTernary(tt, []float32{0.37}, rows, cols)
			tpC, _ := PackTernary(tt, colScale, rows, cols)
			if cols == 0 {
				tpC, _ = PackTernary(tt, []float32{1}, rows, cols)
			}
			x := withGuardsF32(randF32(r, cols))
			p := NewPool(3)
			for _, frac := range []float64{0, 0.1, 0.5, 1} {
				idx := randIdx(r, cols, frac)
				y, chk := guardedF32(rows, 1)
				y2, chk2 := guardedF32(rows, 1)
				SparseGemvF16(y, pk, x, idx)
				p.SparseGemvF16(y2, pk, x, idx)
				chk(t)
				chk2(t)
				if !equalBits(y, y2) {
					t.Fatalf("F16 %dx%d: pool differs from single thread", rows, cols)
				}
				for i := 0; i < rows; i++ {
					var want, abs float64
					for _, c := range idx {
						v := float64(x[c]) * float64(F16ToF32(w[i*cols+int(c)]))
						want += v
						abs += max(v, -v)
					}
					checkClose(t, fmt.Sprintf("SparseF16 %dx%d frac %v row %d", rows, cols, frac, i), y[i], want, abs, len(idx))
				}
				for pass, tp := range []*TernaryCols{tpT, tpC} {
					SparseGemvTernary(y, tp, x, idx)
					p.SparseGemvTernary(y2, tp, x, idx)
					chk(t)
					chk2(t)
					if !equalBits(y, y2) {
						t.Fatalf("ternary %dx%d: pool differs", rows, cols)
					}
					// exact: (Σ inputs at +1) - (Σ inputs at -1), each in idx order, then the scale
					for i := 0; i < rows; i++ {
						var sp, sm float32
						for _, c := range idx {
							v := x[c]
							if pass == 1 {
								v *= tp.ColScale(int(c))
							}
							switch tt[i*cols+int(c)] {
							case 1:
								sp += v
							case -1:
								sm += v
							}
						}
						s := sp - sm
						if pass == 0 {
							s *= 0.37
						}
						if s != y[i] {
							t.Fatalf("SparseTernary pass %d %dx%d row %d: got %g want %g", pass, rows, cols, i, y[i], s)
						}
					}
				}
			}
			p.Close()
		}
	})
}

func TestSparseFused(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(13, 14))
		cols := 200
		rowsList := []int{200, 64, 64, 130}
		var ws []*F16Cols
		var ts []*TernaryCols
		var ys, refs [][]float32
		for _, rows := range rowsList {
			pk, _ := PackF16Cols(randF16(r, rows*cols), rows, cols)
			ws = append(ws, pk)
			tp, _ := PackTernary(randTernary(r, rows*cols), randF32(r, cols), rows, cols)
			ts = append(ts, tp)
			ys = append(ys, make([]float32, rows))
			refs = append(refs, make([]float32, rows))
		}
		x := randF32(r, cols)
		idx := randIdx(r, cols, 0.4)
		p := NewPool(2)
		defer p.Close()
		p.SparseGemvF16Multi(ys, ws, x, idx)
		for m := range ws {
			SparseGemvF16(refs[m], ws[m], x, idx)
			if !equalBits(ys[m], refs[m]) {
				t.Fatalf("fused F16 matrix %d differs", m)
			}
		}
		p.SparseGemvTernaryMulti(ys, ts, x, idx)
		for m := range ts {
			SparseGemvTernary(refs[m], ts[m], x, idx)
			if !equalBits(ys[m], refs[m]) {
				t.Fatalf("fused ternary matrix %d differs", m)
			}
		}
		if a := testing.AllocsPerRun(20, func() {
			p.SparseGemvF16Multi(ys, ws, x, idx)
			p.SparseGemvTernaryMulti(ys, ts, x, idx)
			p.SparseGemvF16(ys[0], ws[0], x, idx)
		}); a != 0 {
			t.Errorf("sparse pool calls allocate %v per run", a)
		}
	})
}

func TestPackRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	rows, cols := 70, 33
	w := randF32(r, rows*cols)
	pk, err := PackF16ColsFromF32(w, rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	q, err := QuantizeTernary(w, rows, cols, true)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < rows; i++ {
		for c := 0; c < cols; c++ {
			if pk.At(i, c) != F16ToF32(F32ToF16(w[i*cols+c])) {
				t.Fatalf("F16 pack (%d,%d)", i, c)
			}
			tr := q.Trit(i, c)
			want := max(-1, min(1, int(roundHalfAway(w[i*cols+c]/q.Scale[c]))))
			if tr != want {
				t.Fatalf("ternary (%d,%d) = %d want %d", i, c, tr, want)
			}
		}
	}
	if _, err := PackTernary([]int8{2}, []float32{1}, 1, 1); err == nil {
		t.Fatal("PackTernary accepted 2")
	}
	if _, err := PackF16Cols(make([]uint16, 5), 2, 3); err == nil {
		t.Fatal("PackF16Cols accepted a short matrix")
	}
}

func roundHalfAway(v float32) float32 {
	if v < 0 {
		return -float32(int(-v + 0.5))
	}
	return float32(int(v + 0.5))
}

// TestSparseThreadCounts: pooled sparse GEMV gives the same bits as the single-threaded
// function for any thread count, on shapes that produce several row chunks and blocks.
func TestSparseThreadCounts(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(17, 18))
		for _, sh := range [][2]int{{9000, 40}, {4097, 33}, {577, 300}, {64, 1000}} {
			rows, cols := sh[0], sh[1]
			pk, _ := PackF16Cols(randF16(r, rows*cols), rows, cols)
			tp, _ := PackTernary(randTernary(r, rows*cols), randF32(r, cols), rows, cols)
			x := randF32(r, cols)
			idx := randIdx(r, cols, 0.6)
			ref16, refT := make([]float32, rows), make([]float32, rows)
			SparseGemvF16(ref16, pk, x, idx)
			SparseGemvTernary(refT, tp, x, idx)
			for _, threads := range []int{1, 2, 4, 7} {
				p := NewPool(threads)
				y := make([]float32, rows)
				p.SparseGemvF16(y, pk, x, idx)
				if !equalBits(y, ref16) {
					t.Fatalf("fp16 %dx%d threads=%d differs from single-threaded", rows, cols, threads)
				}
				p.SparseGemvTernary(y, tp, x, idx)
				if !equalBits(y, refT) {
					t.Fatalf("ternary %dx%d threads=%d differs from single-threaded", rows, cols, threads)
				}
				p.Close()
			}
		}
	})
}
