// Command ternary generates qsparse's int8-activation ternary kernels (../../ternary_amd64.s and
// its Go stub ../../ternary_stub_amd64.go, and the shared constants in ../../ternary_consts.go)
// with avo:
//
//	go generate ./sparse    (or: cd sparse/_asm && go run ./ternary)
//
// It is separate from the main generator (../main.go, kernels_amd64.s) so the two can be
// regenerated independently.
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

func main() {
	ConstraintExpr("amd64,!purego")
	genQ8Cols()
	genQ8ColsAVX2()
	writeGoConsts()
	Generate()
}

// q8PFPairs: how many pairs of 4-column groups ahead genQ8Cols prefetches (written to
// ../../ternary_consts.go for the Go side). Measured on 4096x11008 at 50 %, data from DRAM,
// 2 threads (bar report, best of 40, three runs each): 1 pair 0.49-0.62 ms, 2 pairs
// 0.42-0.55 ms, 4 pairs 0.42-0.55 ms (PREFETCHT0); 2 pairs with PREFETCHT1 0.27-0.45 ms.
const q8PFPairs = 2

// genQ8Cols: the int8 ternary GEMV over column-major 2-bit codes: for each pair of 4-column
// groups, walk the row strips of the chunk (each column is one sequential run of nstrips·64
// bytes, 1 KiB at 4096 rows), and per 256-row strip load its 16 int32 sums, add the 8
// columns with the byte transpose + AND + VPDPBUSD of genQ8Strip, store them back (L1).
// The sums are left scaled (accumulator 4a+s holds 4^s times its rows' sums); the caller
// shifts them back. Every line of the 8 columns q8PFPairs pairs ahead is prefetched into L2
// (PREFETCHT1: that far ahead, PREFETCHT0 would evict the sums from L1) at the same row
// offset while the current pair is summed.
func genQ8Cols() {
	name := "ternaryQ8ColsAVX512"
	TEXT(name, NOSPLIT, "func(acc *int32, nstrips int, codes *byte, colBytes int, idx *int32, qx *int32, ngroups int)")
	Pragma("noescape")
	Doc(name+" adds, with AVX-512 VNNI (VPDPBUSD), the active columns of a TernaryQ8 row chunk to",
		"acc (nstrips·256 int32 sums, each 4^(row/16%4) times the plain sum); ngroups is even, idx",
		fmt.Sprintf("holds 4·(ngroups+%d) column indices (the last %d are read for prefetch only) and qx[g] packs", 2*q8PFPairs, 8*q8PFPairs),
		"the int8 activations of columns idx[4g..4g+3] (byte k = column k). It replaces:",
		"",
		"\tfor g := 0; g < ngroups; g++ {",
		"\t\tfor k := 0; k < 4; k++ {",
		"\t\t\tq := int32(int8(qx[g] >> (8 * k)))",
		"\t\t\tcol := codes[int(idx[4*g+k])*colBytes:]",
		"\t\t\tfor r := 0; r < 256*nstrips; r++ {",
		"\t\t\t\tpos := q8Pos[r%256]",
		"\t\t\t\tacc[r] += q * int32(col[r/256*64+int(pos>>2)]>>(2*(pos&3))&3) << (2 * (pos & 3))",
		"\t\t\t}",
		"\t\t}",
		"\t}",
	)
	np := AllocLocal(8 * 8)
	gslot := AllocLocal(8)
	{
		z := GP64()
		XORQ(z, z)
		MOVQ(z, gslot)
	}
	masks := []VecPhysical{Z16, Z17, Z18, Z19}
	{
		t := GP32()
		for s, m := range masks {
			MOVL(U32(uint32(0x03030303)<<(2*s)), t)
			VPBROADCASTD(t, m)
		}
	}
	acc := []VecPhysical{Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15}
	q := Z20
	c := []VecPhysical{Z21, Z22, Z23, Z24}
	u := []VecPhysical{Z25, Z26, Z27, Z28}
	tmp := []VecPhysical{Z29, Z30, Z31}

	Label("q8c_pair")
	{
		g := GP64()
		MOVQ(gslot, g)
		ng := Load(Param("ngroups"), GP64())
		CMPQ(g, ng)
		JGE(LabelRef("q8c_done"))
		idx := Load(Param("idx"), GP64())
		SHLQ(U8(4), g)
		ADDQ(g, idx) // &idx[4g]
		codes := Load(Param("codes"), GP64())
		cb := Load(Param("colBytes"), GP64())
		// column pointers q8PFPairs pairs ahead (idx is padded by 8·q8PFPairs entries)
		for k := 0; k < 8; k++ {
			a := GP64()
			MOVLQSX(Mem{Base: idx, Disp: 4 * (8*q8PFPairs + k)}, a)
			IMULQ(cb, a)
			ADDQ(codes, a)
			MOVQ(a, np.Offset(8*k))
		}
		cp := make([]GPVirtual, 8)
		for k := 0; k < 8; k++ {
			cp[k] = GP64()
			MOVLQSX(Mem{Base: idx, Disp: 4 * k}, cp[k])
			IMULQ(cb, cp[k])
			ADDQ(codes, cp[k])
		}
		g4 := GP64()
		MOVQ(gslot, g4)
		qx := Load(Param("qx"), GP64())
		LEAQ(Mem{Base: qx, Index: g4, Scale: 4}, qx)
		accp := Load(Param("acc"), GP64())
		end := Load(Param("nstrips"), GP64())
		SHLQ(U8(6), end)
		off := GP64()
		XORQ(off, off)
		Label("q8c_strip")
		for k := 0; k < 8; k++ {
			t := GP64()
			MOVQ(np.Offset(8*k), t)
			PREFETCHT1(Mem{Base: t, Index: off, Scale: 1})
		}
		for i := range acc {
			VMOVDQU32(Mem{Base: accp, Disp: 64 * i}, acc[i])
		}
		for h := 0; h < 2; h++ {
			VPBROADCASTD(Mem{Base: qx, Disp: 4 * h}, q)
			for k := 0; k < 4; k++ {
				VMOVDQU64(Mem{Base: cp[4*h+k], Index: off, Scale: 1}, c[k])
			}
			VPUNPCKLBW(c[1], c[0], u[0])
			VPUNPCKHBW(c[1], c[0], u[1])
			VPUNPCKLBW(c[3], c[2], u[2])
			VPUNPCKHBW(c[3], c[2], u[3])
			VPUNPCKLWD(u[2], u[0], c[0])
			VPUNPCKHWD(u[2], u[0], c[1])
			VPUNPCKLWD(u[3], u[1], c[2])
			VPUNPCKHWD(u[3], u[1], c[3])
			i := 0
			for a := 0; a < 4; a++ {
				for s := 0; s < 4; s++ {
					tm := tmp[i%len(tmp)]
					i++
					VPANDD(masks[s], c[a], tm)
					VPDPBUSD(q, tm, acc[4*a+s])
				}
			}
		}
		for i := range acc {
			VMOVDQU32(acc[i], Mem{Base: accp, Disp: 64 * i})
		}
		ADDQ(U32(1024), accp)
		ADDQ(U8(64), off)
		CMPQ(off, end)
		JL(LabelRef("q8c_strip"))
		g2 := GP64()
		MOVQ(gslot, g2)
		ADDQ(U8(2), g2)
		MOVQ(g2, gslot)
		JMP(LabelRef("q8c_pair"))
	}
	Label("q8c_done")
	VZEROUPPER()
	RET()
}

// genQ8ColsAVX2: genQ8Cols with AVX2 (no VNNI), one group of 4 columns per pass: the 64-byte
// strip line of each column is taken as two 32-byte halves (128-bit lanes q = 0,1 and 2,3),
// transposed the same way, and each (register a, bit pair s) product is VPMADDUBSW (code·4^s
// ≤ 128 times q, |pair sum| ≤ 32512: no saturation) then VPMADDWD by 1 into int32, added to
// the sums in acc. Half h of accumulator 4a+s holds rows 16(4a+s)+8h .. +7.
func genQ8ColsAVX2() {
	name := "ternaryQ8ColsAVX2"
	TEXT(name, NOSPLIT, "func(acc *int32, nstrips int, codes *byte, colBytes int, idx *int32, qx *int32, ngroups int)")
	Pragma("noescape")
	Doc(name+" is ternaryQ8ColsAVX512 with AVX2 (VPMADDUBSW and VPMADDWD instead of VPDPBUSD);",
		"it replaces the same loop.")
	masks := []VecPhysical{Y1, Y2, Y3, Y4}
	t := GP32()
	for s, m := range masks {
		MOVL(U32(uint32(0x03030303)<<(2*s)), t)
		VMOVD(t, X15)
		VPBROADCASTD(X15, m)
	}
	ones := Y5
	MOVL(U32(0x00010001), t)
	VMOVD(t, X15)
	VPBROADCASTD(X15, ones)
	q := Y6
	c := []VecPhysical{Y7, Y8, Y9, Y10}
	u := []VecPhysical{Y11, Y12, Y13, Y14}
	tmp := []VecPhysical{Y11, Y12}

	idx := Load(Param("idx"), GP64())
	qx := Load(Param("qx"), GP64())
	n := Load(Param("ngroups"), GP64())
	TESTQ(n, n)
	JE(LabelRef("q8ca_done"))
	Label("q8ca_group")
	codes := Load(Param("codes"), GP64())
	cb := Load(Param("colBytes"), GP64())
	addr := []GPVirtual{GP64(), GP64(), GP64(), GP64()}
	for k := 0; k < 4; k++ {
		MOVLQSX(Mem{Base: idx, Disp: 4 * k}, addr[k])
		IMULQ(cb, addr[k])
		ADDQ(codes, addr[k])
	}
	VPBROADCASTD(Mem{Base: qx}, q)
	accp := Load(Param("acc"), GP64())
	ns := Load(Param("nstrips"), GP64())
	Label("q8ca_strip")
	for h := 0; h < 2; h++ {
		for k := 0; k < 4; k++ {
			VMOVDQU(Mem{Base: addr[k], Disp: 32 * h}, c[k])
		}
		VPUNPCKLBW(c[1], c[0], u[0])
		VPUNPCKHBW(c[1], c[0], u[1])
		VPUNPCKLBW(c[3], c[2], u[2])
		VPUNPCKHBW(c[3], c[2], u[3])
		VPUNPCKLWD(u[2], u[0], c[0])
		VPUNPCKHWD(u[2], u[0], c[1])
		VPUNPCKLWD(u[3], u[1], c[2])
		VPUNPCKHWD(u[3], u[1], c[3])
		for a := 0; a < 4; a++ {
			for s := 0; s < 4; s++ {
				x := tmp[s%2]
				VPAND(masks[s], c[a], x)
				VPMADDUBSW(q, x, x)
				VPMADDWD(ones, x, x)
				m := Mem{Base: accp, Disp: 64*(4*a+s) + 32*h}
				VPADDD(m, x, x)
				VMOVDQU(x, m)
			}
		}
	}
	for k := 0; k < 4; k++ {
		ADDQ(U8(64), addr[k])
	}
	ADDQ(U32(1024), accp)
	DECQ(ns)
	JNE(LabelRef("q8ca_strip"))
	ADDQ(U8(16), idx)
	ADDQ(U8(4), qx)
	DECQ(n)
	JNE(LabelRef("q8ca_group"))
	Label("q8ca_done")
	VZEROUPPER()
	RET()
}
