//go:build amd64 && !purego

package sparse

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

const archHasSIMD = true

type gemmTile[W uint16 | float32] func(y *float32, ystride int, x *float32, xstride int, w *W, wstride int, k int, acc int)
type gemmTileF16 = gemmTile[uint16]
type gemmTileF32 = gemmTile[float32]

// simd describes one amd64 backend; the kernel set is built from it.
type simd struct {
	name      string
	lanes     int
	tileT     int
	tileR     int
	f16       [][]gemmTileF16 // [t-1][r-1]
	f32       [][]gemmTileF32
	gemvRows  int                                                // rows per dense GEMV tile
	gemvF16   gemmTileF16                                        // 1 token × gemvRows rows
	gemvF32   gemmTileF32                                        // (also lone strided tokens: gemmF32Strided)
	seqF16    func(y, x *float32, w *uint16, cols, k, nrows int) // fp16 GEMV, row after row
	dotRows   func(y, x, w *float32, wstride, k, nrows int)      // one token × 8k rows (GemmF32Strided)
	cvt       func(dst *float32, src *uint16, n int)
	cvtBack   func(dst *uint16, src *float32, n int)
	silu      func(g, u *float32, n int)
	exp       func(x *float32, n int, sc, m float32) float32
	max       func(x *float32, n int) float32
	scale     func(x *float32, n int, a float32)
	spF16     func(acc *float32, nrows int, w *uint16, stride int, idx *int32, x *float32, nact int)
	spTernary func(acc *float32, nrows int, planes *uint64, colWords, wordOff int, idx *int32, vals *float32, nact int)
	q8Cols    func(acc []int32, nstrips int, codes []byte, colBytes int, idx4, qx []int32)
	// packed: GEMM by the AVX2 outer-product tiles over packed weights (gemmpack_amd64.go)
	// instead of the dot-form tiles above
	packed bool
}

// The tiles and their tables come from the generator (kernels_tables_amd64.go).
var avx2 = simd{
	name: "avx2", lanes: lanesAVX2, tileT: tileTAVX2, tileR: tileRAVX2, f16: gemmF16AVX2, f32: gemmF32AVX2,
	gemvRows: gemvRowsAVX2, gemvF16: gemvF16AVX2, gemvF32: gemvF32AVX2, seqF16: gemvSeqF16AVX2, dotRows: dotRowsAVX2, cvt: f16ToF32AVX2, cvtBack: f32ToF16AVX2,
	spF16: sparseF16AVX2, spTernary: sparseTernaryAVX2, silu: siluMulAVX2, exp: expSubAVX2,
	max: maxF32AVX2, scale: scaleF32AVX2, q8Cols: ternaryQ8ColsAVX2Go,
	packed: true,
}

var avx512 = simd{
	name: "avx512", lanes: lanesAVX512, tileT: tileTAVX512, tileR: tileRAVX512, f16: gemmF16AVX512, f32: gemmF32AVX512,
	gemvRows: gemvRowsAVX512, gemvF16: gemvF16AVX512, gemvF32: gemvF32AVX512, seqF16: gemvSeqF16AVX512, dotRows: dotRowsAVX512, cvt: f16ToF32AVX512, cvtBack: f32ToF16AVX512,
	spF16: sparseF16AVX512, spTernary: sparseTernaryAVX512, silu: siluMulAVX512, exp: expSubAVX512,
	max: maxF32AVX512, scale: scaleF32AVX512, q8Cols: ternaryQ8ColsVNNI,
}

func initArch() {
	x := cpu.X86
	if !(x.HasAVX2 && x.HasFMA && x.HasF16C && x.HasPOPCNT) {
		return
	}
	available = append(available, avx2.kernels())
	if x.HasAVX512F && x.HasAVX512BW && x.HasAVX512VL {
		b := avx512
		if !x.HasAVX512VNNI {
			b.q8Cols = ternaryQ8ColsAVX2Go // the int8 ternary kernel needs VPDPBUSD
		}
		available = append(available, b.kernels())
	}
}

func (s *simd) kernels() kernelSet {
	return kernelSet{
		name:           s.name,
		gemvF32:        s.gemvF32Rows,
		gemvF16:        s.gemvF16Rows,
		gemmF32Block:   s.gemmF32Block,
		gemmF16Block:   s.gemmF16Block,
		gemmF32Strided: s.gemmF32Strided,
		siluMul:        s.siluMul,
		expSub:         s.expSub,
		maxF32:         s.maxF32,
		scaleF32:       s.scaleF32,
		gemmScratch:    s.gemmScratch,
		gemmTokens:     s.gemmTokens(),
		f16ToF32:       s.f16ToF32,
		f32ToF16:       s.f32ToF16,
		sparseF16:      s.sparseF16,
		sparseTernary:  s.sparseTernary,
		ternaryQ8Cols:  s.q8Cols,
		topkEmit:       s.topkEmit,
		topkCount:      s.topkCount(),
		block16:        s.block16(),
	}
}

// block16 runs BlockTopN's N:16 blocks (block16AVX512, block16AVX2).
func (s *simd) block16() func(dst []int32, src []float32, n int) {
	k := block16AVX2
	if s.lanes == 16 {
		k = block16AVX512
	}
	return func(dst []int32, src []float32, n int) {
		nb := len(src) / 16
		if nb == 0 {
			return
		}
		_ = dst[nb*n+16-1] // room for the last block's whole-vector stores
		k(&dst[0], &src[0], nb, n)
	}
}

func (s *simd) topkEmit(dst []int32, src []float32, lo uint32) (int, int) {
	if s.lanes != 16 {
		if lo == 0 || len(dst) < 8 || len(src) < 8 {
			return 0, 0
		}
		return topkEmitAVX2(&dst[0], len(dst), &src[0], len(src), lo)
	}
	if len(dst) < 16 || len(src) < 16 {
		return 0, 0
	}
	return topkEmitAVX512(&dst[0], len(dst), &src[0], len(src), lo)
}

// topkCount: both backends find the top-K threshold by counting (countThreshold) with the
// AVX2 counting pass. AVX-512 used to run the radix select on its compressed candidate
// gather; on Zen 4 that took 2.5-3x as long (BenchmarkTopK, k = 50 %, alternating
// QSPARSE_KERNEL=avx512/avx2: d576 1617/1691 vs 562/501 ns, d1536 3444/3854 vs 1480/1366 ns).
func (s *simd) topkCount() func(src []float32, t uint32) int {
	return func(src []float32, t uint32) int {
		n := len(src) &^ 7
		c := 0
		if n > 0 {
			c = topkCountAVX2(&src[0], n, t)
		}
		for _, v := range src[n:] {
			c += b2i(absKey(v) >= t)
		}
		return c
	}
}

func (s *simd) f16ToF32(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	m := len(src) &^ (s.lanes - 1)
	if m > 0 {
		s.cvt(&dst[0], &src[0], m)
	}
	for i := m; i < len(src); i++ {
		dst[i] = F16ToF32(src[i])
	}
}

func (s *simd) f32ToF16(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	m := len(src) &^ (s.lanes - 1)
	if m > 0 {
		s.cvtBack(&dst[0], &src[0], m)
	}
	for i := m; i < len(src); i++ {
		dst[i] = F32ToF16(src[i])
	}
}

// Dense GEMV over whole rows (no k-blocking): on AMD cores (gemvSeq), fp16 rows of up to
// gemvSeqMaxCols columns go through gemvSeqF16, one row after the other (the whole matrix is
// one sequential stream); other fp16 rows and float32 go through the 1-token GEMM tile,
// gemvRows rows at a time sharing each load of x and prefetching the next tile's rows. Every row gets the tiles'
// single-accumulator dot product either way, so the results do not depend on how rows are
// split.
func (s *simd) gemvF32Rows(y, w, x []float32, cols, r0, r1 int) {
	if cols == 0 {
		clear(y[r0:r1])
		return
	}
	_ = w[r1*cols-1]
	_ = x[cols-1]
	m := cols &^ (s.lanes - 1)
	if m == 0 {
		clear(y[r0:r1])
	} else {
		r := r0
		for ; r+s.gemvRows <= r1; r += s.gemvRows {
			s.gemvF32(&y[r], 0, &x[0], 0, &w[r*cols], cols, m, 0)
		}
		for ; r < r1; r += s.tileR {
			rr := min(s.tileR, r1-r)
			s.f32[0][rr-1](&y[r], 0, &x[0], 0, &w[r*cols], cols, m, 0)
		}
	}
	if m < cols {
		for r := r0; r < r1; r++ {
			row := w[r*cols : r*cols+cols]
			var t float32
			for c := m; c < cols; c++ {
				t += row[c] * x[c]
			}
			y[r] += t
		}
	}
}

// gemvSeqMaxCols: the widest rows the sequential fp16 GEMV takes (see genGemvSeq: on Zen 4 it
// streams SmolLM2's 576- and 1536-wide rows 4-23 % faster in decode than the tile, and 4096-
// and 11008-wide rows a third slower).
const gemvSeqMaxCols = 2048

// gemvSeq: whether short fp16 rows take the sequential GEMV. It is a choice of speed only (both
// paths give every row the same single-accumulator dot product, bit for bit: TestGemvSeqTile),
// made by vendor because it goes opposite ways at equal feature flags. Zen 4: the sequential
// kernel streamed SmolLM2's rows 4-23 % faster (genGemvSeq). Intel Xeon (family 6 model 207,
// AVX-512, 2 threads, BenchmarkDecodeLayers' dense rows, alternating): the tile 17.5-20.4 GB/s,
// the sequential kernel 12.3-16.5, with or without its prefetch; ymm alike (16.9-18.5
// against 12.2-12.7).
var gemvSeq = isAMD()

// isAMD reports whether CPUID's vendor string is "AuthenticAMD".
func isAMD() bool {
	b, d, c := cpuVendor()
	return b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163 // "Auth" "enti" "cAMD"
}

func (s *simd) gemvF16Rows(y []float32, w []uint16, x []float32, cols, r0, r1 int) {
	if cols == 0 {
		clear(y[r0:r1])
		return
	}
	_ = w[r1*cols-1]
	_ = x[cols-1]
	m := cols &^ (s.lanes - 1)
	if m == 0 {
		clear(y[r0:r1])
	} else if gemvSeq && cols <= gemvSeqMaxCols {
		s.seqF16(&y[r0], &x[0], &w[r0*cols], cols, m, r1-r0)
	} else {
		r := r0
		for ; r+s.gemvRows <= r1; r += s.gemvRows {
			s.gemvF16(&y[r], 0, &x[0], 0, &w[r*cols], cols, m, 0)
		}
		for ; r < r1; r += s.tileR {
			rr := min(s.tileR, r1-r)
			s.f16[0][rr-1](&y[r], 0, &x[0], 0, &w[r*cols], cols, m, 0)
		}
	}
	if m < cols {
		for r := r0; r < r1; r++ {
			row := w[r*cols : r*cols+cols]
			var t float32
			for c := m; c < cols; c++ {
				t += F16ToF32(row[c]) * x[c]
			}
			y[r] += t
		}
	}
}

// gemmKC is the k-block: the whole row when it is short, else 512 columns (a 4-token
// activation tile of 8 KiB stays in L1 beside the weight rows). It depends only on cols.
func gemmKC(kMain int) int {
	if kMain <= 1536 {
		return kMain
	}
	return 512
}

func (s *simd) gemmTokens() int {
	if s.packed {
		return packItemTokens
	}
	return 0
}

func (s *simd) gemmScratch(f16 bool, nr, cols int) int {
	if s.packed {
		return packScratch(cols)
	}
	return 0
}

func (s *simd) gemmF16Block(y, x []float32, w []uint16, rows, cols, t0, t1, r0, r1 int, scratch []float32) {
	if s.packed {
		gemmPackedBlock(F16ToF32, y, x, w, rows, cols, t0, t1, r0, r1, scratch)
		return
	}
	gemmBlock(s.lanes, s.tileT, s.tileR, s.f16, F16ToF32, y, x, w, rows, cols, t0, t1, r0, r1)
}

func (s *simd) gemmF32Block(y, x, w []float32, rows, cols, t0, t1, r0, r1 int, scratch []float32) {
	if s.packed {
		gemmPackedBlock(func(v float32) float32 { return v }, y, x, w, rows, cols, t0, t1, r0, r1, scratch)
		return
	}
	gemmBlock(s.lanes, s.tileT, s.tileR, s.f32, func(v float32) float32 { return v }, y, x, w, rows, cols, t0, t1, r0, r1)
}

// gemmBlock computes y[t*rows+r] = Σ_c x[t*cols+c]*w[r*cols+c] for tokens [t0, t1) and rows
// [r0, r1): register tiles (tiles[tt-1][rr-1], at most tileT × tileR) over the columns that
// fill whole vectors, in k-blocks of gemmKC, then the column tail in Go (toF32 widens a weight).
func gemmBlock[W uint16 | float32](lanes, tileT, tileR int, tiles [][]gemmTile[W], toF32 func(W) float32, y, x []float32, w []W, rows, cols, t0, t1, r0, r1 int) {
	// bounds: the kernels read x[t*cols : t*cols+cols] and w[r*cols : r*cols+cols]
	_ = y[(t1-1)*rows+r1-1]
	kMain := cols &^ (lanes - 1)
	if kMain == 0 {
		for t := t0; t < t1; t++ {
			clear(y[t*rows+r0 : t*rows+r1])
		}
		if cols == 0 {
			return
		}
	}
	_ = x[t1*cols-1]
	_ = w[r1*cols-1]
	kc := gemmKC(kMain)
	for kb := 0; kb < kMain; kb += kc {
		kn := min(kc, kMain-kb)
		acc := min(kb, 1)
		for t := t0; t < t1; t += tileT {
			tt := min(tileT, t1-t)
			row := tiles[tt-1]
			xp := &x[t*cols+kb]
			for r := r0; r < r1; r += tileR {
				rr := min(tileR, r1-r)
				row[rr-1](&y[t*rows+r], rows, xp, cols, &w[r*cols+kb], cols, kn, acc)
			}
		}
	}
	if kMain < cols {
		for t := t0; t < t1; t++ {
			xt := x[t*cols : t*cols+cols]
			for r := r0; r < r1; r++ {
				wr := w[r*cols : r*cols+cols]
				var v float32
				for c := kMain; c < cols; c++ {
					v += xt[c] * toF32(wr[c])
				}
				y[t*rows+r] += v
			}
		}
	}
}

func (s *simd) sparseF16(acc []float32, w []uint16, stride int, idx []int32, x []float32) {
	n := len(acc)
	// Every active column's rows [0, n) lie inside w and every x[idx[j]] inside x: the caller
	// checked idx < Cols <= len(x) and the pack's shape (validate), and n never passes the
	// column's padded end.
	s.spF16(&acc[0], n, &w[0], stride, &idx[0], &x[0], len(idx))
}

func (s *simd) sparseTernary(acc []float32, planes []uint64, words, wordOff int, idx []int32, vals []float32) {
	n := len(acc) / 2 // plus sums, then minus sums
	vals = vals[:len(idx)]
	s.spTernary(&acc[0], n, &planes[0], words, wordOff, &idx[0], &vals[0], len(idx))
}

// gemmF32Strided runs the GEMM register tiles over strided views. Every element is the tile
// kernels' single-accumulator dot product over the first cols&^(lanes-1) columns, plus the
// rest added in Go, whatever tile computes it. (The packed AVX2 GEMM is not used here: its
// lanes run over rows, so an element computed alone would differ from the same element in a
// batch, and attention relies on their being equal.)
func (s *simd) gemmF32Strided(y []float32, ys int, x []float32, xs int, w []float32, ws, n, rows, cols int) {
	kMain := cols &^ (s.lanes - 1)
	if kMain == 0 {
		for t := range n {
			clear(y[t*ys : t*ys+rows])
		}
	} else {
		for t := 0; t < n; t += s.tileT {
			tt := min(s.tileT, n-t)
			row := s.f32[tt-1]
			r := 0
			if tt == 1 { // a lone token (a decode step): 8 rows per iteration, same dot products
				if n8 := rows &^ 7; n8 > 0 {
					s.dotRows(&y[t*ys], &x[t*xs], &w[0], ws, kMain, n8)
					r = n8
				}
				for ; r+s.gemvRows <= rows; r += s.gemvRows {
					s.gemvF32(&y[t*ys+r], ys, &x[t*xs], xs, &w[r*ws], ws, kMain, 0)
				}
			}
			for ; r < rows; r += s.tileR {
				rr := min(s.tileR, rows-r)
				row[rr-1](&y[t*ys+r], ys, &x[t*xs], xs, &w[r*ws], ws, kMain, 0)
			}
		}
	}
	if kMain < cols {
		for t := range n {
			xt := x[t*xs : t*xs+cols]
			for r := range rows {
				wr := w[r*ws : r*ws+cols]
				var v float32
				for c := kMain; c < cols; c++ {
					v += xt[c] * wr[c]
				}
				y[t*ys+r] += v
			}
		}
	}
}

func (s *simd) siluMul(g, u []float32) {
	u = u[:len(g)]
	m := len(g) &^ (s.lanes - 1)
	if m > 0 {
		s.silu(&g[0], &u[0], m)
	}
	siluMulGeneric(g[m:], u[m:])
}

func (s *simd) expSub(x []float32, sc, m float32) float32 {
	n := len(x) &^ (s.lanes - 1)
	var sum float32
	if n > 0 {
		sum = s.exp(&x[0], n, sc, m)
	}
	return sum + expSubGeneric(x[n:], sc, m)
}

func (s *simd) maxF32(x []float32) float32 {
	n := len(x) &^ (s.lanes - 1)
	if n == 0 {
		return maxF32Generic(x)
	}
	m := s.max(&x[0], n)
	for _, v := range x[n:] {
		if v > m {
			m = v
		}
	}
	return m
}

func (s *simd) scaleF32(x []float32, a float32) {
	n := len(x) &^ (s.lanes - 1)
	if n > 0 {
		s.scale(&x[0], n, a)
	}
	scaleF32Generic(x[n:], a)
}

// The int8 ternary column kernels read nstrips lines of every listed column, 4·len(qx) (+8 per
// prefetched pair for VNNI) entries of idx4, and write acc[:256·nstrips]; the callers
// (q8Job.do) size them so.
func ternaryQ8ColsVNNI(acc []int32, nstrips int, codes []byte, colBytes int, idx4, qx []int32) {
	_ = acc[nstrips*q8Strip-1]
	_ = idx4[4*len(qx)+8*q8PFPairs-1]
	ternaryQ8ColsAVX512(&acc[0], nstrips, unsafe.SliceData(codes), colBytes, &idx4[0], &qx[0], len(qx))
}

func ternaryQ8ColsAVX2Go(acc []int32, nstrips int, codes []byte, colBytes int, idx4, qx []int32) {
	_ = acc[nstrips*q8Strip-1]
	_ = idx4[4*len(qx)-1]
	ternaryQ8ColsAVX2(&acc[0], nstrips, unsafe.SliceData(codes), colBytes, &idx4[0], &qx[0], len(qx))
}
