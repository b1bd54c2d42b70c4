package sparse

import (
	"math"
	"testing"
)

// FuzzGemv checks every backend's dense GEMV/GEMM and sparse GEMV (fp16 and ternary) against
// the pure-Go kernels on fuzzer-chosen shapes, values and active sets: products within the
// float32 accumulation-order tolerance, ternary exactly.
func FuzzGemv(f *testing.F) {
	f.Add(uint8(3), uint8(5), uint8(2), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add(uint8(70), uint8(17), uint8(4), []byte{0xff, 0x7b, 0x00, 0x3c, 0x55})
	f.Fuzz(func(t *testing.T, rows8, cols8, n8 uint8, data []byte) {
		rows, cols, n := int(rows8)%80+1, int(cols8)%80, int(n8)%6+1
		if len(data) == 0 {
			data = []byte{0}
		}
		at := func(i int) byte { return data[i%len(data)] }
		// fp16 weights from the data, finite and modest so sums stay finite
		h := make([]uint16, rows*cols)
		for i := range h {
			v := uint16(at(2*i)) | uint16(at(2*i+1))<<8
			v &^= 0x4000 // exponent below 16: |w| < 2
			h[i] = v
		}
		w := make([]float32, rows*cols)
		F16ToF32Slice(w, h)
		x := make([]float32, n*cols)
		for i := range x {
			x[i] = float32(int8(at(3*i+7))) / 16
		}
		var idx []int32
		for c := 0; c < cols; c++ {
			if at(c+11)&1 == 1 {
				idx = append(idx, int32(c))
			}
		}
		tt := make([]int8, rows*cols)
		for i := range tt {
			tt[i] = int8(at(i+5)%3) - 1
		}
		pk, _ := PackF16Cols(h, rows, cols)
		tp, _ := PackTernary(tt, []float32{0.25}, rows, cols)

		run := func() [][]float32 {
			out := make([][]float32, 6)
			for i := range out {
				out[i] = make([]float32, n*rows)
			}
			GemvF32(out[0], w, x, rows, cols)
			GemvF16(out[1], h, x, rows, cols)
			GemmF32(out[2], x, w, n, rows, cols)
			GemmF16(out[3], x, h, n, rows, cols)
			SparseGemvF16(out[4], pk, x, idx)
			SparseGemvTernary(out[5], tp, x, idx)
			return out
		}
		old := Backend()
		defer SetBackend(old)
		SetBackend("purego")
		ref := run()
		for _, b := range Backends() {
			SetBackend(b)
			got := run()
			for kind := range got {
				for i := range got[kind] {
					g, r := got[kind][i], ref[kind][i]
					if kind == 5 {
						if g != r {
							t.Fatalf("%s ternary row %d: %g != %g", b, i, g, r)
						}
						continue
					}
					// tolerance: 2 ulps of the sum of |terms| per term
					var abs float64
					for c := 0; c < cols; c++ {
						abs += math.Abs(float64(x[(i/rows)*cols%max(len(x), 1)+c%max(cols, 1)] * w[(i%rows)*cols+c]))
					}
					if math.Abs(float64(g-r)) > abs*float64(cols+2)*1.2e-7+1e-6 {
						t.Fatalf("%s kind %d elem %d: %g vs %g", b, kind, i, g, r)
					}
				}
			}
		}
	})
}
