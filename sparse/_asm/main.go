// Command asmgen generates qsparse's amd64 kernels (../kernels_amd64.s, the Go stubs
// ../kernels_amd64.go and the tile tables ../kernels_tables_amd64.go that dispatch_amd64.go
// uses) with avo:
//
//	go generate ./sparse    (or: cd sparse/_asm && go run .)
//
// Every kernel exists in two flavours: AVX2+FMA+F16C (ymm, 8 lanes) and AVX-512 F/BW/VL (zmm,
// 16 lanes, opmask registers). Lengths passed to kernels are multiples of the lane count unless
// stated; the Go wrappers handle the rest.
package main

import (
	"fmt"
	"math"
	"strings"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

type isa struct {
	name  string // "AVX2" / "AVX512"
	lanes int
	vec   func() VecVirtual
}

var isas = []isa{
	{"AVX2", 8, YMM},
	{"AVX512", 16, ZMM},
}

func main() {
	ConstraintExpr("amd64,!purego")
	for _, s := range isas {
		genF16ToF32(s)
		genF32ToF16(s)
		for _, f16 := range []bool{true, false} {
			T, R := gemmTile(s)
			for t := 1; t <= T; t++ {
				for r := 1; r <= R; r++ {
					genGemmTile(s, f16, t, r)
				}
			}
		}
		// dense GEMV tiles: 4 (AVX2) or 8 (AVX-512) weight rows stream at once and share each
		// load of x (measured on 4096x11008 fp16, one thread: 8 rows 20.2 GB/s, 4 rows 15.8)
		gr := gemvRows(s)
		genGemvTile(s, true, gr)  // fp16 GEMV over long rows
		genGemvTile(s, false, gr) // float32 GEMV (and lone strided tokens)
		genGemvSeq(s)             // fp16 GEMV over short rows
		genDotRows(s)
		genSparseF16(s)
		genSiLUMul(s)
		genExpSub(s)
		genMaxScale(s)
	}
	genGemmPacked()
	genTernaryAVX512()
	genTernaryAVX2()
	genTopKAVX512()
	genBlock16AVX512()
	genTopKAVX2()
	genBlock16AVX2()
	genCPUVendor()
	writeGoTables()
	Generate()
}

// gemmTile returns the register tile (tokens × rows) of the GEMM micro-kernel.
func gemmTile(s isa) (int, int) {
	if s.lanes == 16 {
		return 4, 3 // 12 zmm accumulators + 3 weights + 1 activation
	}
	return 4, 2 // 8 ymm accumulators + 2 weights + 1 activation (16 ymm registers)
}

// gemvRows is how many rows the dense GEMV kernel streams at once.
func gemvRows(s isa) int {
	if s.lanes == 16 {
		return 8 // 8 accumulators + 8 weight vectors + x: 17 of 32 zmm
	}
	return 4 // 9 of 16 ymm
}

func doc(lines ...string) { Doc(lines...) }

// text starts a function whose pointer arguments do not escape.
func text(name, sig string) {
	TEXT(name, NOSPLIT, sig)
	Pragma("noescape")
}

// loadW loads one vector of weights (fp16 converted, or float32) from m.
func loadW(s isa, f16 bool, m Mem, v VecVirtual) {
	if f16 {
		VCVTPH2PS(m, v)
	} else {
		VMOVUPS(m, v)
	}
}

// hsum reduces v to its lane sum in the low lane of the returned xmm, in a fixed order.
func hsum(s isa, v VecVirtual) VecVirtual {
	var y VecVirtual
	if s.lanes == 16 {
		y = YMM()
		VEXTRACTF64X4(U8(1), v, y)
		VADDPS(y, v.AsY(), y)
	} else {
		y = v
	}
	x := XMM()
	VEXTRACTF128(U8(1), y, x)
	VADDPS(x, y.AsX(), x)
	t := XMM()
	VPERMILPD(U8(1), x, t)
	VADDPS(t, x, x)
	VMOVSHDUP(x, t)
	VADDSS(t, x, x)
	return x
}

func genF16ToF32(s isa) {
	text("f16ToF32"+s.name, "func(dst *float32, src *uint16, n int)")
	doc(
		"f16ToF32"+s.name+" converts n fp16 values (n a multiple of "+fmt.Sprint(s.lanes)+"); it replaces:",
		"",
		"\tfor i := 0; i < n; i++ { dst[i] = F16ToF32(src[i]) }",
	)
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	n := Load(Param("n"), GP64())
	i := GP64()
	XORQ(i, i)
	v := s.vec()
	Label("loop")
	CMPQ(i, n)
	JGE(LabelRef("done"))
	VCVTPH2PS(Mem{Base: src, Index: i, Scale: 2}, v)
	VMOVUPS(v, Mem{Base: dst, Index: i, Scale: 4})
	ADDQ(U32(s.lanes), i)
	JMP(LabelRef("loop"))
	Label("done")
	VZEROUPPER()
	RET()
}

func genF32ToF16(s isa) {
	text("f32ToF16"+s.name, "func(dst *uint16, src *float32, n int)")
	doc(
		"f32ToF16"+s.name+" converts n float32 values to fp16, rounding to nearest even (n a multiple of "+fmt.Sprint(s.lanes)+"); it replaces:",
		"",
		"\tfor i := 0; i < n; i++ { dst[i] = F32ToF16(src[i]) }",
	)
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	n := Load(Param("n"), GP64())
	i := GP64()
	XORQ(i, i)
	v := s.vec()
	Label("f2h_loop")
	CMPQ(i, n)
	JGE(LabelRef("f2h_done"))
	VMOVUPS(Mem{Base: src, Index: i, Scale: 4}, v)
	VCVTPS2PH(U8(0), v, Mem{Base: dst, Index: i, Scale: 2}) // imm 0: round to nearest even
	ADDQ(U32(s.lanes), i)
	JMP(LabelRef("f2h_loop"))
	Label("f2h_done")
	VZEROUPPER()
	RET()
}

func elemName(f16 bool) (string, string, int) {
	if f16 {
		return "F16", "*uint16", 2
	}
	return "F32", "*float32", 4
}

// genGemvTile: the 1×R dense GEMV tile, the GEMM tile plus a software prefetch of the next R
// rows. A GEMV reads R rows of one block of consecutive rows at once; each row is a short
// stream (1152 bytes for 576 fp16 columns) that the hardware prefetcher barely trains on
// before it ends, so from DRAM the kernel waits on latency (9 GB/s on one thread). The rows
// [r0+R, r0+2R) that follow are one contiguous region of R*wstride elements when k ==
// wstride (a GEMV over whole rows): each iteration prefetches the next R*lanes elements of it
// linearly into L2 (PREFETCHT1), so the whole next group is in cache when its turn comes.
// Measured on one thread, from DRAM: 576x576 9 -> 21 GB/s, 49152x576 10 -> 23 GB/s; in L1
// (PREFETCHT0) the lead of R long rows (4096x4096: 64 KiB) thrashed it (25 -> 12 GB/s; with
// T1 39 GB/s).
func genGemvTile(s isa, f16 bool, R int) { genGemmTileOpt(s, f16, 1, R, true) }

// genGemvSeq: dense GEMV one row after the other, the row loop inside the kernel. Each row
// gets the GEMM tiles' single-accumulator dot product (lane partial sums over c in order, then
// hsum), so a row's result is the same bit for bit as in a prefill tile, and the weights are
// read as one sequential stream, with a PREFETCHT0 gemvSeqAhead bytes ahead on every cache
// line. On Zen 4 (2 threads, SmolLM2-135M's site shapes plus its 49152x576 head, 269 MB of
// fp16 from DRAM) that streamed 25-28 GB/s where the 1×8 tile with its PREFETCHT1 of the next
// 8 rows streamed 23-25; two or four rows interleaved without the software prefetch fell to
// 8-15 GB/s. With ymm the single dependent FMA chain caps one thread at ~15 GB/s (72 FMAs per
// 576-wide fp16 row), which two threads do not reach. Long rows go the other way (8 matrices
// of 32 MiB, 2 threads: 4096 and 11008 columns 17-19 GB/s here against the tile's 21-35; 2048
// alike), so the Go side runs this kernel up to gemvSeqMaxCols columns only, and on AMD only:
// on an Intel Xeon the tile streamed those rows faster (dispatch_amd64.go, gemvSeq). For float32
// weights it measured 18.7-22.7 GB/s against the tile's 19.1-24.7 on SmolLM2's shapes: no
// gain, so float32 GEMV keeps the tile.
func genGemvSeq(s isa) {
	const f16, es = true, 2
	name := "gemvSeqF16" + s.name
	text(name, "func(y *float32, x *float32, w *uint16, cols int, k int, nrows int)")
	doc(
		fmt.Sprintf("%s computes nrows rows of a dense GEMV (k a multiple of %d), one row at a time; it replaces:", name, s.lanes),
		"",
		"	for r := 0; r < nrows; r++ {",
		"		var s float32",
		"		for c := 0; c < k; c++ { s += x[c] * F16ToF32(w[r*cols+c]) }",
		"		y[r] = s",
		"	}",
	)
	vb := s.lanes * es // bytes of weights per vector
	U := max(64/vb, 1) // vectors per cache line
	xb := Load(Param("x"), GP64())
	ws := Load(Param("cols"), GP64())
	SHLQ(U8(es/2), ws)
	wp := Load(Param("w"), GP64())
	kk := Load(Param("k"), GP64())
	ku := GP64() // k rounded down to whole cache lines of weights
	MOVQ(kk, ku)
	ANDQ(I32(-(U * s.lanes)), ku)
	nr := Load(Param("nrows"), GP64())
	y := Load(Param("y"), GP64())
	Label(name + "_row")
	CMPQ(nr, Imm(0))
	JLE(LabelRef(name + "_done"))
	acc := s.vec()
	VXORPS(acc, acc, acc)
	i := GP64()
	XORQ(i, i)
	Label(name + "_line")
	CMPQ(i, ku)
	JGE(LabelRef(name + "_tail"))
	PREFETCHT0(Mem{Base: wp, Index: i, Scale: uint8(es), Disp: gemvSeqAhead})
	xv := make([]VecVirtual, U)
	for u := range xv {
		xv[u] = s.vec()
		VMOVUPS(Mem{Base: xb, Index: i, Scale: 4, Disp: 4 * s.lanes * u}, xv[u])
	}
	for u := 0; u < U; u++ {
		wv := s.vec()
		loadW(s, f16, Mem{Base: wp, Index: i, Scale: uint8(es), Disp: vb * u}, wv)
		VFMADD231PS(wv, xv[u], acc)
	}
	ADDQ(U32(U*s.lanes), i)
	JMP(LabelRef(name + "_line"))
	Label(name + "_tail")
	CMPQ(i, kk)
	JGE(LabelRef(name + "_red"))
	{
		xv := s.vec()
		VMOVUPS(Mem{Base: xb, Index: i, Scale: 4}, xv)
		wv := s.vec()
		loadW(s, f16, Mem{Base: wp, Index: i, Scale: uint8(es)}, wv)
		VFMADD231PS(wv, xv, acc)
	}
	ADDQ(U32(s.lanes), i)
	JMP(LabelRef(name + "_tail"))
	Label(name + "_red")
	h := hsum(s, acc)
	VMOVSS(h, Mem{Base: y})
	ADDQ(U32(4), y)
	ADDQ(ws, wp)
	DECQ(nr)
	JMP(LabelRef(name + "_row"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// genCPUVendor: CPUID leaf 0, the vendor string (EBX, EDX, ECX: "GenuineIntel",
// "AuthenticAMD"), for the dispatch choices that differ between vendors' cores at equal
// feature flags (golang.org/x/sys/cpu reports the flags only).
func genCPUVendor() {
	TEXT("cpuVendor", NOSPLIT, "func() (ebx, edx, ecx uint32)")
	Doc("cpuVendor returns CPUID leaf 0's EBX, EDX and ECX: the 12 bytes of the vendor string.")
	XORL(EAX, EAX)
	XORL(ECX, ECX)
	CPUID()
	Store(EBX, ReturnIndex(0))
	Store(EDX, ReturnIndex(1))
	Store(ECX, ReturnIndex(2))
	RET()
}

// gemvSeqAhead is how far ahead of its loads genGemvSeq prefetches (bytes; measured on Zen 4:
// 256 and 512 alike, 1024 slower, none a little slower with ymm).
const gemvSeqAhead = 256

// genGemmTile: the T×R register tile of GEMM in dot form.
func genGemmTile(s isa, f16 bool, T, R int) { genGemmTileOpt(s, f16, T, R, false) }

func genGemmTileOpt(s isa, f16 bool, T, R int, prefetch bool) {
	en, et, es := elemName(f16)
	name := fmt.Sprintf("gemm%sT%dR%d%s", en, T, R, s.name)
	text(name, "func(y *float32, ystride int, x *float32, xstride int, w "+et+", wstride int, k int, acc int)")
	conv := "w[r*wstride+c]"
	if f16 {
		conv = "F16ToF32(w[r*wstride+c])"
	}
	doc(
		fmt.Sprintf("%s computes a %d-token × %d-row tile of GEMM (k a multiple of %d); it replaces:", name, T, R, s.lanes),
		"",
		fmt.Sprintf("\tfor t := 0; t < %d; t++ {", T),
		fmt.Sprintf("\t\tfor r := 0; r < %d; r++ {", R),
		"\t\t\tvar s float32",
		"\t\t\tfor c := 0; c < k; c++ { s += x[t*xstride+c] * "+conv+" }",
		"\t\t\tif acc != 0 { y[t*ystride+r] += s } else { y[t*ystride+r] = s }",
		"\t\t}",
		"\t}",
	)
	xs := Load(Param("xstride"), GP64())
	SHLQ(U8(2), xs)
	xb := Load(Param("x"), GP64())
	xp := make([]GPVirtual, T)
	for t := range xp {
		xp[t] = GP64()
		if t == 0 {
			MOVQ(xb, xp[t])
		} else {
			LEAQ(Mem{Base: xp[t-1], Index: xs, Scale: 1}, xp[t])
		}
	}
	ws := Load(Param("wstride"), GP64())
	SHLQ(U8(es/2), ws)
	wb := Load(Param("w"), GP64())
	wp := make([]GPVirtual, R)
	for r := range wp {
		wp[r] = GP64()
		if r == 0 {
			MOVQ(wb, wp[r])
		} else {
			LEAQ(Mem{Base: wp[r-1], Index: ws, Scale: 1}, wp[r])
		}
	}
	var pf GPVirtual
	if prefetch {
		pf = GP64()
		LEAQ(Mem{Base: wp[R-1], Index: ws, Scale: 1}, pf) // start of the next R rows
	}
	kk := Load(Param("k"), GP64())
	acc := make([][]VecVirtual, T)
	for t := range acc {
		acc[t] = make([]VecVirtual, R)
		for r := range acc[t] {
			acc[t][r] = s.vec()
			VXORPS(acc[t][r], acc[t][r], acc[t][r])
		}
	}
	i := GP64()
	XORQ(i, i)
	Label(name + "_loop")
	CMPQ(i, kk)
	JGE(LabelRef(name + "_red"))
	if prefetch {
		step := R * s.lanes * es // bytes of the next rows per iteration
		for off := 0; off < step; off += 64 {
			PREFETCHT1(Mem{Base: pf, Disp: off})
		}
		ADDQ(U32(step), pf)
	}
	wv := make([]VecVirtual, R)
	for r := range wv {
		wv[r] = s.vec()
		loadW(s, f16, Mem{Base: wp[r], Index: i, Scale: uint8(es)}, wv[r])
	}
	for t := 0; t < T; t++ {
		xv := s.vec()
		VMOVUPS(Mem{Base: xp[t], Index: i, Scale: 4}, xv)
		for r := 0; r < R; r++ {
			VFMADD231PS(wv[r], xv, acc[t][r])
		}
	}
	ADDQ(U32(s.lanes), i)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_red")
	y := Load(Param("y"), GP64())
	ys := Load(Param("ystride"), GP64())
	SHLQ(U8(2), ys)
	af := Load(Param("acc"), GP64())
	for t := 0; t < T; t++ {
		for r := 0; r < R; r++ {
			h := hsum(s, acc[t][r])
			m := Mem{Base: y, Disp: 4 * r}
			CMPQ(af, Imm(0))
			JE(LabelRef(fmt.Sprintf("%s_st%d_%d", name, t, r)))
			VADDSS(m, h, h)
			Label(fmt.Sprintf("%s_st%d_%d", name, t, r))
			VMOVSS(h, m)
		}
		if t+1 < T {
			ADDQ(ys, y)
		}
	}
	VZEROUPPER()
	RET()
}

// genDotRows: one token's dot products with many strided float32 rows, 8 rows per iteration
// and the row loop inside the kernel (the GEMV form of GemmF32Strided: decode attention's
// q·k_j over the KV cache and p·v over the transposed values). The GEMM tiles take R ≤ 4 rows
// per call, which on SmolLM2's 64-element heads costs more in calls and reductions than in
// multiply-adds; here 8 independent accumulators keep both FMA ports busy and the 8 sums are
// reduced together (a 4×4 transpose per half). Every sum is formed exactly as hsum forms a
// tile's (lane partial sums over c in order; lo+hi halves, then (x0+x2)+(x1+x3)), so the
// results equal the tiles' bit for bit.
func genDotRows(s isa) {
	name := "dotRows" + s.name
	text(name, "func(y *float32, x *float32, w *float32, wstride int, k int, nrows int)")
	doc(
		fmt.Sprintf("%s computes nrows dot products (nrows a multiple of 8, k a multiple of %d); it replaces:", name, s.lanes),
		"",
		"\tfor r := 0; r < nrows; r++ {",
		"\t\tvar s float32",
		"\t\tfor c := 0; c < k; c++ { s += x[c] * w[r*wstride+c] }",
		"\t\ty[r] = s",
		"\t}",
	)
	ws := Load(Param("wstride"), GP64())
	SHLQ(U8(2), ws)
	ws3 := GP64()
	LEAQ(Mem{Base: ws, Index: ws, Scale: 2}, ws3)
	g0 := Load(Param("w"), GP64())
	y := Load(Param("y"), GP64())
	nr := Load(Param("nrows"), GP64())
	Label(name + "_grp")
	CMPQ(nr, Imm(0))
	JLE(LabelRef(name + "_done"))
	p0, p4 := GP64(), GP64()
	MOVQ(g0, p0)
	LEAQ(Mem{Base: g0, Index: ws, Scale: 4}, p4)
	// q0, q4: the same rows of the next group, prefetched as these are read (the rows are
	// short strided runs that the hardware prefetchers do not follow)
	q0, q4 := GP64(), GP64()
	LEAQ(Mem{Base: p4, Index: ws, Scale: 4}, q0)
	LEAQ(Mem{Base: q0, Index: ws, Scale: 4}, q4)
	px := Load(Param("x"), GP64())
	cnt := Load(Param("k"), GP64())
	acc := make([]VecVirtual, 8)
	for r := range acc {
		acc[r] = s.vec()
		VXORPS(acc[r], acc[r], acc[r])
	}
	Label(name + "_k")
	CMPQ(cnt, Imm(0))
	JLE(LabelRef(name + "_red"))
	xv := s.vec()
	VMOVUPS(Mem{Base: px}, xv)
	rowMem := func(r int, p0, p4 GPVirtual) Mem {
		base := p0
		if r >= 4 {
			base = p4
		}
		switch r % 4 {
		case 1:
			return Mem{Base: base, Index: ws, Scale: 1}
		case 2:
			return Mem{Base: base, Index: ws, Scale: 2}
		case 3:
			return Mem{Base: base, Index: ws3, Scale: 1}
		}
		return Mem{Base: base}
	}
	for r := range acc {
		wv := s.vec()
		VMOVUPS(rowMem(r, p0, p4), wv)
		VFMADD231PS(wv, xv, acc[r])
		PREFETCHT0(rowMem(r, q0, q4))
	}
	step := 4 * s.lanes
	ADDQ(U32(step), p0)
	ADDQ(U32(step), p4)
	ADDQ(U32(step), q0)
	ADDQ(U32(step), q4)
	ADDQ(U32(step), px)
	SUBQ(U32(s.lanes), cnt)
	JMP(LabelRef(name + "_k"))
	Label(name + "_red")
	// each accumulator to an xmm of 4 partial sums, as hsum begins
	xs := make([]VecVirtual, 8)
	for r := range acc {
		v := acc[r]
		if s.lanes == 16 {
			h := YMM()
			VEXTRACTF64X4(U8(1), v, h)
			VADDPS(h, v.AsY(), h)
			v = h
		}
		xs[r] = XMM()
		VEXTRACTF128(U8(1), v, xs[r])
		VADDPS(xs[r], v.AsX(), xs[r])
	}
	for q := 0; q < 2; q++ { // rows 4q..4q+3: (x0+x2)+(x1+x3) of each, as hsum ends
		a, b, c, d := xs[4*q], xs[4*q+1], xs[4*q+2], xs[4*q+3]
		t0, t1, t2, t3 := XMM(), XMM(), XMM(), XMM()
		VUNPCKLPS(b, a, t0) // [a0 b0 a1 b1]
		VUNPCKLPS(d, c, t1) // [c0 d0 c1 d1]
		VUNPCKHPS(b, a, t2) // [a2 b2 a3 b3]
		VUNPCKHPS(d, c, t3) // [c2 d2 c3 d3]
		VADDPS(t2, t0, t0)  // [a0+a2 b0+b2 a1+a3 b1+b3]
		VADDPS(t3, t1, t1)  // [c0+c2 d0+d2 c1+c3 d1+d3]
		lo, hi := XMM(), XMM()
		VMOVLHPS(t1, t0, lo) // [a0+a2 b0+b2 c0+c2 d0+d2]
		VMOVHLPS(t0, t1, hi) // [a1+a3 b1+b3 c1+c3 d1+d3]
		VADDPS(hi, lo, lo)
		VMOVUPS(lo, Mem{Base: y, Disp: 16 * q})
	}
	ADDQ(U32(32), y)
	LEAQ(Mem{Base: g0, Index: ws, Scale: 8}, g0)
	SUBQ(U32(8), nr)
	JMP(LabelRef(name + "_grp"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// genSparseF16: acc[0:nrows] += Σ_j x[idx[j]] * col(idx[j])[0:nrows]. Columns go G at a time
// (8 with AVX-512, f16GroupAVX2 with AVX2: G concurrent sequential streams, one accumulator
// load/store per G columns); each column's multiplier is broadcast from x at its index (no
// gathered copy); the column index lives in a stack slot so the G column pointers fit in
// registers.
// f16PFGroups: how many groups of 8 columns ahead the AVX-512 fp16 sparse kernel prefetches
// (measured: one is enough, two made no difference).
const f16PFGroups = 1

func genSparseF16(s isa) {
	name := "sparseF16" + s.name
	G := f16GroupAVX2
	if s.lanes == 16 {
		G = 8
	}
	text(name, "func(acc *float32, nrows int, w *uint16, stride int, idx *int32, x *float32, nact int)")
	// AVX-512 software-prefetches every cache line of the next group's columns (their addresses
	// are known from idx but scattered, so the hardware prefetchers only find each column's run
	// after its first misses): while rows i..i+2L-1 of the current group are summed, the same
	// bytes of the next group's G columns go to L2 (PREFETCHT1; T0 would evict the sums from
	// L1). AVX2 only touches the first lines of the columns f16Prefetch groups ahead.
	pf := s.lanes == 16 || f16FullPrefetchAVX2
	pfDoc := ""
	if pf {
		pfDoc = ", prefetching the next group's columns"
	}
	half := "((acc + a0*c0) + a1*c1) + ... + a{G-1}*c{G-1}"
	if G == 8 {
		half = "(((acc + a0*c0) + a1*c1) + a2*c2) + a3*c3) + ((a4*c4 + a5*c5) + a6*c6) + a7*c7)"
	}
	doc(
		fmt.Sprintf("%s accumulates active fp16 columns (nrows a multiple of 32; columns in groups of %d,", name, G),
		"each group added to acc as "+half+" with fused multiply-adds,",
		"the rest one by one)"+pfDoc+"; it replaces:",
		"",
		"\tfor j := 0; j < nact; j++ {",
		"\t\tcol := w[int(idx[j])*stride:]",
		"\t\tfor r := 0; r < nrows; r++ { acc[r] += x[idx[j]] * F16ToF32(col[r]) }",
		"\t}",
	)
	L := s.lanes
	jslot := AllocLocal(8)
	var np Mem // next group's column pointers (pf)
	if pf {
		np = AllocLocal(8 * G)
	}
	{
		z := GP64()
		XORQ(z, z)
		MOVQ(z, jslot)
	}
	Label(name + "_g")
	{
		j := GP64()
		MOVQ(jslot, j)
		nact := Load(Param("nact"), GP64())
		jg := GP64()
		LEAQ(Mem{Base: j, Disp: G}, jg)
		CMPQ(jg, nact)
		JG(LabelRef(name + "_g1"))
		idx := Load(Param("idx"), GP64())
		w := Load(Param("w"), GP64())
		stride := Load(Param("stride"), GP64())
		SHLQ(U8(1), stride)
		if pf {
			last := GP64()
			LEAQ(Mem{Base: nact, Disp: -1}, last)
			for u := 0; u < G; u++ {
				jp := GP64()
				LEAQ(Mem{Base: j, Disp: G*f16PFGroups + u}, jp)
				CMPQ(jp, last)
				CMOVQGT(last, jp)
				pa := GP64()
				MOVLQSX(Mem{Base: idx, Index: jp, Scale: 4}, pa)
				IMULQ(stride, pa)
				ADDQ(w, pa)
				MOVQ(pa, np.Offset(8*u))
			}
		} else {
			// Kick-start the hardware prefetcher on the columns f16Prefetch groups ahead: touch
			// the first f16PrefetchLines cache lines of each (the streams then run on their own).
			for u := 0; u < G; u++ {
				jp := GP64()
				LEAQ(Mem{Base: j, Disp: G*f16Prefetch + u}, jp)
				CMPQ(jp, nact)
				JGE(LabelRef(fmt.Sprintf("%s_pfdone%d", name, u)))
				pa := GP64()
				MOVLQSX(Mem{Base: idx, Index: jp, Scale: 4}, pa)
				IMULQ(stride, pa)
				ADDQ(w, pa)
				for l := 0; l < f16PrefetchLines; l++ {
					PREFETCHT0(Mem{Base: pa, Disp: 64 * l})
				}
				Label(fmt.Sprintf("%s_pfdone%d", name, u))
			}
		}
		x := Load(Param("x"), GP64())
		cp := make([]GPVirtual, G)
		av := make([]VecVirtual, G)
		for u := 0; u < G; u++ {
			cp[u] = GP64()
			MOVLQSX(Mem{Base: idx, Index: j, Scale: 4, Disp: 4 * u}, cp[u])
			av[u] = s.vec()
			VBROADCASTSS(Mem{Base: x, Index: cp[u], Scale: 4}, av[u]) // x[idx[j+u]]
			IMULQ(stride, cp[u])
			ADDQ(w, cp[u])
		}
		accp := Load(Param("acc"), GP64())
		nr := Load(Param("nrows"), GP64())
		i := GP64()
		XORQ(i, i)
		Label(name + "_rg")
		CMPQ(i, nr)
		JGE(LabelRef(name + "_rgdone"))
		if pf {
			for u := 0; u < G; u++ {
				t := GP64()
				MOVQ(np.Offset(8*u), t)
				PREFETCHT1(Mem{Base: t, Index: i, Scale: 2})
			}
		}
		for h := 0; h < 32/L; h++ {
			a := s.vec()
			VMOVUPS(Mem{Base: accp, Index: i, Scale: 4, Disp: h * L * 4}, a)
			first := min(G, 4)
			for u := 0; u < first; u++ {
				c := s.vec()
				VCVTPH2PS(Mem{Base: cp[u], Index: i, Scale: 2, Disp: h * L * 2}, c)
				VFMADD231PS(c, av[u], a)
			}
			if G > 4 {
				t := s.vec()
				c := s.vec()
				VCVTPH2PS(Mem{Base: cp[4], Index: i, Scale: 2, Disp: h * L * 2}, c)
				VMULPS(c, av[4], t)
				for u := 5; u < G; u++ {
					c := s.vec()
					VCVTPH2PS(Mem{Base: cp[u], Index: i, Scale: 2, Disp: h * L * 2}, c)
					VFMADD231PS(c, av[u], t)
				}
				VADDPS(t, a, a)
			}
			VMOVUPS(a, Mem{Base: accp, Index: i, Scale: 4, Disp: h * L * 4})
		}
		ADDQ(U32(32), i)
		JMP(LabelRef(name + "_rg"))
		Label(name + "_rgdone")
		j2 := GP64()
		MOVQ(jslot, j2)
		ADDQ(U8(G), j2)
		MOVQ(j2, jslot)
		JMP(LabelRef(name + "_g"))
	}

	Label(name + "_g1")
	{
		j := GP64()
		MOVQ(jslot, j)
		nact := Load(Param("nact"), GP64())
		CMPQ(j, nact)
		JGE(LabelRef(name + "_done"))
		idx := Load(Param("idx"), GP64())
		w := Load(Param("w"), GP64())
		stride := Load(Param("stride"), GP64())
		SHLQ(U8(1), stride)
		x := Load(Param("x"), GP64())
		c0 := GP64()
		MOVLQSX(Mem{Base: idx, Index: j, Scale: 4}, c0)
		a0 := s.vec()
		VBROADCASTSS(Mem{Base: x, Index: c0, Scale: 4}, a0) // x[idx[j]]
		IMULQ(stride, c0)
		ADDQ(w, c0)
		accp := Load(Param("acc"), GP64())
		nr := Load(Param("nrows"), GP64())
		i1 := GP64()
		XORQ(i1, i1)
		Label(name + "_r1")
		CMPQ(i1, nr)
		JGE(LabelRef(name + "_r1done"))
		for h := 0; h < 2; h++ {
			a := s.vec()
			VMOVUPS(Mem{Base: accp, Index: i1, Scale: 4, Disp: h * L * 4}, a)
			c := s.vec()
			VCVTPH2PS(Mem{Base: c0, Index: i1, Scale: 2, Disp: h * L * 2}, c)
			VFMADD231PS(c, a0, a)
			VMOVUPS(a, Mem{Base: accp, Index: i1, Scale: 4, Disp: h * L * 4})
		}
		ADDQ(U32(2*L), i1)
		JMP(LabelRef(name + "_r1"))
		Label(name + "_r1done")
		j2 := GP64()
		MOVQ(jslot, j2)
		INCQ(j2)
		MOVQ(j2, jslot)
		JMP(LabelRef(name + "_g1"))
	}
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// f16Prefetch is how many groups of 4 columns ahead the fp16 sparse kernel starts streams;
// f16PrefetchLines how many lines of each it touches.
const f16Prefetch, f16PrefetchLines = 2, 4

// f16GroupAVX2 is how many columns the AVX2 fp16 sparse kernel streams at once;
// f16FullPrefetchAVX2 makes it prefetch every line of the next group as AVX-512 does.
const f16GroupAVX2, f16FullPrefetchAVX2 = 8, true

// ternaryPrefetch is how many groups of 4 columns ahead the ternary kernel prefetches.
const ternaryPrefetch = 3

var ternaryDoc = []string{
	"",
	"\tfor j := 0; j < nact; j++ { // acc[:nrows] sums the +1 entries, acc[nrows:2*nrows] the -1 entries",
	"\t\tplus := planes[int(idx[j])*colWords*2+wordOff:]",
	"\t\tminus := plus[colWords:]",
	"\t\tfor r := 0; r < nrows; r++ {",
	"\t\t\tif plus[r/64]>>(r%64)&1 != 0 { acc[r] += vals[j] }",
	"\t\t\tif minus[r/64]>>(r%64)&1 != 0 { acc[nrows+r] += vals[j] }",
	"\t\t}",
	"\t}",
}

// genTernaryAVX512: bit-plane ternary columns; each 16-bit plane word is an opmask. Columns
// go four at a time. The +1 and -1 entries are summed into separate accumulators (two short
// dependency chains instead of one long one): +1 with a merge-masked VADDPS (FP add pipes),
// -1 with a merge-masked VFMADD231PS by 1.0 (FMA pipes; m + a*1 rounds exactly like m + a),
// so both halves of the FP unit work.
func genTernaryAVX512() {
	name := "sparseTernaryAVX512"
	text(name, "func(acc *float32, nrows int, planes *uint64, colWords, wordOff int, idx *int32, vals *float32, nact int)")
	doc(append([]string{name + " accumulates active ternary bit-plane columns (nrows a multiple of 64) with",
		"opmask-merged adds and subtracts; it replaces:"}, ternaryDoc...)...)
	nr := Load(Param("nrows"), GP64())
	SHRQ(U8(3), nr) // bytes of a plane per chunk (8 rows per byte)
	cw := Load(Param("colWords"), GP64())
	SHLQ(U8(3), cw) // bytes per plane
	wo := Load(Param("wordOff"), GP64())
	planes := Load(Param("planes"), GP64())
	LEAQ(Mem{Base: planes, Index: wo, Scale: 8}, planes)
	nb4 := Load(Param("nrows"), GP64())
	SHLQ(U8(2), nb4) // byte offset of the minus sums
	idx := Load(Param("idx"), GP64())
	vals := Load(Param("vals"), GP64())
	one := ZMM()
	t := GP32()
	MOVL(U32(0x3f800000), t)
	VPBROADCASTD(t, one)
	j := GP64()
	XORQ(j, j)

	group := func(G int, lbl string) {
		nact := Load(Param("nact"), GP64())
		jg := GP64()
		LEAQ(Mem{Base: j, Disp: G}, jg)
		CMPQ(jg, nact)
		JG(LabelRef(lbl + "_end"))
		if G == 4 {
			// Software prefetch of the columns ternaryPrefetch groups ahead: a column's share
			// of a row chunk is short (2 planes × chunk/8 bytes), too short for the hardware
			// prefetcher to lock on, so without this the kernel waits on memory latency.
			for u := 0; u < G; u++ {
				jp := GP64()
				LEAQ(Mem{Base: j, Disp: 4*ternaryPrefetch + u}, jp)
				CMPQ(jp, nact)
				JGE(LabelRef(fmt.Sprintf("%s_pfdone%d", lbl, u)))
				pa := GP64()
				MOVLQSX(Mem{Base: idx, Index: jp, Scale: 4}, pa)
				IMULQ(cw, pa)
				SHLQ(U8(1), pa)
				ADDQ(planes, pa)
				off := GP64()
				XORQ(off, off)
				Label(fmt.Sprintf("%s_pf%d", lbl, u))
				PREFETCHT0(Mem{Base: pa, Index: off, Scale: 1})
				LEAQ(Mem{Base: pa, Index: cw, Scale: 1}, jp)
				PREFETCHT0(Mem{Base: jp, Index: off, Scale: 1})
				ADDQ(U8(64), off)
				CMPQ(off, nr)
				JL(LabelRef(fmt.Sprintf("%s_pf%d", lbl, u)))
				Label(fmt.Sprintf("%s_pfdone%d", lbl, u))
			}
		}
		pp := make([]GPVirtual, G)
		av := make([]VecVirtual, G)
		for u := 0; u < G; u++ {
			pp[u] = GP64()
			MOVLQSX(Mem{Base: idx, Index: j, Scale: 4, Disp: 4 * u}, pp[u])
			IMULQ(cw, pp[u])
			SHLQ(U8(1), pp[u]) // 2 planes per column
			ADDQ(planes, pp[u])
			av[u] = ZMM()
			VBROADCASTSS(Mem{Base: vals, Index: j, Scale: 4, Disp: 4 * u}, av[u])
		}
		accb := Load(Param("acc"), GP64())
		b := GP64()
		XORQ(b, b)
		Label(lbl + "_rows")
		CMPQ(b, nr)
		JGE(LabelRef(lbl + "_next"))
		// 64 rows = one 64-bit word per plane: load it whole into an opmask, shift it down
		// 16 rows at a time
		ap, am := make([]VecVirtual, 4), make([]VecVirtual, 4)
		for h := 0; h < 4; h++ {
			ap[h], am[h] = ZMM(), ZMM()
			VMOVUPS(Mem{Base: accb, Disp: 64 * h}, ap[h])
			VMOVUPS(Mem{Base: accb, Index: nb4, Scale: 1, Disp: 64 * h}, am[h])
		}
		for u := 0; u < G; u++ {
			kp, km := K(), K()
			KMOVQ(Mem{Base: pp[u]}, kp)
			KMOVQ(Mem{Base: pp[u], Index: cw, Scale: 1}, km)
			for h := 0; h < 4; h++ {
				kph, kmh := kp, km
				if h > 0 {
					kph, kmh = K(), K()
					KSHIFTRQ(U8(16*h), kp, kph)
					KSHIFTRQ(U8(16*h), km, kmh)
				}
				VADDPS(av[u], ap[h], kph, ap[h])
				VFMADD231PS(one, av[u], kmh, am[h])
			}
		}
		for h := 0; h < 4; h++ {
			VMOVUPS(ap[h], Mem{Base: accb, Disp: 64 * h})
			VMOVUPS(am[h], Mem{Base: accb, Index: nb4, Scale: 1, Disp: 64 * h})
		}
		for u := 0; u < G; u++ {
			ADDQ(U8(8), pp[u])
		}
		ADDQ(U8(8), b)
		ADDQ(U32(256), accb)
		JMP(LabelRef(lbl + "_rows"))
		Label(lbl + "_next")
		ADDQ(U8(G), j)
		JMP(LabelRef(lbl))
		Label(lbl + "_end")
	}
	Label(name + "_g4")
	group(4, name+"_g4")
	Label(name + "_g1")
	group(1, name+"_g1")
	VZEROUPPER()
	RET()
}

// genTernaryAVX2: bit planes expanded to lane masks with VPAND/VPCMPEQD against a table of
// single bits.
func genTernaryAVX2() {
	name := "sparseTernaryAVX2"
	bits := GLOBL("ternaryBitsAVX2", RODATA|NOPTR)
	for q := 0; q < 4; q++ {
		for l := 0; l < 8; l++ {
			DATA(4*(8*q+l), U32(uint32(1)<<(8*q+l)))
		}
	}
	text(name, "func(acc *float32, nrows int, planes *uint64, colWords, wordOff int, idx *int32, vals *float32, nact int)")
	doc(append([]string{name + " accumulates active ternary bit-plane columns (nrows a multiple of 64); it replaces:"}, ternaryDoc...)...)
	accp := Load(Param("acc"), GP64())
	nr := Load(Param("nrows"), GP64())
	cw := Load(Param("colWords"), GP64())
	SHLQ(U8(3), cw)
	wo := Load(Param("wordOff"), GP64())
	planes := Load(Param("planes"), GP64())
	LEAQ(Mem{Base: planes, Index: wo, Scale: 8}, planes)
	idx := Load(Param("idx"), GP64())
	vals := Load(Param("vals"), GP64())
	nact := Load(Param("nact"), GP64())
	stride := GP64()
	LEAQ(Mem{Base: cw, Index: cw, Scale: 1}, stride)
	nb4 := GP64()
	MOVQ(nr, nb4)
	SHLQ(U8(2), nb4) // byte offset of the minus sums
	SHRQ(U8(3), nr)
	bt := make([]VecVirtual, 4)
	for q := range bt {
		bt[q] = YMM()
		VMOVDQU(bits.Offset(32*q), bt[q])
	}
	j := GP64()
	XORQ(j, j)
	Label(name + "_g1")
	CMPQ(j, nact)
	JGE(LabelRef(name + "_done"))
	p0 := GP64()
	MOVLQSX(Mem{Base: idx, Index: j, Scale: 4}, p0)
	IMULQ(stride, p0)
	ADDQ(planes, p0)
	m0 := GP64()
	LEAQ(Mem{Base: p0, Index: cw, Scale: 1}, m0)
	a0 := YMM()
	VBROADCASTSS(Mem{Base: vals, Index: j, Scale: 4}, a0)
	b1 := GP64()
	XORQ(b1, b1)
	accb := GP64()
	MOVQ(accp, accb)
	Label(name + "_r1")
	CMPQ(b1, nr)
	JGE(LabelRef(name + "_r1done"))
	for d := 0; d < 2; d++ { // two dwords = 64 rows
		pv, mv := YMM(), YMM()
		VPBROADCASTD(Mem{Base: p0, Index: b1, Scale: 1, Disp: 4 * d}, pv)
		VPBROADCASTD(Mem{Base: m0, Index: b1, Scale: 1, Disp: 4 * d}, mv)
		for q := 0; q < 4; q++ {
			off := 128*d + 32*q
			a := YMM()
			VMOVUPS(Mem{Base: accb, Disp: off}, a)
			t := YMM()
			VPAND(bt[q], pv, t)
			VPCMPEQD(bt[q], t, t)
			VANDPS(a0, t, t)
			VADDPS(t, a, a)
			VMOVUPS(a, Mem{Base: accb, Disp: off})
			m := YMM()
			VMOVUPS(Mem{Base: accb, Index: nb4, Scale: 1, Disp: off}, m)
			u := YMM()
			VPAND(bt[q], mv, u)
			VPCMPEQD(bt[q], u, u)
			VANDPS(a0, u, u)
			VADDPS(u, m, m)
			VMOVUPS(m, Mem{Base: accb, Index: nb4, Scale: 1, Disp: off})
		}
	}
	ADDQ(U32(8), b1)
	ADDQ(U32(256), accb)
	JMP(LabelRef(name + "_r1"))
	Label(name + "_r1done")
	INCQ(j)
	JMP(LabelRef(name + "_g1"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

var _ = strings.Join

// genTopKAVX512: top-K's emit pass as an AVX-512 compress (the threshold comes from the AVX2
// counting pass, see topkCount in dispatch_amd64.go). It returns how many indices it wrote
// and how many inputs it consumed: it stops before a store could pass dst[cap-1] (each store
// writes a whole vector) or when fewer than 16 inputs remain; the caller finishes in Go.
func genTopKAVX512() {
	text("topkEmitAVX512", "func(dst *int32, dstCap int, src *float32, n int, lo uint32) (count, done int)")
	doc(
		"topkEmitAVX512 writes the indices whose magnitude key is at least lo; it replaces:",
		"",
		"\tfor i := 0; i < n; i++ {",
		"\t\tif math.Float32bits(src[i])&0x7fffffff >= lo { dst[count] = int32(i); count++ }",
		"\t}",
	)
	{
		iota := GLOBL("topkIotaAVX512", RODATA|NOPTR)
		for l := 0; l < 16; l++ {
			DATA(4*l, U32(uint32(l)))
		}
		topkIota = iota
		dst := Load(Param("dst"), GP64())
		dcap := Load(Param("dstCap"), GP64())
		src := Load(Param("src"), GP64())
		n := Load(Param("n"), GP64())
		lo := Load(Param("lo"), GP32())
		lov := ZMM()
		VPBROADCASTD(lo, lov)
		m31 := ZMM()
		t := GP32()
		MOVL(U32(0x7fffffff), t)
		VPBROADCASTD(t, m31)
		inc := ZMM()
		MOVL(U32(16), t)
		VPBROADCASTD(t, inc)
		iv := ZMM()
		VMOVDQU32(iota, iv)
		cnt, i := GP64(), GP64()
		XORQ(cnt, cnt)
		XORQ(i, i)
		SUBQ(U8(16), dcap)
		SUBQ(U8(16), n)
		Label("te_loop")
		CMPQ(i, n)
		JG(LabelRef("te_done"))
		CMPQ(cnt, dcap)
		JG(LabelRef("te_done"))
		v := ZMM()
		VPANDD(Mem{Base: src, Index: i, Scale: 4}, m31, v)
		k := K()
		VPCMPUD(U8(5), lov, v, k) // v >= lo (not less than)
		c := ZMM()
		VPCOMPRESSD_Z(iv, k, c)
		VMOVDQU32(c, Mem{Base: dst, Index: cnt, Scale: 4})
		r := GP32()
		KMOVW(k, r)
		POPCNTL(r, r)
		ADDQ(r.As64(), cnt)
		VPADDD(inc, iv, iv)
		ADDQ(U8(16), i)
		JMP(LabelRef("te_loop"))
		Label("te_done")
		Store(cnt, ReturnIndex(0))
		Store(i, ReturnIndex(1))
		VZEROUPPER()
		RET()
	}
}

// block16Loop is the Go loop the N:16 selection kernels replace (their doc comments).
var block16Loop = []string{
	"",
	"\tfor b := 0; b < nblocks; b++ {",
	"\t\tfor i := 0; i < 16; i++ {",
	"\t\t\tki, rank := key(src[16*b+i]), 0",
	"\t\t\tfor j := 0; j < 16; j++ {",
	"\t\t\t\tkj := key(src[16*b+j])",
	"\t\t\t\tif kj > ki || kj == ki && j < i { rank++ }",
	"\t\t\t}",
	"\t\t\tif rank < n { *dst = int32(16*b + i); dst++ }",
	"\t\t}",
	"\t}",
}

// keepBit sets bit i of mask when key i's rank, the popcount of the beats mask in r (which it
// clobbers), is below n: the N:16 kernels' last step for each key.
func keepBit(r, n GPVirtual, i int, mask GPVirtual) {
	POPCNTL(r, r)
	SUBL(n.As32(), r) // rank - n < 0: kept
	SHRL(U8(31), r)
	if i > 0 {
		SHLL(U8(i), r)
	}
	ORL(r, mask)
}

// topkIota is the vector 0, 1, ..., 15 (genTopKAVX512 defines it, genBlock16AVX512 reuses it).
var topkIota Mem

// genBlock16AVX512: N:M selection for M = 16 (BlockTopN), one 16-channel block per zmm. The
// rank of key i is the number of keys that beat it: greater, or equal at a lower index; key i
// is kept when its rank is below n, and the kept indices are compressed out in order. Each
// rank is two compares against key i broadcast from a stack copy, two mask moves and a
// popcount.
func genBlock16AVX512() {
	text("block16AVX512", "func(dst *int32, src *float32, nblocks int, n int)")
	doc(append([]string{
		"block16AVX512 writes, for each block b of 16 inputs, the n indices (16b + lane, ascending)",
		"of the n largest magnitude keys (ties: the lower index), n per block; each block's store",
		"writes 16 lanes, so dst needs nblocks*n + 16 - n entries. It replaces:",
	}, block16Loop...)...)
	keys := AllocLocal(64)
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	nb := Load(Param("nblocks"), GP64())
	n := GP64()
	Load(Param("n"), n)
	m31, iv, inc := ZMM(), ZMM(), ZMM()
	t := GP32()
	MOVL(U32(0x7fffffff), t)
	VPBROADCASTD(t, m31)
	MOVL(U32(16), t)
	VPBROADCASTD(t, inc)
	VMOVDQU32(topkIota, iv)
	step := GP64() // n*4 bytes of output per block
	MOVQ(n, step)
	SHLQ(U8(2), step)
	Label("b16_loop")
	TESTQ(nb, nb)
	JZ(LabelRef("b16_done"))
	k := ZMM()
	VPANDD(Mem{Base: src}, m31, k)
	VMOVDQU32(k, keys)
	mask := GP32()
	XORL(mask, mask)
	for i := 0; i < 16; i++ {
		gt, eq := K(), K()
		VPCMPUD_BCST(U8(6), keys.Offset(4*i), k, gt) // key_j > key_i
		VPCMPUD_BCST(U8(0), keys.Offset(4*i), k, eq) // key_j == key_i
		r, e := GP32(), GP32()
		KMOVW(gt, r)
		KMOVW(eq, e)
		ANDL(U32(uint32(1)<<i-1), e) // equal at a lower index
		ORL(e, r)
		keepBit(r, n, i, mask)
	}
	km := K()
	KMOVW(mask, km)
	c := ZMM()
	VPCOMPRESSD_Z(iv, km, c)
	VMOVDQU32(c, Mem{Base: dst})
	ADDQ(step, dst)
	VPADDD(inc, iv, iv)
	ADDQ(U8(64), src)
	DECQ(nb)
	JMP(LabelRef("b16_loop"))
	Label("b16_done")
	VZEROUPPER()
	RET()
}

// expConsts are the float32 constants of expVec (Cephes expf): each stored as a 64-byte
// vector in expTable.
var expConsts = []float32{
	-87.33,              // 0 lower clamp (e^x still a normal float)
	88.02,               // 1 upper clamp (n <= 127)
	1.44269504088896341, // 2 log2(e)
	0.693359375,         // 3 ln2 high part
	-2.12194440e-4,      // 4 ln2 low part
	1.9875691500e-4,     // 5 p0
	1.3981999507e-3,     // 6 p1
	8.3334519073e-3,     // 7 p2
	4.1665795894e-2,     // 8 p3
	1.6666665459e-1,     // 9 p4
	5.0000001201e-1,     // 10 p5
	1,                   // 11 one
}

var expTable Mem

func expTab() Mem {
	if expTable.Symbol.Name == "" {
		expTable = GLOBL("expTable", RODATA|NOPTR)
		for i, c := range expConsts {
			for l := 0; l < 16; l++ {
				DATA(64*i+4*l, U32(math.Float32bits(c)))
			}
		}
		for l := 0; l < 16; l++ { // 12: int32 127
			DATA(64*12+4*l, U32(127))
		}
	}
	return expTable
}

// expVec sets v = e^v (float32, Cephes' polynomial: ~1 ulp) using scratch vectors.
func expVec(s isa, v VecVirtual) {
	t := expTab()
	c := func(i int) Mem { return t.Offset(64 * i) }
	VMAXPS(c(0), v, v)
	VMINPS(c(1), v, v)
	f := s.vec()
	VMULPS(c(2), v, f)
	n := s.vec()
	VCVTPS2DQ(f, n) // round to nearest even
	VCVTDQ2PS(n, f)
	VFNMADD231PS(c(3), f, v) // v -= f*ln2hi
	VFNMADD231PS(c(4), f, v) // v -= f*ln2lo
	y := s.vec()
	VMOVUPS(c(5), y)
	for i := 6; i <= 10; i++ {
		VFMADD213PS(c(i), v, y) // y = y*v + p
	}
	z := s.vec()
	VMULPS(v, v, z)
	VFMADD213PS(v, z, y) // y = y*v² + v
	VADDPS(c(11), y, y)
	VPADDD(c(12), n, n)
	VPSLLD(U8(23), n, n)
	VMULPS(n, y, v)
}

func genSiLUMul(s isa) {
	name := "siluMul" + s.name
	text(name, "func(gate *float32, u *float32, n int)")
	doc(
		name+" sets gate[i] = gate[i] / (1 + e^(-gate[i])) * u[i] (n a multiple of "+fmt.Sprint(s.lanes)+"; e^x: Cephes expf polynomial); it replaces:",
		"",
		"\tfor i := 0; i < n; i++ { gate[i] = gate[i] / (1 + expf32(-gate[i])) * u[i] }",
	)
	g := Load(Param("gate"), GP64())
	u := Load(Param("u"), GP64())
	n := Load(Param("n"), GP64())
	i := GP64()
	XORQ(i, i)
	Label(name + "_loop")
	CMPQ(i, n)
	JGE(LabelRef(name + "_done"))
	x := s.vec()
	VMOVUPS(Mem{Base: g, Index: i, Scale: 4}, x)
	e := s.vec()
	VXORPS(e, e, e)
	VSUBPS(x, e, e) // -x
	expVec(s, e)
	VADDPS(expTab().Offset(64*11), e, e)
	VDIVPS(e, x, x)
	VMULPS(Mem{Base: u, Index: i, Scale: 4}, x, x)
	VMOVUPS(x, Mem{Base: g, Index: i, Scale: 4})
	ADDQ(U32(s.lanes), i)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

func genExpSub(s isa) {
	name := "expSub" + s.name
	text(name, "func(x *float32, n int, sc, m float32) float32")
	doc(
		name+" sets x[i] = e^(x[i]*sc-m) and returns their sum (n a multiple of "+fmt.Sprint(s.lanes)+"; lane-wise partial sums",
		"reduced in a fixed order); it replaces:",
		"",
		"\tfor i := 0; i < n; i++ { x[i] = expf32(x[i]*sc - m); sum += x[i] }",
	)
	x := Load(Param("x"), GP64())
	n := Load(Param("n"), GP64())
	// VEX forms only: a legacy-SSE instruction (MOVSS) while the upper halves are dirty costs
	// ~130 ns per call on the Zen 3 KVM guests measured (2026-12-02)
	m := s.vec()
	VBROADCASTSS(NewParamAddr("m", 20), m)
	scv := s.vec()
	VBROADCASTSS(NewParamAddr("sc", 16), scv)
	acc := s.vec()
	VXORPS(acc, acc, acc)
	i := GP64()
	XORQ(i, i)
	Label(name + "_loop")
	CMPQ(i, n)
	JGE(LabelRef(name + "_done"))
	v := s.vec()
	VMOVUPS(Mem{Base: x, Index: i, Scale: 4}, v)
	VMULPS(scv, v, v)
	VSUBPS(m, v, v)
	expVec(s, v)
	VMOVUPS(v, Mem{Base: x, Index: i, Scale: 4})
	VADDPS(v, acc, acc)
	ADDQ(U32(s.lanes), i)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	h := hsum(s, acc)
	VMOVSS(h, NewParamAddr("ret", 24))
	VZEROUPPER()
	RET()
}

// genMaxScale: maxF32 (the largest of n float32s, n a positive multiple of the lanes) and
// scaleF32 (x[i] *= a), the other two passes of a softmax.
func genMaxScale(s isa) {
	name := "maxF32" + s.name
	text(name, "func(x *float32, n int) float32")
	doc(name+" returns the largest of x[0:n] (n a positive multiple of "+fmt.Sprint(s.lanes)+", no NaNs); it replaces:",
		"",
		"\tm := x[0]; for i := 1; i < n; i++ { m = max(m, x[i]) }",
	)
	{
		x := Load(Param("x"), GP64())
		n := Load(Param("n"), GP64())
		m := s.vec()
		VMOVUPS(Mem{Base: x}, m)
		i := GP64()
		MOVQ(U32(s.lanes), i)
		Label(name + "_loop")
		CMPQ(i, n)
		JGE(LabelRef(name + "_done"))
		VMAXPS(Mem{Base: x, Index: i, Scale: 4}, m, m)
		ADDQ(U32(s.lanes), i)
		JMP(LabelRef(name + "_loop"))
		Label(name + "_done")
		var y VecVirtual = m
		if s.lanes == 16 {
			y = YMM()
			VEXTRACTF64X4(U8(1), m, y)
			VMAXPS(y, m.AsY(), y)
		}
		h := XMM()
		VEXTRACTF128(U8(1), y, h)
		VMAXPS(h, y.AsX(), h)
		t := XMM()
		VPERMILPD(U8(1), h, t)
		VMAXPS(t, h, h)
		VMOVSHDUP(h, t)
		VMAXSS(t, h, h)
		VMOVSS(h, NewParamAddr("ret", 16))
		VZEROUPPER()
		RET()
	}
	name = "scaleF32" + s.name
	text(name, "func(x *float32, n int, a float32)")
	doc(name+" sets x[i] *= a (n a multiple of "+fmt.Sprint(s.lanes)+"); it replaces:",
		"",
		"\tfor i := 0; i < n; i++ { x[i] *= a }",
	)
	{
		x := Load(Param("x"), GP64())
		n := Load(Param("n"), GP64())
		a := s.vec()
		VBROADCASTSS(NewParamAddr("a", 16), a)
		i := GP64()
		XORQ(i, i)
		Label(name + "_loop")
		CMPQ(i, n)
		JGE(LabelRef(name + "_done"))
		v := s.vec()
		VMULPS(Mem{Base: x, Index: i, Scale: 4}, a, v)
		VMOVUPS(v, Mem{Base: x, Index: i, Scale: 4})
		ADDQ(U32(s.lanes), i)
		JMP(LabelRef(name + "_loop"))
		Label(name + "_done")
		VZEROUPPER()
		RET()
	}
}

// genTopKAVX2: AVX2 has no compress, so its top-K finds the threshold by counting (one pass
// per step of a binary search over the key, each a compare and a subtract per 8 keys: see
// countThreshold) and writes the survivors with a permutation table (the lanes of a compare
// mask, packed to the front by VPERMD).
func genTopKAVX2() {
	text("topkCountAVX2", "func(src *float32, n int, t uint32) int")
	doc(
		"topkCountAVX2 counts the magnitude keys of src[:n] (n a multiple of 8) that are at least t",
		"(t >= 1); it replaces:",
		"",
		"\tfor i := 0; i < n; i++ {",
		"\t\tif math.Float32bits(src[i])&0x7fffffff >= t { count++ }",
		"\t}",
	)
	{
		src := Load(Param("src"), GP64())
		n := Load(Param("n"), GP64())
		t := Load(Param("t"), GP32())
		DECL(t) // key >= t  <=>  key > t-1 (keys and t-1 are non-negative int32s)
		tv, m31 := ymmBroadcast(t), ymmConst(0x7fffffff)
		acc := []VecVirtual{YMM(), YMM(), YMM(), YMM()}
		for _, a := range acc {
			VPXOR(a, a, a)
		}
		i := GP64()
		XORQ(i, i)
		n4 := GP64()
		MOVQ(n, n4)
		ANDQ(I32(-32), n4)
		Label("tc_loop4")
		CMPQ(i, n4)
		JGE(LabelRef("tc_loop1"))
		for u, a := range acc {
			v := YMM()
			VPAND(Mem{Base: src, Index: i, Scale: 4, Disp: 32 * u}, m31, v)
			VPCMPGTD(tv, v, v) // v = key > t-1 ? -1 : 0
			VPSUBD(v, a, a)
		}
		ADDQ(U8(32), i)
		JMP(LabelRef("tc_loop4"))
		Label("tc_loop1")
		CMPQ(i, n)
		JGE(LabelRef("tc_sum"))
		{
			v := YMM()
			VPAND(Mem{Base: src, Index: i, Scale: 4}, m31, v)
			VPCMPGTD(tv, v, v)
			VPSUBD(v, acc[0], acc[0])
		}
		ADDQ(U8(8), i)
		JMP(LabelRef("tc_loop1"))
		Label("tc_sum")
		VPADDD(acc[1], acc[0], acc[0])
		VPADDD(acc[3], acc[2], acc[2])
		VPADDD(acc[2], acc[0], acc[0])
		hi := XMM()
		VEXTRACTI128(U8(1), acc[0], hi)
		lo := acc[0].AsX()
		VPADDD(hi, lo, lo)
		VPSHUFD(U8(0x4e), lo, hi)
		VPADDD(hi, lo, lo)
		VPSHUFD(U8(0xb1), lo, hi)
		VPADDD(hi, lo, lo)
		r := GP32()
		VMOVD(lo, r) // (Go's MOVD is MOVQ)
		Store(r.As64(), ReturnIndex(0))
		VZEROUPPER()
		RET()
	}

	text("topkEmitAVX2", "func(dst *int32, dstCap int, src *float32, n int, lo uint32) (count, done int)")
	doc(
		"topkEmitAVX2 writes the indices whose magnitude key is at least lo (lo >= 1); it replaces:",
		"",
		"\tfor i := 0; i < n; i++ {",
		"\t\tif math.Float32bits(src[i])&0x7fffffff >= lo { dst[count] = int32(i); count++ }",
		"\t}",
		"",
		"It stops before a store could pass dst[dstCap-1] (each writes 8 lanes) or when fewer than 8",
		"inputs remain, and returns how many inputs it used.",
	)
	{
		// topkPackAVX2[m] lists the set bits of the 8-bit mask m, lowest first (then zeros).
		lut := GLOBL("topkPackAVX2", RODATA|NOPTR)
		for m := 0; m < 256; m++ {
			l := 0
			for b := 0; b < 8; b++ {
				if m>>b&1 != 0 {
					DATA(32*m+4*l, U32(uint32(b)))
					l++
				}
			}
			for ; l < 8; l++ {
				DATA(32*m+4*l, U32(0))
			}
		}
		iota := GLOBL("topkIotaAVX2", RODATA|NOPTR)
		for l := 0; l < 8; l++ {
			DATA(4*l, U32(uint32(l)))
		}
		topkPackLUT, topkIotaY = lut, iota
		dst := Load(Param("dst"), GP64())
		dcap := Load(Param("dstCap"), GP64())
		src := Load(Param("src"), GP64())
		n := Load(Param("n"), GP64())
		lo := Load(Param("lo"), GP32())
		DECL(lo)
		lov, m31, inc := ymmBroadcast(lo), ymmConst(0x7fffffff), ymmConst(8)
		iv := YMM()
		VMOVDQU(iota, iv)
		lp := GP64()
		LEAQ(lut, lp)
		cnt, i := GP64(), GP64()
		XORQ(cnt, cnt)
		XORQ(i, i)
		SUBQ(U8(8), dcap)
		SUBQ(U8(8), n)
		Label("te2_loop")
		CMPQ(i, n)
		JG(LabelRef("te2_done"))
		CMPQ(cnt, dcap)
		JG(LabelRef("te2_done"))
		v := YMM()
		VPAND(Mem{Base: src, Index: i, Scale: 4}, m31, v)
		VPCMPGTD(lov, v, v) // key > lo-1
		r := GP32()
		VMOVMSKPS(v, r)
		sh := GP64()
		MOVL(r, sh.As32())
		SHLQ(U8(5), sh)
		perm, out := YMM(), YMM()
		VMOVDQU(Mem{Base: lp, Index: sh, Scale: 1}, perm)
		VPERMD(iv, perm, out)
		VMOVDQU(out, Mem{Base: dst, Index: cnt, Scale: 4})
		POPCNTL(r, r)
		ADDQ(r.As64(), cnt)
		VPADDD(inc, iv, iv)
		ADDQ(U8(8), i)
		JMP(LabelRef("te2_loop"))
		Label("te2_done")
		Store(cnt, ReturnIndex(0))
		Store(i, ReturnIndex(1))
		VZEROUPPER()
		RET()
	}
}

// topkPackLUT (8-lane compress permutations) and topkIotaY (0..7) are genTopKAVX2's tables,
// reused by genBlock16AVX2.
var topkPackLUT, topkIotaY Mem

// genBlock16AVX2 is genBlock16AVX512 on AVX2: a block's 16 keys in two ymm, and one signed
// compare per half for each key's rank: key j beats key i when key_j > key_i - [j < i] (keys
// are non-negative int32s, so at a lower lane "equal" counts too); the two halves' kept lanes
// are packed by the 8-lane permutation table.
func genBlock16AVX2() {
	low := GLOBL("block16LowAVX2", RODATA|NOPTR) // [i][lane 0..15] = 1 if lane < i
	for i := 0; i < 16; i++ {
		for l := 0; l < 16; l++ {
			v := uint32(0)
			if l < i {
				v = 1
			}
			DATA(64*i+4*l, U32(v))
		}
	}
	text("block16AVX2", "func(dst *int32, src *float32, nblocks int, n int)")
	doc(append([]string{"block16AVX2 is block16AVX512 with AVX2 (dst needs nblocks*n + 8 entries); it replaces:"}, block16Loop...)...)
	keys := AllocLocal(64)
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	nb := Load(Param("nblocks"), GP64())
	n := GP64()
	Load(Param("n"), n)
	m31, inc := ymmConst(0x7fffffff), ymmConst(16)
	iv0, iv1 := YMM(), YMM()
	VMOVDQU(topkIotaY, iv0)
	{
		e := ymmConst(8)
		VPADDD(e, iv0, iv1)
	}
	lp, lowp := GP64(), GP64()
	LEAQ(topkPackLUT, lp)
	LEAQ(low, lowp)
	Label("b16y_loop")
	TESTQ(nb, nb)
	JZ(LabelRef("b16y_done"))
	k0, k1 := YMM(), YMM()
	VPAND(Mem{Base: src}, m31, k0)
	VPAND(Mem{Base: src, Disp: 32}, m31, k1)
	VMOVDQU(k0, keys)
	VMOVDQU(k1, keys.Offset(32))
	mask := GP32()
	XORL(mask, mask)
	for i := 0; i < 16; i++ {
		b := YMM()
		VPBROADCASTD(keys.Offset(4*i), b)
		t0, t1 := YMM(), YMM()
		VPSUBD(Mem{Base: lowp, Disp: 64 * i}, b, t0)    // key_i - [lane < i], lanes 0-7
		VPSUBD(Mem{Base: lowp, Disp: 64*i + 32}, b, t1) // lanes 8-15
		VPCMPGTD(t0, k0, t0)                            // key_j beats key_i
		VPCMPGTD(t1, k1, t1)
		r, h := GP32(), GP32()
		VMOVMSKPS(t0, r)
		VMOVMSKPS(t1, h)
		SHLL(U8(8), h)
		ORL(h, r)
		keepBit(r, n, i, mask)
	}
	for half, iv := range []VecVirtual{iv0, iv1} {
		m := GP64()
		MOVL(mask, m.As32())
		if half == 1 {
			SHRL(U8(8), m.As32())
		}
		ANDL(U32(0xff), m.As32())
		sh := GP64()
		MOVQ(m, sh)
		SHLQ(U8(5), sh)
		perm, out := YMM(), YMM()
		VMOVDQU(Mem{Base: lp, Index: sh, Scale: 1}, perm)
		VPERMD(iv, perm, out)
		VMOVDQU(out, Mem{Base: dst})
		POPCNTL(m.As32(), m.As32())
		LEAQ(Mem{Base: dst, Index: m, Scale: 4}, dst)
		VPADDD(inc, iv, iv)
	}
	ADDQ(U8(64), src)
	DECQ(nb)
	JMP(LabelRef("b16y_loop"))
	Label("b16y_done")
	VZEROUPPER()
	RET()
}

// ymmBroadcast returns a ymm register holding r's 32 bits in every lane (VEX moves only: a
// legacy-SSE MOVD with dirty upper halves costs ~130 ns on the Zen 3 guests measured).
func ymmBroadcast(r Register) VecVirtual {
	x, y := XMM(), YMM()
	VMOVD(r, x)
	VPBROADCASTD(x, y)
	return y
}

// ymmConst returns a ymm register holding c in every lane.
func ymmConst(c uint32) VecVirtual {
	r := GP32()
	MOVL(U32(c), r)
	return ymmBroadcast(r)
}
