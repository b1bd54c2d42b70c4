package sparse

import "fmt"

func checkGemv(name string, ny, nw, nx, rows, cols int) {
	if rows < 0 || cols < 0 || ny < rows || nx < cols || nw < rows*cols {
		panic(fmt.Sprintf("sparse.%s: bad sizes: len(y)=%d len(w)=%d len(x)=%d rows=%d cols=%d", name, ny, nw, nx, rows, cols))
	}
}

func checkGemm(name string, ny, nx, nw, n, rows, cols int) {
	if n < 0 || rows < 0 || cols < 0 || ny < n*rows || nx < n*cols || nw < rows*cols {
		panic(fmt.Sprintf("sparse.%s: bad sizes: len(y)=%d len(x)=%d len(w)=%d n=%d rows=%d cols=%d", name, ny, nx, nw, n, rows, cols))
	}
}

// GemvF32 computes y[r] = Σ_c w[r*cols+c]*x[c] for r < rows on the calling goroutine.
// w is row-major rows×cols. It panics if a slice is too short.
func GemvF32(y, w, x []float32, rows, cols int) {
	checkGemv("GemvF32", len(y), len(w), len(x), rows, cols)
	if rows == 0 {
		return
	}
	kern.gemvF32(y, w, x, cols, 0, rows)
}

// GemvF16 is GemvF32 with w given as IEEE fp16 bits.
func GemvF16(y []float32, w []uint16, x []float32, rows, cols int) {
	checkGemv("GemvF16", len(y), len(w), len(x), rows, cols)
	if rows == 0 {
		return
	}
	kern.gemvF16(y, w, x, cols, 0, rows)
}

// GemmF32 computes y[t*rows+r] = Σ_c x[t*cols+c]*w[r*cols+c] for n tokens (x is n×cols, w is
// rows×cols, y is n×rows, all row-major) on the calling goroutine.
func GemmF32(y, x, w []float32, n, rows, cols int) {
	checkGemm("GemmF32", len(y), len(x), len(w), n, rows, cols)
	var g gemmJob
	g.init(y, x, w, nil, n, rows, cols)
	var scratch []float32
	if m := kern.gemmScratch(false, g.rowChunk, cols); m > 0 {
		scratch = make([]float32, m)
	}
	for i := 0; i < g.items; i++ {
		g.do(i, scratch)
	}
}

// GemmF16 is GemmF32 with w given as IEEE fp16 bits.
func GemmF16(y []float32, x []float32, w []uint16, n, rows, cols int) {
	checkGemm("GemmF16", len(y), len(x), len(w), n, rows, cols)
	var g gemmJob
	g.init(y, x, nil, w, n, rows, cols)
	var scratch []float32
	if m := kern.gemmScratch(true, g.rowChunk, cols); m > 0 {
		scratch = make([]float32, m)
	}
	for i := 0; i < g.items; i++ {
		g.do(i, scratch)
	}
}

// GemmF32Strided computes y[t*ys+r] = Σ_{c<cols} x[t*xs+c]*w[r*ws+c] for t < n and r < rows
// on the calling goroutine: a GEMM over strided views, such as the queries of one attention
// head against the rows of a KV cache. Each element is one dot product of its two length-cols
// vectors computed the same way whatever n, rows and the position of the element are, so a
// row of y does not depend on which other rows are computed with it. It panics if a slice is
// too short.
func GemmF32Strided(y []float32, ys int, x []float32, xs int, w []float32, ws int, n, rows, cols int) {
	if n < 0 || rows < 0 || cols < 0 {
		panic(fmt.Sprintf("sparse.GemmF32Strided: bad sizes n=%d rows=%d cols=%d", n, rows, cols))
	}
	if n == 0 || rows == 0 {
		return
	}
	if ys < rows && n > 1 || xs < cols && n > 1 || ws < cols && rows > 1 ||
		len(y) < (n-1)*ys+rows || len(x) < (n-1)*xs+cols || len(w) < (rows-1)*ws+cols {
		panic(fmt.Sprintf("sparse.GemmF32Strided: bad sizes: len(y)=%d ys=%d len(x)=%d xs=%d len(w)=%d ws=%d n=%d rows=%d cols=%d",
			len(y), ys, len(x), xs, len(w), ws, n, rows, cols))
	}
	kern.gemmF32Strided(y, ys, x, xs, w, ws, n, rows, cols)
}

// SiLUMul sets g[i] = SiLU(g[i])·u[i] = g[i] / (1 + e^(-g[i])) · u[i] (SwiGLU), with a float32
// e^x accurate to about 1 ulp (Cephes' expf, vectorised on amd64). It panics if len(u) < len(g).
func SiLUMul(g, u []float32) {
	kern.siluMul(g, u[:len(g)])
}

// Softmax sets x[i] = e^(x[i]·scale - m) / Σ_j e^(x[j]·scale - m), m = max_j x[j]·scale, for a
// positive scale (the scaled logits x·scale are rounded to float32 first; e^x as in SiLUMul). The
// sum is accumulated in a fixed order that depends only on len(x). x holds no NaN.
func Softmax(x []float32, scale float32) {
	if len(x) == 0 {
		return
	}
	m := kern.maxF32(x) * scale // = max of the rounded x[i]*scale: rounding is monotonic
	kern.scaleF32(x, 1/kern.expSub(x, scale, m))
}

// GEMM blocking. Work is cut into items of rowChunk output rows × tokChunk tokens. rowChunk
// depends only on cols (so the W block stays in L2) and is a multiple of 48 (every register
// tile height and the 16-row packed strips divide it); tokChunk (the backend's gemmTokens, or
// 64) is a multiple of 4 (every dot-form tile width divides it). Item boundaries never depend
// on the thread count, so neither do the results.
func gemmTokChunk() int {
	if kern.gemmTokens > 0 {
		return kern.gemmTokens
	}
	return 64
}

func gemmRowChunk(cols int) int {
	const budget = 192 << 10 // bytes of fp16 weights per block
	rc := budget / (2 * max(cols, 1))
	rc = rc / 48 * 48
	return min(max(rc, 48), 240)
}

type gemmJob struct {
	y, x, w            []float32
	w16                []uint16
	n, rows, cols      int
	rowChunk, rowItems int
	tokChunk           int
	items              int
}

func (g *gemmJob) init(y, x, w []float32, w16 []uint16, n, rows, cols int) {
	*g = gemmJob{y: y, x: x, w: w, w16: w16, n: n, rows: rows, cols: cols}
	g.rowChunk = gemmRowChunk(cols)
	g.tokChunk = gemmTokChunk()
	if n == 0 || rows == 0 {
		return
	}
	g.rowItems = (rows + g.rowChunk - 1) / g.rowChunk
	g.items = g.rowItems * ((n + g.tokChunk - 1) / g.tokChunk)
}

// do runs item i. Items are ordered token-chunk major, so consecutive items share x.
func (g *gemmJob) do(i int, scratch []float32) {
	ri, ti := i%g.rowItems, i/g.rowItems
	r0 := ri * g.rowChunk
	r1 := min(r0+g.rowChunk, g.rows)
	t0 := ti * g.tokChunk
	t1 := min(t0+g.tokChunk, g.n)
	if g.w16 != nil {
		kern.gemmF16Block(g.y, g.x, g.w16, g.rows, g.cols, t0, t1, r0, r1, scratch)
	} else {
		kern.gemmF32Block(g.y, g.x, g.w, g.rows, g.cols, t0, t1, r0, r1, scratch)
	}
}
