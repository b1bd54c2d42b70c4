package sparse

import "fmt"

// Sparse GEMV over column-major packs: y[r] = Σ_j x[idx[j]] * W[r][idx[j]] for r < Rows.
// idx lists the active input channels (any order, usually ascending from TopK); each row's
// partial sums run over idx in order and are combined in a fixed order (see f16SegBounds and
// sparseTernaryRows), so the result does not depend on the thread count or on how rows are
// split. Inactive channels are never read.

// sparseF16Generic: acc[r] += x[idx[j]] * col(idx[j])[r] for r < len(acc); w starts at the
// chunk's first row of column 0.
func sparseF16Generic(acc []float32, w []uint16, stride int, idx []int32, x []float32) {
	t := f16Table()
	n := len(acc)
	for _, c := range idx {
		a := x[c]
		col := w[int(c)*stride : int(c)*stride+n]
		for r, h := range col {
			acc[r] += a * t[h]
		}
	}
}

// sparseTernaryGeneric: acc[r] += vals[j] where the plus bit is set, acc[n+r] += vals[j] where
// the minus bit is (n = len(acc)/2): the +1 and -1 sums are kept apart.
func sparseTernaryGeneric(acc []float32, planes []uint64, words, wordOff int, idx []int32, vals []float32) {
	n := len(acc) / 2
	nw := n / 64
	accM := acc[n:]
	for j, c := range idx {
		a := vals[j]
		base := int(c)*2*words + wordOff
		plus := planes[base : base+nw]
		minus := planes[base+words : base+words+nw]
		for q := 0; q < nw; q++ {
			p, m := plus[q], minus[q]
			if p|m == 0 {
				continue
			}
			blk := acc[q*64 : q*64+64]
			blkM := accM[q*64 : q*64+64]
			for b := 0; b < 64; b++ {
				if p>>b&1 != 0 {
					blk[b] += a
				} else if m>>b&1 != 0 {
					blkM[b] += a
				}
			}
		}
	}
}

func checkIdx(name string, idx []int32, cols int) {
	for _, c := range idx {
		if c < 0 || int(c) >= cols {
			panic(fmt.Sprintf("sparse.%s: active index %d out of range [0,%d)", name, c, cols))
		}
	}
}

func (p *F16Cols) validate(name string) {
	if p.Rows < 0 || p.Cols < 0 || p.Stride%PadRows != 0 || p.Stride < padRows(p.Rows) || len(p.Data) < p.Cols*p.Stride {
		panic(fmt.Sprintf("sparse.%s: malformed F16Cols (rows %d cols %d stride %d, %d values); build it with PackF16Cols", name, p.Rows, p.Cols, p.Stride, len(p.Data)))
	}
}

func (p *TernaryCols) validate(name string) {
	if p.Rows < 0 || p.Cols < 0 || p.Block <= 0 || p.Block%64 != 0 || len(p.Planes) < 2*p.Cols*padRows(p.Rows)/64 || (len(p.Scale) != 1 && len(p.Scale) != p.Cols) {
		panic(fmt.Sprintf("sparse.%s: malformed TernaryCols (rows %d cols %d block %d, %d plane words, %d scales); build it with PackTernary", name, p.Rows, p.Cols, p.Block, len(p.Planes), len(p.Scale)))
	}
}

func checkSparse(name string, ny, rows, nx, cols int) {
	if ny < rows || nx < cols {
		panic(fmt.Sprintf("sparse.%s: bad sizes: len(y)=%d rows=%d len(x)=%d cols=%d", name, ny, rows, nx, cols))
	}
}

// f16MaxChunk bounds the rows of an fp16 sparse work item (16 KiB of float32 sums, in L1).
const f16MaxChunk = 4096

// The fp16 sparse GEMV splits the active columns into two halves (f16SegBounds) and each row
// chunk into two work items, one per half, whose partial sums are added at the end:
// y = p0 + p1. Whole row chunks per item keep each column's run long (8 KiB at 4096 rows; row
// halves would give 4 KiB), which the memory system streams better. The split depends only on
// len(idx), so results do not depend on the thread count.
func f16SegBounds(nact int) [3]int {
	mid := (nact / 2) &^ 7
	return [3]int{0, mid, nact}
}

// sparseChunkRows: rows per fp16 work item (a multiple of 64, at most f16MaxChunk), so that
// the two halves × the row chunks give at least one item per thread.
func sparseChunkRows(rows, threads int) int {
	chunks := max(1, (threads+1)/2)
	c := (rows + chunks - 1) / chunks
	c = (c + 63) / 64 * 64
	return min(max(c, 64), f16MaxChunk)
}

// sparseF16Seg sets acc[:padRows(r1-r0)] to Σ_j x[idx[j]]·W[r][idx[j]] over rows [r0, r1).
func sparseF16Seg(acc []float32, w *F16Cols, idx []int32, x []float32, r0, r1 int) {
	acc = acc[:padRows(r1-r0)]
	clear(acc)
	if len(idx) > 0 {
		kern.sparseF16(acc, w.Data[r0:], w.Stride, idx, x)
	}
}

// addHalves sets y[i] = a[i] + b[i].
func addHalves(y, a, b []float32) {
	b = b[:len(a)]
	y = y[:len(a)]
	for i := range a {
		y[i] = a[i] + b[i]
	}
}

// ternaryItems returns how many work items split each row block (1 unless there are fewer
// blocks than threads) and the rows per item; items never straddle blocks.
func ternaryItems(w *TernaryCols, threads int) (perBlock, rows int) {
	nb := w.NumBlocks()
	perBlock = max(1, (threads+nb-1)/max(nb, 1))
	perBlock = max(perBlock, (min(w.Block, padRows(w.Rows))+ternaryMaxChunk-1)/ternaryMaxChunk)
	rows = (min(w.Block, padRows(w.Rows)) + perBlock - 1) / perBlock
	return perBlock, (rows + 63) / 64 * 64
}

// ternaryMaxChunk bounds the rows of a ternary work item: its plus and minus sums (8 bytes a
// row) must stay in L1 while the plane words stream through. Measured on 4096x11008 at 50 %
// (interleaved, 2 threads): 2048 rows 2.14 ms, 1024 rows 1.28 ms, 512 rows 1.65 ms.
const ternaryMaxChunk = 1024

// ternaryItemRows returns the rows [r0, r1) of item i.
func ternaryItemRows(w *TernaryCols, perBlock, rows, i int) (int, int) {
	b, sub := i/perBlock, i%perBlock
	r0 := b*w.Block + sub*rows
	r1 := min(r0+rows, (b+1)*w.Block, w.Rows)
	return r0, r1
}

// sparseTernaryRows: acc holds 2·chunk floats, the sums of the +1 and of the -1 entries;
// y = (plus - minus) · scale.
func sparseTernaryRows(y []float32, w *TernaryCols, idx []int32, vals, acc []float32, scale float32, r0, r1 int) {
	n := padRows(r1 - r0)
	acc = acc[:2*n]
	clear(acc)
	if len(idx) > 0 {
		b := r0 / w.Block
		kern.sparseTernary(acc, w.Planes[w.BlockStart(b):], w.BlockWords(b), (r0-b*w.Block)/64, idx, vals)
	}
	yr := y[r0:r1]
	plus, minus := acc[:len(yr)], acc[n:n+len(yr)]
	if scale != 1 {
		for i := range yr {
			yr[i] = (plus[i] - minus[i]) * scale
		}
		return
	}
	for i := range yr {
		yr[i] = plus[i] - minus[i]
	}
}

// ternaryVals fills vals with the per-channel multipliers and returns the scale applied at
// the end (per-tensor scale) or 1 (per-column scales folded into vals).
func ternaryVals(vals []float32, w *TernaryCols, x []float32, idx []int32) float32 {
	vals = vals[:len(idx)]
	if len(w.Scale) == 1 {
		for j, c := range idx {
			vals[j] = x[c]
		}
		return w.Scale[0]
	}
	for j, c := range idx {
		vals[j] = x[c] * w.Scale[c]
	}
	return 1
}

// SparseGemvF16 computes y[r] = Σ_j x[idx[j]]*W[r][idx[j]] for r < w.Rows on the calling
// goroutine, reading only the active columns. It panics on out-of-range indices or short
// slices.
func SparseGemvF16(y []float32, w *F16Cols, x []float32, idx []int32) {
	w.validate("SparseGemvF16")
	checkSparse("SparseGemvF16", len(y), w.Rows, len(x), w.Cols)
	checkIdx("SparseGemvF16", idx, w.Cols)
	sb := f16SegBounds(len(idx))
	a0 := make([]float32, min(f16MaxChunk, padRows(w.Rows)))
	a1 := make([]float32, len(a0))
	for r0 := 0; r0 < w.Rows; r0 += f16MaxChunk {
		r1 := min(r0+f16MaxChunk, w.Rows)
		sparseF16Seg(a0, w, idx[:sb[1]], x, r0, r1)
		sparseF16Seg(a1, w, idx[sb[1]:], x, r0, r1)
		addHalves(y[r0:r1], a0[:r1-r0], a1)
	}
}

// SparseGemvTernary is SparseGemvF16 over a ternary pack: y[r] = Σ_j x[idx[j]]*t[r][idx[j]]*scale,
// computed as (P - M)·scale where P sums (in idx order) the inputs whose weight is +1 and M
// those whose weight is -1; a per-column scale is folded into the inputs instead (scale 1).
func SparseGemvTernary(y []float32, w *TernaryCols, x []float32, idx []int32) {
	w.validate("SparseGemvTernary")
	checkSparse("SparseGemvTernary", len(y), w.Rows, len(x), w.Cols)
	checkIdx("SparseGemvTernary", idx, w.Cols)
	vals := make([]float32, len(idx))
	scale := ternaryVals(vals, w, x, idx)
	step := min(w.Block, ternaryMaxChunk)
	acc := make([]float32, 2*step)
	for b0 := 0; b0 < w.Rows; b0 += w.Block { // sub-chunks never straddle a block
		for r0 := b0; r0 < min(b0+w.Block, w.Rows); r0 += step {
			sparseTernaryRows(y, w, idx, vals, acc, scale, r0, min(r0+step, b0+w.Block, w.Rows))
		}
	}
}

// maxFused is the most matrices one fused call takes.
const maxFused = 8

// sparseJob is a pool job over several matrices sharing x and idx.
type sparseJob struct {
	ternary  bool
	nm       int
	f16      []*F16Cols
	tern     []*TernaryCols
	ys       [][]float32
	idx      []int32
	x        []float32           // fp16: the input, multipliers x[idx[j]]
	vals     [maxFused][]float32 // ternary: per-matrix multipliers
	scale    [maxFused]float32
	chunk    [maxFused]int
	perBlock [maxFused]int       // ternary: items per row block
	seg      [3]int              // fp16: bounds of the two halves of idx
	part     [maxFused][]float32 // fp16: the two halves' partial sums, 2 × padded rows each
	start    [maxFused + 1]int   // first item of each matrix
}

func (s *sparseJob) do(i int, acc []float32) {
	m := 0
	for i >= s.start[m+1] {
		m++
	}
	r0 := (i - s.start[m]) * s.chunk[m]
	if s.ternary {
		w := s.tern[m]
		r0, r1 := ternaryItemRows(w, s.perBlock[m], s.chunk[m], i-s.start[m])
		if r0 < r1 {
			sparseTernaryRows(s.ys[m], w, s.idx, s.vals[m], acc, s.scale[m], r0, r1)
		}
	} else {
		w := s.f16[m]
		j := i - s.start[m]
		seg := j & 1
		r0 = (j >> 1) * s.chunk[m]
		r1 := min(r0+s.chunk[m], w.Rows)
		lo, hi := s.seg[seg], s.seg[seg+1]
		part := s.part[m][seg*padRows(w.Rows):]
		sparseF16Seg(part[r0:], w, s.idx[lo:hi], s.x, r0, r1)
	}
}

// growScratch makes every thread's scratch hold n floats and the value buffers hold m.
func (p *Pool) growScratch(n int) {
	for i := range p.scratch {
		if cap(p.scratch[i]) < n {
			p.scratch[i] = make([]float32, n)
		}
		p.scratch[i] = p.scratch[i][:cap(p.scratch[i])]
	}
}

func (p *Pool) vals(m, n int) []float32 {
	p.valBuf[m] = grow(p.valBuf[m], n)
	return p.valBuf[m]
}

// SparseGemvF16 is SparseGemvF16 with output rows split across the pool's threads.
func (p *Pool) SparseGemvF16(y []float32, w *F16Cols, x []float32, idx []int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ys1[0], p.f161[0] = y, w
	p.sparseF16Multi(p.ys1[:], p.f161[:], x, idx)
	p.ys1[0], p.f161[0] = nil, nil
}

// SparseGemvF16Multi runs SparseGemvF16 for several matrices that share one input and one set
// of active channels (q/k/v, or gate/up), as one parallel job: the selection and the input are
// shared, and all matrices' row blocks are spread over the threads.
// len(ws) ≤ 8 and all ws have the same Cols.
func (p *Pool) SparseGemvF16Multi(ys [][]float32, ws []*F16Cols, x []float32, idx []int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sparseF16Multi(ys, ws, x, idx)
}

func (p *Pool) sparseF16Multi(ys [][]float32, ws []*F16Cols, x []float32, idx []int32) {
	if len(ws) > maxFused || len(ys) != len(ws) {
		panic(fmt.Sprintf("sparse.Pool.SparseGemvF16Multi: %d outputs for %d matrices (at most %d)", len(ys), len(ws), maxFused))
	}
	if len(ws) == 0 {
		return
	}
	cols := ws[0].Cols
	for m, w := range ws {
		if w.Cols != cols {
			panic(fmt.Sprintf("sparse.Pool.SparseGemvF16Multi: matrix %d has %d columns, matrix 0 has %d", m, w.Cols, cols))
		}
		w.validate("Pool.SparseGemvF16Multi")
		checkSparse("Pool.SparseGemvF16Multi", len(ys[m]), w.Rows, len(x), w.Cols)
	}
	checkIdx("Pool.SparseGemvF16Multi", idx, cols)
	s := &p.sp
	*s = sparseJob{nm: len(ws), f16: ws, ys: ys, idx: idx, x: x}
	s.seg = f16SegBounds(len(idx))
	total := 0
	for _, w := range ws {
		total += 2 * padRows(w.Rows)
	}
	if cap(p.partBuf) < total {
		p.partBuf = make([]float32, total)
	}
	off := 0
	for m, w := range ws {
		s.part[m] = p.partBuf[off : off+2*padRows(w.Rows)]
		off += 2 * padRows(w.Rows)
		s.chunk[m] = sparseChunkRows(w.Rows, p.threads)
		s.start[m+1] = s.start[m] + 2*((w.Rows+s.chunk[m]-1)/s.chunk[m])
	}
	if n := s.start[len(ws)]; n > 0 {
		p.dispatch(jobSparse, n)
	}
	for m, w := range ws {
		pr := padRows(w.Rows)
		addHalves(ys[m][:w.Rows], s.part[m][:w.Rows], s.part[m][pr:pr+w.Rows])
	}
	*s = sparseJob{}
}

// SparseGemvTernary is SparseGemvTernary with output rows split across the pool's threads.
func (p *Pool) SparseGemvTernary(y []float32, w *TernaryCols, x []float32, idx []int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ys1[0], p.tern1[0] = y, w
	p.sparseTernaryMulti(p.ys1[:], p.tern1[:], x, idx)
	p.ys1[0], p.tern1[0] = nil, nil
}

// SparseGemvTernaryMulti is SparseGemvF16Multi for ternary packs.
func (p *Pool) SparseGemvTernaryMulti(ys [][]float32, ws []*TernaryCols, x []float32, idx []int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sparseTernaryMulti(ys, ws, x, idx)
}

func (p *Pool) sparseTernaryMulti(ys [][]float32, ws []*TernaryCols, x []float32, idx []int32) {
	if len(ws) > maxFused || len(ys) != len(ws) {
		panic(fmt.Sprintf("sparse.Pool.SparseGemvTernaryMulti: %d outputs for %d matrices (at most %d)", len(ys), len(ws), maxFused))
	}
	if len(ws) == 0 {
		return
	}
	cols := ws[0].Cols
	for m, w := range ws {
		if w.Cols != cols {
			panic(fmt.Sprintf("sparse.Pool.SparseGemvTernaryMulti: matrix %d has %d columns, matrix 0 has %d", m, w.Cols, cols))
		}
		w.validate("Pool.SparseGemvTernaryMulti")
		checkSparse("Pool.SparseGemvTernaryMulti", len(ys[m]), w.Rows, len(x), w.Cols)
	}
	checkIdx("Pool.SparseGemvTernaryMulti", idx, cols)
	s := &p.sp
	*s = sparseJob{ternary: true, nm: len(ws), tern: ws, ys: ys, idx: idx}
	maxChunk := 0
	for m, w := range ws {
		s.vals[m] = p.vals(m, len(idx))
		s.scale[m] = ternaryVals(s.vals[m], w, x, idx)
		s.perBlock[m], s.chunk[m] = ternaryItems(w, p.threads)
		maxChunk = max(maxChunk, s.chunk[m])
		s.start[m+1] = s.start[m] + s.perBlock[m]*w.NumBlocks()
	}
	p.growScratch(2 * maxChunk)
	if n := s.start[len(ws)]; n > 0 {
		p.dispatch(jobSparse, n)
	}
	*s = sparseJob{}
}
