package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The AVX2 GEMM in outer-product form (the dot-form tiles above need a horizontal sum per
// output and, for fp16, one conversion per weight per 4 tokens; with 16 ymm registers they top
// out at 4x2). A block of 16 weight rows × k columns is first packed column by column into
// float32 (pack[c*16+j] = w[j][c], converted once per block), then a tile of up to 6 tokens ×
// 16 rows keeps 12 ymm accumulators: per column, two loads of packed weights, one broadcast
// of x per token and two fused multiply-adds per token. Each output lane sums its k products
// in column order from zero, so an element does not depend on the tile that computes it.

// packRows is the height of a packed weight block (two ymm), packTokens the tile width.
const (
	packRows   = 16
	packTokens = 6
)

func genGemmPacked() {
	for _, f16 := range []bool{true, false} {
		genPack8(f16)
	}
	for t := 1; t <= packTokens; t++ {
		genPackedTile(t)
	}
}

// genPack8 packs 8 rows: dst[c*16+j] = w[j*wstride+c] for j < 8, c < k (k a multiple of 8),
// converting fp16, with an 8x8 transpose in registers per 8 columns.
func genPack8(f16 bool) {
	en, et, es := elemName(f16)
	name := "pack" + en + "x8AVX2"
	text(name, "func(dst *float32, w "+et+", wstride int, k int)")
	conv := "w[j*wstride+c]"
	if f16 {
		conv = "F16ToF32(w[j*wstride+c])"
	}
	doc(
		name+" packs 8 weight rows column by column, 16 floats apart (k a multiple of 8); it replaces:",
		"",
		"\tfor c := 0; c < k; c++ {",
		"\t\tfor j := 0; j < 8; j++ { dst[c*16+j] = "+conv+" }",
		"\t}",
	)
	dst := Load(Param("dst"), GP64())
	w0 := Load(Param("w"), GP64())
	ws := Load(Param("wstride"), GP64())
	SHLQ(U8(es/2), ws) // bytes per row
	ws3 := GP64()
	LEAQ(Mem{Base: ws, Index: ws, Scale: 2}, ws3)
	w4 := GP64()
	LEAQ(Mem{Base: w0, Index: ws, Scale: 4}, w4)
	n := Load(Param("k"), GP64())
	SHRQ(U8(3), n) // groups of 8 columns
	lbl := name + "_loop"
	done := name + "_done"
	Label(lbl)
	CMPQ(n, Imm(0))
	JE(LabelRef(done))
	rowMem := func(j int) Mem {
		b := w0
		if j >= 4 {
			b = w4
		}
		switch j % 4 {
		case 0:
			return Mem{Base: b}
		case 1:
			return Mem{Base: b, Index: ws, Scale: 1}
		case 2:
			return Mem{Base: b, Index: ws, Scale: 2}
		}
		return Mem{Base: b, Index: ws3, Scale: 1}
	}
	r := make([]VecVirtual, 8)
	for j := range r {
		r[j] = YMM()
		loadW(isa{}, f16, rowMem(j), r[j])
	}
	// t[2p] = lo pairs, t[2p+1] = hi pairs of rows 2p, 2p+1
	t := make([]VecVirtual, 8)
	for p := 0; p < 4; p++ {
		t[2*p], t[2*p+1] = YMM(), YMM()
		VUNPCKLPS(r[2*p+1], r[2*p], t[2*p])
		VUNPCKHPS(r[2*p+1], r[2*p], t[2*p+1])
	}
	// s[4q+c] = column c (and c+4 in the high half) of rows 4q..4q+3
	s := make([]VecVirtual, 8)
	for q := 0; q < 2; q++ {
		a0, a1, b0, b1 := t[4*q], t[4*q+1], t[4*q+2], t[4*q+3]
		for c, src := range [][2]VecVirtual{{a0, b0}, {a0, b0}, {a1, b1}, {a1, b1}} {
			imm := uint8(0x44)
			if c%2 == 1 {
				imm = 0xEE
			}
			s[4*q+c] = YMM()
			VSHUFPS(U8(imm), src[1], src[0], s[4*q+c])
		}
	}
	for c := 0; c < 4; c++ {
		lo, hi := YMM(), YMM()
		VPERM2F128(U8(0x20), s[4+c], s[c], lo)
		VPERM2F128(U8(0x31), s[4+c], s[c], hi)
		VMOVUPS(lo, Mem{Base: dst, Disp: 4 * packRows * c})
		VMOVUPS(hi, Mem{Base: dst, Disp: 4 * packRows * (c + 4)})
	}
	ADDQ(U32(8*es), w0)
	ADDQ(U32(8*es), w4)
	ADDQ(U32(8*4*packRows), dst)
	DECQ(n)
	JMP(LabelRef(lbl))
	Label(done)
	VZEROUPPER()
	RET()
}

// genPackedTile: T tokens × 16 packed rows.
func genPackedTile(T int) {
	name := fmt.Sprintf("gemmPackedT%dAVX2", T)
	text(name, "func(y *float32, ystride int, x *float32, xstride int, wp *float32, k int, acc int)")
	doc(
		fmt.Sprintf("%s computes a %d-token × 16-row tile of GEMM from packed weights (k a multiple of 8); it replaces:", name, T),
		"",
		fmt.Sprintf("\tfor t := 0; t < %d; t++ {", T),
		"\t\tfor r := 0; r < 16; r++ {",
		"\t\t\tvar s float32",
		"\t\t\tfor c := 0; c < k; c++ { s = fma(x[t*xstride+c], wp[c*16+r], s) }",
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
	wp := Load(Param("wp"), GP64())
	kk := Load(Param("k"), GP64())
	SHLQ(U8(2), kk) // bytes of one x row
	acc := make([][2]VecVirtual, T)
	for t := range acc {
		for h := range 2 {
			acc[t][h] = YMM()
			VXORPS(acc[t][h], acc[t][h], acc[t][h])
		}
	}
	i := GP64() // byte offset into the x rows
	XORQ(i, i)
	const unroll = 4 // k is a multiple of 8
	Label(name + "_loop")
	CMPQ(i, kk)
	JGE(LabelRef(name + "_st"))
	for u := 0; u < unroll; u++ {
		w0, w1 := YMM(), YMM()
		VMOVUPS(Mem{Base: wp, Disp: 4 * packRows * u}, w0)
		VMOVUPS(Mem{Base: wp, Disp: 4*packRows*u + 32}, w1)
		for t := 0; t < T; t++ {
			b := YMM()
			VBROADCASTSS(Mem{Base: xp[t], Index: i, Scale: 1, Disp: 4 * u}, b)
			VFMADD231PS(w0, b, acc[t][0])
			VFMADD231PS(w1, b, acc[t][1])
		}
	}
	ADDQ(U32(4*unroll), i)
	ADDQ(U32(4*packRows*unroll), wp)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_st")
	y := Load(Param("y"), GP64())
	ys := Load(Param("ystride"), GP64())
	SHLQ(U8(2), ys)
	af := Load(Param("acc"), GP64())
	CMPQ(af, Imm(0))
	JE(LabelRef(name + "_set"))
	yt := GP64()
	MOVQ(y, yt)
	for t := 0; t < T; t++ {
		for h := range 2 {
			m := Mem{Base: yt, Disp: 32 * h}
			VADDPS(m, acc[t][h], acc[t][h])
			VMOVUPS(acc[t][h], m)
		}
		if t+1 < T {
			ADDQ(ys, yt)
		}
	}
	VZEROUPPER()
	RET()
	Label(name + "_set")
	for t := 0; t < T; t++ {
		for h := range 2 {
			VMOVUPS(acc[t][h], Mem{Base: y, Disp: 32 * h})
		}
		if t+1 < T {
			ADDQ(ys, y)
		}
	}
	VZEROUPPER()
	RET()
}
