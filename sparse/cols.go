package sparse

import "fmt"

// GEMM on a column-major fp16 pack (prefill on the weights that decode reads column-major):
// y[t*Rows+r] = Σ_c x[t*Cols+c]·W[r][c]. A work item is a block of gemmRowChunk rows × up to
// colsTokGroup tokens: the item first transposes its rows of the pack into a row-major fp16
// scratch block (≈192 KiB, in L2), then runs the row-major GEMM block kernel on it for each
// 64-token chunk, so the transposition (~2 % of the time) is paid once per 128 tokens of a
// block; 256 made items too big to balance two threads on a busy machine. The block kernels
// compute every element as the same dot product whatever the tile, so the results equal
// GemmF16 on the row-major matrix bit for bit, for any thread count.

// colsTokGroup is the most tokens one item runs on its transposed block (a multiple of the
// backend's GEMM token chunk, gemmTokChunk).
func colsTokGroup() int { return 2 * gemmTokChunk() }

type gemmColsJob struct {
	y, x                         []float32
	w                            *F16Cols
	row0, rows                   int // rows [row0, row0+rows) of the pack
	n                            int
	rowChunk, rowItems, tokItems int
	w16                          [][]uint16 // per thread: rowChunk×Cols transposed block
	f32                          [][]float32
}

func (g *gemmColsJob) init(y, x []float32, w *F16Cols, row0, rows, n int) {
	g.y, g.x, g.w, g.row0, g.rows, g.n = y, x, w, row0, rows, n
	g.rowChunk = gemmRowChunk(w.Cols)
	g.rowItems = (rows + g.rowChunk - 1) / g.rowChunk
	g.tokItems = (n + colsTokGroup() - 1) / colsTokGroup()
}

func (g *gemmColsJob) items() int { return g.rowItems * g.tokItems }

// transposeCols writes rows [r0, r1) of w as a row-major block dst[(r-r0)*Cols+c].
func transposeCols(dst []uint16, w *F16Cols, r0, r1 int) {
	cols, nr := w.Cols, r1-r0
	dst = dst[:nr*cols]
	// 8 columns at a time: each source run is read sequentially, 8 destination values of a
	// row are written together.
	c := 0
	for ; c+8 <= cols; c += 8 {
		s0 := w.Data[c*w.Stride+r0 : c*w.Stride+r1]
		s1 := w.Data[(c+1)*w.Stride+r0 : (c+1)*w.Stride+r1]
		s2 := w.Data[(c+2)*w.Stride+r0 : (c+2)*w.Stride+r1]
		s3 := w.Data[(c+3)*w.Stride+r0 : (c+3)*w.Stride+r1]
		s4 := w.Data[(c+4)*w.Stride+r0 : (c+4)*w.Stride+r1]
		s5 := w.Data[(c+5)*w.Stride+r0 : (c+5)*w.Stride+r1]
		s6 := w.Data[(c+6)*w.Stride+r0 : (c+6)*w.Stride+r1]
		s7 := w.Data[(c+7)*w.Stride+r0 : (c+7)*w.Stride+r1]
		for i := range nr {
			d := dst[i*cols+c : i*cols+c+8]
			d[0], d[1], d[2], d[3] = s0[i], s1[i], s2[i], s3[i]
			d[4], d[5], d[6], d[7] = s4[i], s5[i], s6[i], s7[i]
		}
	}
	for ; c < cols; c++ {
		s := w.Data[c*w.Stride+r0 : c*w.Stride+r1]
		for i, v := range s {
			dst[i*cols+c] = v
		}
	}
}

func (g *gemmColsJob) do(i, id int) {
	ri, ti := i%g.rowItems, i/g.rowItems
	r0 := ri * g.rowChunk
	r1 := min(r0+g.rowChunk, g.rows)
	cols := g.w.Cols
	blk := g.w16[id][:(r1-r0)*cols]
	transposeCols(blk, g.w, g.row0+r0, g.row0+r1)
	group, chunk := colsTokGroup(), gemmTokChunk()
	t1 := min((ti+1)*group, g.n)
	for t0 := ti * group; t0 < t1; t0 += chunk {
		kern.gemmF16Block(g.y[r0:], g.x, blk, g.rows, cols, t0, min(t0+chunk, t1), 0, r1-r0, g.f32[id])
	}
}

func checkCols(name string, w *F16Cols, row0, rows int) {
	w.validate(name)
	if row0 < 0 || rows < 0 || row0+rows > w.Rows {
		panic(fmt.Sprintf("sparse.%s: rows [%d, %d) outside the pack's %d rows", name, row0, row0+rows, w.Rows))
	}
}

// GemmF16Cols computes y[t*rows+r] = Σ_c x[t*w.Cols+c]·W[row0+r][c] for t < n and r < rows on
// the calling goroutine: GemmF16 over rows [row0, row0+rows) of a column-major pack (results
// equal GemmF16 on the row-major matrix). It panics if a slice is too short.
func GemmF16Cols(y, x []float32, w *F16Cols, row0, rows, n int) {
	checkCols("GemmF16Cols", w, row0, rows)
	checkGemm("GemmF16Cols", len(y), len(x), rows*w.Cols, n, rows, w.Cols)
	var g gemmColsJob
	g.init(y, x, w, row0, rows, n)
	g.w16 = [][]uint16{make([]uint16, g.rowChunk*w.Cols)}
	g.f32 = [][]float32{make([]float32, kern.gemmScratch(true, g.rowChunk, w.Cols))}
	for i := range g.items() {
		g.do(i, 0)
	}
}

// GemmF16Cols is GemmF16Cols split over the pool's threads (blocks of rows × tokens).
func (p *Pool) GemmF16Cols(y, x []float32, w *F16Cols, row0, rows, n int) {
	checkCols("Pool.GemmF16Cols", w, row0, rows)
	checkGemm("Pool.GemmF16Cols", len(y), len(x), rows*w.Cols, n, rows, w.Cols)
	if n == 0 || rows == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	g := &p.gc
	g.init(y, x, w, row0, rows, n)
	if len(g.w16) < p.threads {
		g.w16 = make([][]uint16, p.threads)
		g.f32 = make([][]float32, p.threads)
	}
	m16, m32 := g.rowChunk*w.Cols, kern.gemmScratch(true, g.rowChunk, w.Cols)
	for i := range p.threads {
		if len(g.w16[i]) < m16 {
			g.w16[i] = make([]uint16, m16)
		}
		if len(g.f32[i]) < m32 {
			g.f32[i] = make([]float32, m32)
		}
	}
	p.dispatch(jobGemmCols, g.items())
	g.y, g.x, g.w = nil, nil, nil
}
