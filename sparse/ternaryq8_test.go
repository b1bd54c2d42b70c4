package sparse

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// refTernaryQ8 is the definition of SparseGemvTernaryQ8, written plainly: quantize the active
// inputs, sum q·t exactly, scale once.
func refTernaryQ8(tt []int8, scale []float32, rows, cols int, x []float32, idx []int32) []float32 {
	v := make([]float32, len(idx))
	for j, c := range idx {
		v[j] = x[c]
		if len(scale) != 1 {
			v[j] *= scale[c]
		}
	}
	q := make([]int8, len(idx))
	inv := QuantizeQ8(q, v)
	mul := inv
	if len(scale) == 1 {
		mul = scale[0] * inv
	}
	y := make([]float32, rows)
	for r := 0; r < rows; r++ {
		var s int32
		for j, c := range idx {
			s += int32(q[j]) * int32(tt[r*cols+int(c)])
		}
		y[r] = float32(s) * mul
	}
	return y
}

// reusedQ8Scratch serves every checkTernaryQ8 call, across shapes and backends: its buffers
// grow and shrink in use.
var reusedQ8Scratch TernaryQ8Scratch

func checkTernaryQ8(t *testing.T, p *Pool, tt []int8, scale []float32, rows, cols int, x []float32, idx []int32) {
	t.Helper()
	w, err := PackTernaryQ8(tt, scale, rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	want := refTernaryQ8(tt, scale, rows, cols, x, idx)
	y, chk := guardedF32(rows, 7)
	SparseGemvTernaryQ8(y, w, x, idx)
	chk(t)
	if !equalBits(y, want) {
		t.Fatalf("%dx%d, %d active: SparseGemvTernaryQ8 differs from the reference", rows, cols, len(idx))
	}
	y1, chk1 := guardedF32(rows, 7)
	reusedQ8Scratch.SparseGemvTernaryQ8(y1, w, x, idx)
	chk1(t)
	if !equalBits(y1, want) {
		t.Fatalf("%dx%d, %d active: TernaryQ8Scratch.SparseGemvTernaryQ8 differs from the reference", rows, cols, len(idx))
	}
	if p != nil {
		y2, chk2 := guardedF32(rows, 7)
		p.SparseGemvTernaryQ8(y2, w, x, idx)
		chk2(t)
		if !equalBits(y2, want) {
			t.Fatalf("%dx%d, %d active: Pool.SparseGemvTernaryQ8 differs from the reference", rows, cols, len(idx))
		}
	}
}

// TestSparseGemvTernaryQ8: every backend equals the plain reference bit for bit, over every
// row and column count 0..70, 4095..4097 and the benchmark shapes, guard regions around y.
func TestSparseGemvTernaryQ8(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(21, 22))
		p := NewPool(3)
		defer p.Close()
		shapes := append([][2]int{}, sparseShapes...)
		for n := 0; n <= 70; n++ {
			shapes = append(shapes, [2]int{n, 9}, [2]int{9, n}, [2]int{n, n})
		}
		shapes = append(shapes, [2]int{255, 11}, [2]int{256, 12}, [2]int{257, 13}, [2]int{4095, 4095}, [2]int{17, 4097})
		for _, sh := range shapes {
			rows, cols := sh[0], sh[1]
			tt := randTernary(r, rows*cols)
			x := withGuardsF32(randF32(r, cols))
			cs := randF32(r, cols)
			for _, frac := range []float64{0, 0.1, 0.5, 1} {
				idx := randIdx(r, cols, frac)
				checkTernaryQ8(t, p, tt, []float32{0.37}, rows, cols, x, idx)
				if cols > 0 {
					checkTernaryQ8(t, p, tt, cs, rows, cols, x, idx)
				}
			}
		}
	})
}

// TestSparseGemvTernaryQ8Shapes: the benchmark shapes at 50 % (top-K), every backend.
func TestSparseGemvTernaryQ8Shapes(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	r := rand.New(rand.NewPCG(5, 6))
	for _, sh := range [][2]int{{576, 1536}, {2048, 2048}, {4096, 11008}, {11008, 4096}} {
		rows, cols := sh[0], sh[1]
		tt := randTernary(r, rows*cols)
		w, _ := PackTernaryQ8(tt, []float32{0.5}, rows, cols)
		x := withGuardsF32(randF32(r, cols))
		idx := TopK(nil, x, KeepCount(cols, 0.5))
		var want []float32
		forEachBackend(t, func(t *testing.T) {
			p := NewPool(2)
			defer p.Close()
			y, chk := guardedF32(rows, 0)
			p.SparseGemvTernaryQ8(y, w, x, idx)
			chk(t)
			if want == nil {
				want = append([]float32(nil), y...)
			} else if !equalBits(y, want) {
				t.Fatalf("%dx%d: backend %s differs", rows, cols, Backend())
			}
		})
	}
}

// TestTernaryQ8CloseToFloat: the int8 variant stays within the activation rounding of the
// exact float kernel, and the pack round-trips the trits.
func TestTernaryQ8CloseToFloat(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 9))
	rows, cols := 300, 513
	tt := randTernary(r, rows*cols)
	tp, _ := PackTernary(tt, []float32{0.3}, rows, cols)
	q8, err := TernaryQ8FromCols(tp)
	if err != nil {
		t.Fatal(err)
	}
	for rr := 0; rr < rows; rr++ {
		for c := 0; c < cols; c++ {
			if q8.Trit(rr, c) != int(tt[rr*cols+c]) {
				t.Fatalf("trit %d,%d", rr, c)
			}
		}
	}
	x := randF32(r, cols)
	idx := TopK(nil, x, cols/2)
	yf := make([]float32, rows)
	yq := make([]float32, rows)
	SparseGemvTernary(yf, tp, x, idx)
	SparseGemvTernaryQ8(yq, q8, x, idx)
	var amax float64
	for _, c := range idx {
		amax = max(amax, math.Abs(float64(x[c])))
	}
	// each input is off by at most amax/254; the sum by len(idx) of those, times the scale
	bound := 0.3 * amax / 254 * float64(len(idx))
	for i := range yf {
		if d := math.Abs(float64(yf[i] - yq[i])); d > bound {
			t.Fatalf("row %d: float %g, int8 %g (bound %g)", i, yf[i], yq[i], bound)
		}
	}
}

func TestPackTernaryQ8Errors(t *testing.T) {
	if _, err := PackTernaryQ8([]int8{2}, []float32{1}, 1, 1); err == nil {
		t.Fatal("value 2 accepted")
	}
	if _, err := PackTernaryQ8([]int8{1}, []float32{1, 2}, 1, 1); err == nil {
		t.Fatal("bad scale count accepted")
	}
	if _, err := PackTernaryQ8(nil, []float32{1}, 1, TernaryQ8MaxCols+1); err == nil {
		t.Fatal("too many columns accepted")
	}
}

// FuzzTernaryQ8 checks every backend's int8 ternary GEMV against the plain reference on
// fuzzer-chosen shapes, trits, inputs and active sets, bit for bit.
func FuzzTernaryQ8(f *testing.F) {
	f.Add(uint16(3), uint16(5), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add(uint16(300), uint16(17), []byte{0xff, 0x7b, 0x00, 0x3c, 0x55})
	f.Fuzz(func(t *testing.T, rows16, cols16 uint16, data []byte) {
		rows, cols := int(rows16)%600, int(cols16)%300
		if len(data) == 0 {
			data = []byte{0}
		}
		at := func(i int) byte { return data[i%len(data)] }
		tt := make([]int8, rows*cols)
		for i := range tt {
			tt[i] = int8(at(i+5)%3) - 1
		}
		x := make([]float32, cols)
		for i := range x {
			x[i] = float32(int8(at(3*i+7))) / float32(1+at(i+1)%64)
		}
		var idx []int32
		for c := 0; c < cols; c++ {
			if at(c+11)&1 == 1 {
				idx = append(idx, int32(c))
			}
		}
		scale := []float32{0.25}
		if at(0)&1 == 1 && cols > 0 {
			scale = make([]float32, cols)
			for i := range scale {
				scale[i] = float32(at(i+2)) / 37
			}
		}
		old := Backend()
		defer SetBackend(old)
		for _, b := range Backends() {
			SetBackend(b)
			checkTernaryQ8(t, nil, tt, scale, rows, cols, x, idx)
		}
	})
}

// BenchmarkSparseGemvTernaryQ8: the int8-activation ternary GEMV on 2 threads; Gweights/s
// counts active columns × rows per second, MB/s the 2-bit codes streamed.
func BenchmarkSparseGemvTernaryQ8(b *testing.B) {
	p := NewPool(benchThreads)
	defer p.Close()
	for _, sh := range benchShapes {
		rows, cols := sh[0], sh[1]
		r := rand.New(rand.NewPCG(3, 4))
		w, _ := PackTernaryQ8(randTernary(r, rows*cols), []float32{0.5}, rows, cols)
		x := randF32(r, cols)
		y := make([]float32, rows)
		for _, sp := range benchSparsities {
			k := KeepCount(cols, float64(sp)/100)
			idx := TopK(nil, x, k)
			b.Run(fmt.Sprintf("%dx%d/s%d", rows, cols, sp), func(b *testing.B) {
				b.SetBytes(int64(k) * int64(q8Strips(rows)*q8Strip) / 4)
				measure(b, func() { p.SparseGemvTernaryQ8(y, w, x, idx) }, func(sec float64) {
					b.ReportMetric(float64(k)*float64(rows)/sec/1e9, "Gweights/s")
				})
			})
		}
	}
}

// TestQuantizeQ8RoundEven: the float32 magic-number rounding in QuantizeQ8 equals
// math.RoundToEven of the float32 product, ties included; NaN inputs give 0 and do not
// change the others.
func TestQuantizeQ8RoundEven(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for it := 0; it < 2000; it++ {
		n := 1 + r.IntN(300)
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64()) * float32(math.Pow(10, float64(r.IntN(8)-4)))
			if r.IntN(50) == 0 {
				v[i] = float32(r.IntN(255)-127) / 2 // ties after scaling by 1
			}
		}
		q := make([]int8, n)
		inv := QuantizeQ8(q, v)
		var amax float32
		for _, a := range v {
			amax = max(amax, float32(math.Abs(float64(a))))
		}
		amax = max(amax, 1e-5)
		sx := 127 / amax
		for i, a := range v {
			want := int8(max(-127, min(127, math.RoundToEven(float64(a*sx)))))
			if q[i] != want {
				t.Fatalf("%g: got %d want %d", a, q[i], want)
			}
		}
		if inv != amax/127 {
			t.Fatalf("inverse scale %g, want %g", inv, amax/127)
		}
	}
	q := make([]int8, 3)
	QuantizeQ8(q, []float32{float32(math.NaN()), 2, -1})
	if q[0] != 0 || q[1] != 127 || q[2] != -64 {
		t.Fatalf("NaN case: %v", q)
	}
}

// TestSparseGemvTernaryQ8Multi: one call over several matrices (per-tensor and per-column
// scales, different row counts, none) equals separate calls bit for bit, on every backend.
func TestSparseGemvTernaryQ8Multi(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(31, 32))
		p := NewPool(3)
		defer p.Close()
		for _, cols := range []int{1, 9, 70, 576} {
			var ws []*TernaryQ8
			var ys [][]float32
			var chks []func(*testing.T)
			for m, rows := range []int{cols, 0, 192, 257} {
				scale := []float32{0.37}
				if m%2 == 1 {
					scale = randF32(r, cols)
				}
				w, err := PackTernaryQ8(randTernary(r, rows*cols), scale, rows, cols)
				if err != nil {
					t.Fatal(err)
				}
				y, chk := guardedF32(rows, 5)
				ws, ys, chks = append(ws, w), append(ys, y), append(chks, chk)
			}
			x := withGuardsF32(randF32(r, cols))
			for _, frac := range []float64{0, 0.5, 1} {
				idx := randIdx(r, cols, frac)
				p.SparseGemvTernaryQ8Multi(ys, ws, x, idx)
				for m, w := range ws {
					chks[m](t)
					want := make([]float32, w.Rows)
					p.SparseGemvTernaryQ8(want, w, x, idx)
					if !equalBits(ys[m][:w.Rows], want) {
						t.Fatalf("cols %d, %d active, matrix %d: Multi differs from a single call", cols, len(idx), m)
					}
				}
			}
		}
	})
}

// TestTernaryQ8NoAllocs: the pool's ternary GEMVs and a reused TernaryQ8Scratch allocate
// nothing once warm, even when a garbage collection (which empties sync.Pools) runs between
// calls; 3 threads on any machine, so workers also run late and interleaved.
func TestTernaryQ8NoAllocs(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		p := NewPool(3)
		defer p.Close()
		r := rand.New(rand.NewPCG(11, 12))
		const rows, cols = 600, 512
		var ws []*TernaryQ8
		for range 3 {
			tt := make([]int8, rows*cols)
			for i := range tt {
				tt[i] = int8(r.IntN(3) - 1)
			}
			w, err := PackTernaryQ8(tt, []float32{0.5}, rows, cols)
			if err != nil {
				t.Fatal(err)
			}
			ws = append(ws, w)
		}
		x := randF32(r, cols)
		idx := TopK(nil, x, cols/2)
		ys := [][]float32{make([]float32, rows), make([]float32, rows), make([]float32, rows)}
		var scr TernaryQ8Scratch
		f := func() {
			p.SparseGemvTernaryQ8(ys[0], ws[0], x, idx)
			p.SparseGemvTernaryQ8Multi(ys, ws, x, idx)
			scr.SparseGemvTernaryQ8(ys[1], ws[1], x, idx)
		}
		f()
		if a := testing.AllocsPerRun(10, func() { runtime.GC(); f() }); a != 0 {
			t.Fatalf("%v allocations per call after a GC", a)
		}
	})
}
