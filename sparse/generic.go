package sparse

import "math"

// Pure-Go kernels. They are the reference every SIMD backend is tested against and the fallback
// on other architectures or with -tags purego.

// gemvF32Generic computes y[r] = Σ_c w[r*cols+c]*x[c] for r in [r0, r1).
func gemvF32Generic(y, w, x []float32, cols, r0, r1 int) {
	x = x[:cols]
	for r := r0; r < r1; r++ {
		row := w[r*cols : r*cols+cols]
		var s0, s1, s2, s3 float32
		c := 0
		for ; c+4 <= cols; c += 4 {
			s0 += row[c] * x[c]
			s1 += row[c+1] * x[c+1]
			s2 += row[c+2] * x[c+2]
			s3 += row[c+3] * x[c+3]
		}
		for ; c < cols; c++ {
			s0 += row[c] * x[c]
		}
		y[r] = (s0 + s1) + (s2 + s3)
	}
}

// gemvF16Generic computes y[r] = Σ_c f16(w[r*cols+c])*x[c] for r in [r0, r1).
func gemvF16Generic(y []float32, w []uint16, x []float32, cols, r0, r1 int) {
	t := f16Table()
	x = x[:cols]
	for r := r0; r < r1; r++ {
		row := w[r*cols : r*cols+cols]
		var s0, s1, s2, s3 float32
		c := 0
		for ; c+4 <= cols; c += 4 {
			s0 += t[row[c]] * x[c]
			s1 += t[row[c+1]] * x[c+1]
			s2 += t[row[c+2]] * x[c+2]
			s3 += t[row[c+3]] * x[c+3]
		}
		for ; c < cols; c++ {
			s0 += t[row[c]] * x[c]
		}
		y[r] = (s0 + s1) + (s2 + s3)
	}
}

// gemmF32BlockGeneric computes y[t*rows+r] = Σ_c x[t*cols+c]*w[r*cols+c] for t in [t0,t1),
// r in [r0,r1). Every element is one sequential sum over c, so the tiling does not change it.
func gemmF32BlockGeneric(y, x, w []float32, rows, cols, t0, t1, r0, r1 int) {
	t := t0
	for ; t+4 <= t1; t += 4 {
		x0 := x[t*cols : t*cols+cols]
		x1 := x[(t+1)*cols : (t+1)*cols+cols]
		x2 := x[(t+2)*cols : (t+2)*cols+cols]
		x3 := x[(t+3)*cols : (t+3)*cols+cols]
		r := r0
		for ; r+2 <= r1; r += 2 {
			w0 := w[r*cols : r*cols+cols]
			w1 := w[(r+1)*cols : (r+1)*cols+cols]
			var a00, a01, a10, a11, a20, a21, a30, a31 float32
			for c := range w0 {
				u0, u1 := w0[c], w1[c]
				v0, v1, v2, v3 := x0[c], x1[c], x2[c], x3[c]
				a00 += v0 * u0
				a01 += v0 * u1
				a10 += v1 * u0
				a11 += v1 * u1
				a20 += v2 * u0
				a21 += v2 * u1
				a30 += v3 * u0
				a31 += v3 * u1
			}
			y[t*rows+r], y[t*rows+r+1] = a00, a01
			y[(t+1)*rows+r], y[(t+1)*rows+r+1] = a10, a11
			y[(t+2)*rows+r], y[(t+2)*rows+r+1] = a20, a21
			y[(t+3)*rows+r], y[(t+3)*rows+r+1] = a30, a31
		}
		for ; r < r1; r++ {
			for tt := t; tt < t+4; tt++ {
				y[tt*rows+r] = dotSeq(x[tt*cols:tt*cols+cols], w[r*cols:r*cols+cols])
			}
		}
	}
	for ; t < t1; t++ {
		xt := x[t*cols : t*cols+cols]
		for r := r0; r < r1; r++ {
			y[t*rows+r] = dotSeq(xt, w[r*cols:r*cols+cols])
		}
	}
}

func dotSeq(a, b []float32) float32 {
	b = b[:len(a)]
	var s float32
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

// convertRowsF16 converts rows [r0,r1) of the fp16 matrix w (cols wide) into dst (row r0 first).
func convertRowsF16(dst []float32, w []uint16, cols, r0, r1 int) {
	t := f16Table()
	src := w[r0*cols : r1*cols]
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = t[h]
	}
}

// gemmF32StridedGeneric computes y[t*ys+r] = Σ_{c<cols} x[t*xs+c]*w[r*ws+c], each element one
// sequential sum.
func gemmF32StridedGeneric(y []float32, ys int, x []float32, xs int, w []float32, ws, n, rows, cols int) {
	for t := range n {
		xt := x[t*xs : t*xs+cols]
		yt := y[t*ys : t*ys+rows]
		for r := range yt {
			yt[r] = dotSeq(xt, w[r*ws:r*ws+cols])
		}
	}
}

// expf32 is e^x in float32 with Cephes' expf polynomial (about 1 ulp), the function the SIMD
// kernels compute lane-wise (they fuse the multiply-adds, so they may differ in the last bit).
func expf32(x float32) float32 {
	x = min(max(x, -87.33), 88.02)
	n := float32(math.RoundToEven(float64(x * 1.44269504088896341)))
	r := x - n*0.693359375
	r -= n * -2.12194440e-4
	y := float32(1.9875691500e-4)
	y = y*r + 1.3981999507e-3
	y = y*r + 8.3334519073e-3
	y = y*r + 4.1665795894e-2
	y = y*r + 1.6666665459e-1
	y = y*r + 5.0000001201e-1
	y = y*(r*r) + r + 1
	return y * math.Float32frombits(uint32(int32(n)+127)<<23)
}

func siluMulGeneric(g, u []float32) {
	u = u[:len(g)]
	for i, v := range g {
		g[i] = v / (1 + expf32(-v)) * u[i]
	}
}

func expSubGeneric(x []float32, sc, m float32) float32 {
	var sum float32
	for i, v := range x {
		e := expf32(v*sc - m)
		x[i] = e
		sum += e
	}
	return sum
}

func maxF32Generic(x []float32) float32 {
	m := x[0]
	for _, v := range x[1:] {
		if v > m {
			m = v
		}
	}
	return m
}

func scaleF32Generic(x []float32, a float32) {
	for i := range x {
		x[i] *= a
	}
}
