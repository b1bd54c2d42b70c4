package sparse

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// forEachBackend runs f once per available backend.
func forEachBackend(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	old := Backend()
	defer SetBackend(old)
	for _, b := range Backends() {
		if err := SetBackend(b); err != nil {
			t.Fatal(err)
		}
		t.Run(b, f)
	}
}

func randF32(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

func randF16(r *rand.Rand, n int) []uint16 {
	s := make([]uint16, n)
	for i := range s {
		s[i] = F32ToF16(float32(r.NormFloat64() * 0.5))
	}
	return s
}

// guarded returns a slice of n elements inside a larger buffer whose guard regions hold a
// sentinel, and a check function that fails if a guard changed.
func guardedF32(n int, fill float32) ([]float32, func(t *testing.T)) {
	const g = 67
	buf := make([]float32, n+2*g)
	sentinel := float32(math.Float32frombits(0x7fa5a5a5))
	for i := range buf {
		buf[i] = sentinel
	}
	s := buf[g : g+n : g+n]
	for i := range s {
		s[i] = fill
	}
	return s, func(t *testing.T) {
		t.Helper()
		for i := 0; i < g; i++ {
			if math.Float32bits(buf[i]) != 0x7fa5a5a5 || math.Float32bits(buf[g+n+i]) != 0x7fa5a5a5 {
				t.Fatalf("guard region overwritten (n=%d)", n)
			}
		}
	}
}

func withGuardsF32(src []float32) []float32 {
	s, _ := guardedF32(len(src), 0)
	copy(s, src)
	return s
}

func withGuardsU16(src []uint16) []uint16 {
	const g = 67
	buf := make([]uint16, len(src)+2*g)
	for i := range buf {
		buf[i] = 0x7e5a // NaN
	}
	s := buf[g : g+len(src) : g+len(src)]
	copy(s, src)
	return s
}

// refDot is the float64 dot product, and bound a tolerance for a float32 sum of the same terms.
func refDot(a []float32, b func(i int) float32) (float64, float64) {
	var s, abs float64
	for i, v := range a {
		p := float64(v) * float64(b(i))
		s += p
		abs += math.Abs(p)
	}
	return s, abs
}

func checkClose(t *testing.T, what string, got float32, want, abs float64, n int) {
	t.Helper()
	tol := abs*float64(n+4)*6e-8 + 1e-30
	if math.Abs(float64(got)-want) > tol || math.IsNaN(float64(got)) {
		t.Fatalf("%s: got %g want %g (tol %g)", what, got, want, tol)
	}
}

var gemvShapes = [][2]int{{1, 1}, {3, 5}, {7, 17}, {16, 16}, {33, 70}, {5, 4095}, {4, 4096}, {3, 4097}, {64, 576}, {17, 1536}, {100, 129},
	{9, 2032}, {5, 2048}, {3, 2049}} // 2048: gemvSeqMaxCols

func TestGemv(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		var shapes [][2]int
		shapes = append(shapes, gemvShapes...)
		for c := 0; c <= 70; c++ {
			shapes = append(shapes, [2]int{3, c})
		}
		for _, sh := range shapes {
			rows, cols := sh[0], sh[1]
			x := withGuardsF32(randF32(r, cols))
			w := withGuardsF32(randF32(r, rows*cols))
			h := withGuardsU16(randF16(r, rows*cols))
			y, chk := guardedF32(rows, 0)
			GemvF32(y, w, x, rows, cols)
			chk(t)
			for i := 0; i < rows; i++ {
				want, abs := refDot(x, func(c int) float32 { return w[i*cols+c] })
				checkClose(t, fmt.Sprintf("GemvF32 %dx%d row %d", rows, cols, i), y[i], want, abs, cols)
			}
			GemvF16(y, h, x, rows, cols)
			chk(t)
			for i := 0; i < rows; i++ {
				want, abs := refDot(x, func(c int) float32 { return F16ToF32(h[i*cols+c]) })
				checkClose(t, fmt.Sprintf("GemvF16 %dx%d row %d", rows, cols, i), y[i], want, abs, cols)
			}
		}
	})
}

func TestGemm(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		shapes := [][3]int{{1, 1, 1}, {2, 3, 5}, {5, 7, 17}, {4, 12, 16}, {9, 13, 70}, {67, 25, 33}, {3, 5, 4097}, {70, 50, 576}, {130, 37, 64}, {8, 30, 1536}}
		for c := 0; c <= 40; c++ {
			shapes = append(shapes, [3]int{5, 7, c})
		}
		for _, sh := range shapes {
			n, rows, cols := sh[0], sh[1], sh[2]
			x := withGuardsF32(randF32(r, n*cols))
			w := withGuardsF32(randF32(r, rows*cols))
			h := withGuardsU16(randF16(r, rows*cols))
			y, chk := guardedF32(n*rows, 0)
			for pass := 0; pass < 2; pass++ {
				if pass == 0 {
					GemmF32(y, x, w, n, rows, cols)
				} else {
					GemmF16(y, x, h, n, rows, cols)
				}
				chk(t)
				for tk := 0; tk < n; tk++ {
					for i := 0; i < rows; i++ {
						want, abs := refDot(x[tk*cols:tk*cols+cols], func(c int) float32 {
							if pass == 0 {
								return w[i*cols+c]
							}
							return F16ToF32(h[i*cols+c])
						})
						checkClose(t, fmt.Sprintf("Gemm pass %d %dx%dx%d t=%d r=%d", pass, n, rows, cols, tk, i), y[tk*rows+i], want, abs, cols)
					}
				}
			}
		}
	})
}

func equalBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestPoolDeterministic: the pool gives the same bits as the single-threaded functions for
// any thread count.
func TestPoolDeterministic(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		n, rows, cols := 37, 301, 200
		x := randF32(r, n*cols)
		w := randF32(r, rows*cols)
		h := randF16(r, rows*cols)
		ref := make([]float32, n*rows)
		got := make([]float32, n*rows)
		for _, threads := range []int{1, 2, 3, 7} {
			p := NewPool(threads)
			GemvF32(ref[:rows], w, x, rows, cols)
			p.GemvF32(got[:rows], w, x, rows, cols)
			if !equalBits(ref[:rows], got[:rows]) {
				t.Fatalf("GemvF32 threads=%d differs", threads)
			}
			GemvF16(ref[:rows], h, x, rows, cols)
			p.GemvF16(got[:rows], h, x, rows, cols)
			if !equalBits(ref[:rows], got[:rows]) {
				t.Fatalf("GemvF16 threads=%d differs", threads)
			}
			GemmF32(ref, x, w, n, rows, cols)
			p.GemmF32(got, x, w, n, rows, cols)
			if !equalBits(ref, got) {
				t.Fatalf("GemmF32 threads=%d differs", threads)
			}
			GemmF16(ref, x, h, n, rows, cols)
			p.GemmF16(got, x, h, n, rows, cols)
			if !equalBits(ref, got) {
				t.Fatalf("GemmF16 threads=%d differs", threads)
			}
			var cnt [1000]int32
			p.Run(1000, func(i int) { cnt[i]++ })
			for i, c := range cnt {
				if c != 1 {
					t.Fatalf("Run: index %d ran %d times", i, c)
				}
			}
			p.Close()
			p.Close()
		}
	})
}

func TestPoolNoAlloc(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	n, rows, cols := 9, 100, 64
	x := randF32(r, n*cols)
	w := randF32(r, rows*cols)
	h := randF16(r, rows*cols)
	y := make([]float32, n*rows)
	p := NewPool(2)
	defer p.Close()
	p.GemmF16(y, x, h, n, rows, cols) // warm up scratch
	fn := func(i int) {}
	for name, f := range map[string]func(){
		"GemvF32": func() { p.GemvF32(y, w, x, rows, cols) },
		"GemvF16": func() { p.GemvF16(y, h, x, rows, cols) },
		"GemmF32": func() { p.GemmF32(y, x, w, n, rows, cols) },
		"GemmF16": func() { p.GemmF16(y, x, h, n, rows, cols) },
		"Run":     func() { p.Run(10, fn) },
	} {
		if a := testing.AllocsPerRun(50, f); a != 0 {
			t.Errorf("Pool.%s allocates %v per call", name, a)
		}
	}
}
