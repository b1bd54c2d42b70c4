package sparse

import (
	"fmt"
	"math"
	"sync"

	"github.com/qsparse/qsparse/internal/hugepage"
)

// TernaryQ8 is a ternary matrix W[r][c] = t[r][c]·scale for the int8-activation sparse GEMV
// (SparseGemvTernaryQ8), stored as 2-bit codes (code = t + 1: 0, 1, 2, as in HF BitNet
// checkpoints), column-major: column c is the ColBytes() = 64·⌈Rows/256⌉ bytes
// Codes[c*ColBytes():], one 64-byte line per strip of 256 rows; row s*256+R is bit pair
// q8Pos[R]&3 of byte 64s + q8Pos[R]>>2. Padding rows have code 1 (t = 0).
//
// 2-bit codes rather than TernaryCols' bit planes, chosen by measurement (see
// /work/notes/kernels-bench.md and sparse/doc.go): both cost 2 bits per weight, but the int8
// kernel multiplies with VPDPBUSD, which wants, for every output row, the weights of 4
// columns as 4 bytes of one dword. From codes that is 4 loads, a bytewise 4×4 transpose (8
// unpacks) and one AND per 16 rows × 4 columns: 64 weights per VPDPBUSD. Bit planes would
// need the planes expanded to bytes (VPMOVM2B per plane) before the same transpose.
//
// Whole columns rather than row strips (column c of strip s at (s*Cols+c)*64, the first
// version): with strips, a token's active columns are scattered 64-byte lines at ~50 %
// density, which the memory system fetches nearly whole (adjacent-line and stream
// prefetchers), so a call from DRAM cost as much as the dense pack; column-major, every active
// column is one sequential run (1 KiB at 4096 rows) and inactive ones are skipped. Measured
// (4096x11008 at 50 %, data not in cache): see /work/notes/kernels-bench.md.
type TernaryQ8 struct {
	Rows, Cols int
	Codes      []byte
	Scale      []float32 // 1 (per tensor) or Cols (per column) scales
}

// TernaryQ8MaxCols bounds Cols so the int32 sums cannot overflow (the kernel accumulates
// code·4^s·q, at most 2·64·127 per column).
const TernaryQ8MaxCols = 1 << 17

const q8Strip = 256

// q8Pos[R] = byte<<2 | bit pair of row R of a 256-row strip column. The kernel's bytewise
// transpose leaves, in transposed register a, dword 4q+j = byte 16q+4a+j of the 4 columns, and
// its accumulator 4a+s sums bit pair s of it; accumulators are stored in order, 16 rows each.
var q8Pos = func() (p [q8Strip]uint16) {
	for R := 0; R < q8Strip; R++ {
		n, d := R/16, R%16
		a, s := n/4, n%4
		q, j := d/4, d%4
		p[R] = uint16((16*q+4*a+j)<<2 | s)
	}
	return p
}()

func q8Strips(rows int) int { return (rows + q8Strip - 1) / q8Strip }

// ColBytes returns the bytes of one column (64 per 256 rows).
func (p *TernaryQ8) ColBytes() int { return q8Strips(p.Rows) * 64 }

// byteOf returns the index in Codes of the byte holding row r of column c, and its shift.
func (p *TernaryQ8) byteOf(r, c int) (int, uint) {
	pos := q8Pos[r%q8Strip]
	return c*p.ColBytes() + r/q8Strip*64 + int(pos>>2), uint(2 * (pos & 3))
}

// PackTernaryQ8 packs the row-major ternary matrix t (rows×cols, values -1, 0, +1) with
// scale (len 1: per tensor; len cols: per column).
func PackTernaryQ8(t []int8, scale []float32, rows, cols int) (*TernaryQ8, error) {
	if rows < 0 || cols < 0 || len(t) != rows*cols {
		return nil, fmt.Errorf("sparse: PackTernaryQ8: %d values for a %d×%d matrix; pass the whole row-major matrix", len(t), rows, cols)
	}
	if len(scale) != 1 && len(scale) != cols {
		return nil, fmt.Errorf("sparse: PackTernaryQ8: %d scales for %d columns; pass 1 (per tensor) or one per column", len(scale), cols)
	}
	if cols > TernaryQ8MaxCols {
		return nil, fmt.Errorf("sparse: PackTernaryQ8: %d columns, at most %d fit the kernel's int32 sums; use PackTernary (float kernel)", cols, TernaryQ8MaxCols)
	}
	p := &TernaryQ8{Rows: rows, Cols: cols, Scale: append([]float32(nil), scale...)}
	p.Codes = hugepage.Bytes(q8Strips(rows) * 64 * cols)
	for i := range p.Codes {
		p.Codes[i] = 0x55 // code 1 (t = 0) in every bit pair
	}
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			v := t[r*cols+c]
			if v < -1 || v > 1 {
				return nil, fmt.Errorf("sparse: PackTernaryQ8: value %d at row %d column %d is not -1, 0 or +1", v, r, c)
			}
			bi, sh := p.byteOf(r, c)
			b := &p.Codes[bi]
			*b = *b&^(3<<sh) | byte(v+1)<<sh
		}
	}
	return p, nil
}

// TernaryQ8FromCols repacks a bit-plane TernaryCols as a TernaryQ8 (same trits and scales).
func TernaryQ8FromCols(w *TernaryCols) (*TernaryQ8, error) {
	w.validate("TernaryQ8FromCols")
	t := make([]int8, w.Rows*w.Cols)
	for c := 0; c < w.Cols; c++ {
		for r := 0; r < w.Rows; r++ {
			t[r*w.Cols+c] = int8(w.Trit(r, c))
		}
	}
	return PackTernaryQ8(t, w.Scale, w.Rows, w.Cols)
}

// Trit returns t[r][c] in {-1, 0, +1}.
func (p *TernaryQ8) Trit(r, c int) int {
	bi, sh := p.byteOf(r, c)
	return int(p.Codes[bi]>>sh&3) - 1
}

// Bytes returns the size of the pack's weight data (codes and scales).
func (p *TernaryQ8) Bytes() int64 { return int64(len(p.Codes)) + int64(len(p.Scale))*4 }

func (p *TernaryQ8) validate(name string) {
	if p.Rows < 0 || p.Cols < 0 || p.Cols > TernaryQ8MaxCols || len(p.Codes) < q8Strips(p.Rows)*64*p.Cols || (len(p.Scale) != 1 && len(p.Scale) != p.Cols) {
		panic(fmt.Sprintf("sparse.%s: malformed TernaryQ8 (rows %d cols %d, %d code bytes, %d scales); build it with PackTernaryQ8", name, p.Rows, p.Cols, len(p.Codes), len(p.Scale)))
	}
}

// QuantizeQ8 quantizes v to int8 with BitNet b1.58's per-token absmax rule and returns the
// multiplier that undoes it: sx = 127 / max(max|v|, 1e-5), q = clamp(roundEven(float32(v·sx)),
// -127, 127), and 1/sx is returned. NaN inputs are ignored for the maximum and quantize to 0.
func QuantizeQ8(q []int8, v []float32) float32 {
	q = q[:len(v)]
	var amax float32
	for _, a := range v {
		if b := math.Float32frombits(math.Float32bits(a) &^ (1 << 31)); b > amax {
			amax = b
		}
	}
	amax = max(amax, 1e-5)
	sx := 127 / amax
	const magic = 12582912 // 1.5·2^23: adding and subtracting it rounds |f| < 2^22 to the nearest even integer
	for i, a := range v {
		f := float32(a * sx) // the conversion keeps the product rounded (no fused multiply-add)
		r := float32(f+magic) - magic
		if r != r {
			r = 0
		}
		q[i] = int8(max(-127, min(127, r)))
	}
	return amax / 127
}

// q8Job holds one call's quantized activations and partial sums.
type q8Job struct {
	y      []float32
	w      *TernaryQ8
	idx4   []int32 // active columns, padded to an even number of groups of 4, plus 2 groups
	qx     []int32 // packed int8 activations, one dword per group
	sumq   int32
	mul    float32
	vals   []float32
	q      []int8
	part   []int32 // two column halves × padded rows, scaled sums
	chunk  int     // strips per row chunk
	nchunk int
	gseg   [q8Segs + 1]int // group bounds of the column segments
	run    func(i int)     // = do, bound once
	cols   func(acc []int32, nstrips int, codes []byte, colBytes int, idx4, qx []int32)
}

func newQ8Job() *q8Job {
	j := &q8Job{}
	j.run = j.do
	return j
}

// TernaryQ8Scratch holds the buffers of one SparseGemvTernaryQ8 call at a time: reused, its
// calls allocate nothing once the buffers have grown to the largest matrix. Its zero value is
// ready; it must not be used by two goroutines at once.
type TernaryQ8Scratch struct{ j *q8Job }

// SparseGemvTernaryQ8 is sparse.SparseGemvTernaryQ8 with this scratch's buffers.
func (s *TernaryQ8Scratch) SparseGemvTernaryQ8(y []float32, w *TernaryQ8, x []float32, idx []int32) {
	w.validate("SparseGemvTernaryQ8")
	checkSparse("SparseGemvTernaryQ8", len(y), w.Rows, len(x), w.Cols)
	checkIdx("SparseGemvTernaryQ8", idx, w.Cols)
	if s.j == nil {
		s.j = newQ8Job()
	}
	j := s.j
	n := j.prepare(y, w, x, idx)
	for i := 0; i < n; i++ {
		j.do(i)
	}
	j.finish()
}

var q8Scratches = sync.Pool{New: func() any { return new(TernaryQ8Scratch) }}

// q8Segs: the active columns are cut in 4 segments (one work item per segment and row chunk)
// so a thread that starts late still finds work; the int32 partial sums add exactly.
const q8Segs = 4

// q8ChunkStrips bounds a work item's rows (16 strips = 4096 rows: 16 KiB of int32 sums, in
// L1 while the columns stream through).
const q8ChunkStrips = 16

func (j *q8Job) prepare(y []float32, w *TernaryQ8, x []float32, idx []int32) int {
	j.y, j.w = y, w
	n := len(idx)
	ng := (n + 7) / 8 * 2 // even
	j.vals = grow(j.vals, n)
	for i, c := range idx {
		v := x[c]
		if len(w.Scale) != 1 {
			v *= w.Scale[c]
		}
		j.vals[i] = v
	}
	j.q = grow(j.q, n)
	inv := QuantizeQ8(j.q, j.vals)
	if len(w.Scale) == 1 {
		j.mul = w.Scale[0] * inv
	} else {
		j.mul = inv
	}
	j.idx4 = grow(j.idx4, 4*(ng+2*q8PFPairs))
	copy(j.idx4, idx)
	clear(j.idx4[n:]) // padding columns: column 0 with activation 0
	j.qx = grow(j.qx, ng)
	clear(j.qx)
	j.sumq = 0
	for i, q := range j.q {
		j.qx[i/4] |= int32(uint32(uint8(q)) << (8 * (i % 4)))
		j.sumq += int32(q)
	}
	for k := range j.gseg {
		j.gseg[k] = ng * k / q8Segs &^ 1 // even: the AVX-512 kernel takes pairs of groups
	}
	ns := q8Strips(w.Rows)
	j.chunk = min(ns, q8ChunkStrips)
	j.nchunk = 0
	if ns > 0 {
		j.nchunk = (ns + j.chunk - 1) / j.chunk
	}
	j.part = grow(j.part, q8Segs*ns*q8Strip)
	j.cols = kern.ternaryQ8Cols
	return q8Segs * j.nchunk
}

// do computes item i: column segment i%q8Segs of row chunk i/q8Segs, into part.
func (j *q8Job) do(i int) {
	w := j.w
	ns := q8Strips(w.Rows)
	s0 := i / q8Segs * j.chunk
	nst := min(j.chunk, ns-s0)
	g0, g1 := j.gseg[i%q8Segs], j.gseg[i%q8Segs+1]
	acc := j.part[(i%q8Segs)*ns*q8Strip:][s0*q8Strip : (s0+nst)*q8Strip]
	clear(acc)
	if g1 > g0 && w.Cols > 0 {
		j.cols(acc, nst, w.Codes[s0*64:], w.ColBytes(), j.idx4[4*g0:], j.qx[g0:g1])
	}
}

// finish sets y[r] = (Σ q·code - Σ q)·mul, since Σ q·(t+1) - Σ q = Σ q·t; the halves' sums
// are added and unscaled (the kernels leave row r's sum times 4^(r/16%4)).
func (j *q8Job) finish() {
	w := j.w
	ns := q8Strips(w.Rows)
	p0, p1 := j.part[:w.Rows], j.part[ns*q8Strip:][:w.Rows]
	p2, p3 := j.part[2*ns*q8Strip:][:w.Rows], j.part[3*ns*q8Strip:][:w.Rows]
	y := j.y[:w.Rows]
	sumq, mul := j.sumq, j.mul
	for r0 := 0; r0 < len(y); r0 += 16 { // rows r0..r0+15 share the scale 4^(r0/16%4)
		r1 := min(r0+16, len(y))
		sh := uint(2 * (r0 / 16 % 4))
		y, p0, p1, p2, p3 := y[r0:r1], p0[r0:r1], p1[r0:r1], p2[r0:r1], p3[r0:r1]
		for r := range y {
			y[r] = float32((p0[r]+p1[r]+p2[r]+p3[r])>>sh-sumq) * mul
		}
	}
	j.y, j.w = nil, nil
}

// ternaryQ8ColsGeneric is the pure-Go twin of the column kernels: acc[r] += Σ_g Σ_k
// q(g,k)·code(r, idx4[4g+k])·4^(r/16%4) in int32 over the nstrips·256 rows of a chunk (codes
// starts at the chunk's first line of column 0), the same integers as the SIMD kernels.
func ternaryQ8ColsGeneric(acc []int32, nstrips int, codes []byte, colBytes int, idx4, qx []int32) {
	acc = acc[:nstrips*q8Strip]
	for g, qq := range qx {
		for k := 0; k < 4; k++ {
			q := int32(int8(qq >> (8 * k)))
			if q == 0 {
				continue
			}
			col := codes[int(idx4[4*g+k])*colBytes:][:nstrips*64]
			for r := range acc {
				pos := q8Pos[r%q8Strip]
				sh := 2 * (pos & 3)
				acc[r] += q * int32(col[r/q8Strip*64+int(pos>>2)]>>sh&3) << sh
			}
		}
	}
}

// SparseGemvTernaryQ8 is the int8-activation variant of SparseGemvTernary, BitNet b1.58's
// arithmetic: the active inputs v_j = x[idx[j]] (times the column scale for per-column packs)
// are quantized per call with QuantizeQ8 (absmax to int8), the products with the trits are
// summed exactly in int32, and y[r] = float32(Σ_j q_j·t[r][idx[j]]) · scale/sx. Every backend
// gives bit-identical results (integer sums; the same float32 epilogue). The results differ
// from SparseGemvTernary by the activation rounding (relative error up to ~1/254 of max|v| per
// input); use SparseGemvTernary for exact float32 activations.
//
// Its buffers come from a sync.Pool, which the garbage collector may empty: a caller that must
// not allocate keeps a TernaryQ8Scratch per goroutine instead.
func SparseGemvTernaryQ8(y []float32, w *TernaryQ8, x []float32, idx []int32) {
	s := q8Scratches.Get().(*TernaryQ8Scratch)
	s.SparseGemvTernaryQ8(y, w, x, idx)
	q8Scratches.Put(s)
}

// SparseGemvTernaryQ8 is SparseGemvTernaryQ8 with row chunks of ≤ 4096 rows × four segments of
// the active columns split across the pool's threads (bit-identical for any thread count:
// integer sums).
func (p *Pool) SparseGemvTernaryQ8(y []float32, w *TernaryQ8, x []float32, idx []int32) {
	w.validate("Pool.SparseGemvTernaryQ8")
	checkSparse("Pool.SparseGemvTernaryQ8", len(y), w.Rows, len(x), w.Cols)
	checkIdx("Pool.SparseGemvTernaryQ8", idx, w.Cols)
	p.mu.Lock()
	defer p.mu.Unlock()
	j := p.q8job(0)
	p.runLocked(j.prepare(y, w, x, idx), j.run)
	j.finish()
}

// q8job returns the pool's m-th ternary job (its buffers are kept for the next call). p.mu
// must be held.
func (p *Pool) q8job(m int) *q8Job {
	if p.q8[m] == nil {
		p.q8[m] = newQ8Job()
	}
	return p.q8[m]
}

// q8Multi is one pool job over several TernaryQ8 matrices sharing an input and an index set:
// matrix m's items are [start[m], start[m+1]) of the job.
type q8Multi struct {
	jobs  [maxFused]*q8Job
	start [maxFused + 1]int
	run   func(i int) // = do, bound once
}

func (mm *q8Multi) do(i int) {
	k := 0
	for i >= mm.start[k+1] {
		k++
	}
	mm.jobs[k].do(i - mm.start[k])
}

// SparseGemvTernaryQ8Multi runs SparseGemvTernaryQ8 for several matrices that share one input
// and one set of active channels (q/k/v, or gate/up) as one parallel job, so a site costs one
// dispatch instead of one per matrix. Each matrix's activations are quantized as in its own
// call: the results are bit-identical to separate calls. len(ws) ≤ 8, all ws have the same
// Cols.
func (p *Pool) SparseGemvTernaryQ8Multi(ys [][]float32, ws []*TernaryQ8, x []float32, idx []int32) {
	if len(ws) > maxFused || len(ys) != len(ws) {
		panic(fmt.Sprintf("sparse.Pool.SparseGemvTernaryQ8Multi: %d outputs for %d matrices (at most %d)", len(ys), len(ws), maxFused))
	}
	if len(ws) == 0 {
		return
	}
	cols := ws[0].Cols
	for m, w := range ws {
		w.validate("Pool.SparseGemvTernaryQ8Multi")
		if w.Cols != cols {
			panic(fmt.Sprintf("sparse.Pool.SparseGemvTernaryQ8Multi: matrix %d has %d columns, matrix 0 has %d", m, w.Cols, cols))
		}
		checkSparse("Pool.SparseGemvTernaryQ8Multi", len(ys[m]), w.Rows, len(x), w.Cols)
	}
	checkIdx("Pool.SparseGemvTernaryQ8Multi", idx, cols)
	p.mu.Lock()
	defer p.mu.Unlock()
	mm := &p.q8m
	if mm.run == nil {
		mm.run = mm.do
	}
	for m, w := range ws {
		j := p.q8job(m)
		mm.jobs[m] = j
		mm.start[m+1] = mm.start[m] + j.prepare(ys[m], w, x, idx)
	}
	p.runLocked(mm.start[len(ws)], mm.run)
	for m := range ws {
		mm.jobs[m].finish()
		mm.jobs[m] = nil
	}
}
