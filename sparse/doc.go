// Package sparse holds qsparse's CPU kernels: top-K activation selection, column-major weight
// packs, sparse GEMV over them, and dense GEMV/GEMM over fp16 and float32 weights.
//
// # Why
//
// Decoding one token is bound by the bytes of weights it reads. With top-K activation
// sparsity (Q-Sparse, TEAL) only the weight columns whose input survives matter: y = Σ over
// active i of x_i·W[:, i]. Stored column-major, each active column is one contiguous run, so a
// token at 50% sparsity streams half the bytes.
//
// # Dense layout and API
//
// Matrices are row-major [rows=out_features][cols=in_features] as in GGUF and HF; fp16
// weights are IEEE binary16 bits in []uint16.
//
//	GemvF32(y, w, x, rows, cols)        y[r] = Σ_c w[r*cols+c]*x[c]
//	GemvF16(y, w16, x, rows, cols)
//	GemmF32(y, x, w, n, rows, cols)     y[t*rows+r] = Σ_c x[t*cols+c]*w[r*cols+c]
//	GemmF16(y, x, w16, n, rows, cols)
//	GemmF32Strided(y, ys, x, xs, w, ws, n, rows, cols)   strided views (attention: Q·Kᵀ, P·V)
//	SiLUMul(g, u)                       g[i] = SiLU(g[i])·u[i] (SwiGLU), float32 e^x ~1 ulp
//	Softmax(x, scale)                   in place, fixed summation order
//
// The functions run on the calling goroutine; a Pool (NewPool(threads)) runs the same
// operations split over persistent workers (output rows for GEMV; blocks of rows × tokens for
// GEMM) and Run(n, fn) as a generic parallel for (RunThreads(n, fn) also passes the thread
// number, for per-thread buffers). Pool calls do not allocate in steady state,
// and every output element is computed by one thread in a fixed order over work items whose
// boundaries depend only on the shapes, so results are bit-identical for any thread count.
//
// GEMM is blocked for the caches and registers: work items of up to 240 rows (≈192 KiB of
// fp16 weights, in L2, a multiple of 48) × 64 tokens (128 on AVX2). AVX-512 and pure Go use
// dot-form register tiles: 4 tokens × 3 rows (12 zmm accumulators), each accumulator a dot
// product over 16 columns at a time, reduced at the end of the tile; rows longer than 1536
// columns are cut in k-blocks of 512 so a 4-token activation tile stays in L1. AVX2 (16 ymm
// registers) uses the outer-product form instead: per k-block of at most 576 columns, each
// strip of 16 weight rows is converted once into float32 column by column, then tiles of 6
// tokens × 16 rows (12 ymm accumulators, one broadcast of x per token and column) run over
// it, each output lane a sequential fused multiply-add chain.
//
// Dense GEMV (a decoded token) reads every weight once, so it is a question of streaming:
// on AMD cores, fp16 rows of up to 2048 columns (SmolLM2's 576 and 1536) go one after the
// other through one kernel call, the whole matrix one sequential stream with a software
// prefetch 256 bytes ahead (faster there; on Intel slower than the tile, so the choice is made
// by CPUID vendor); other rows and float32 run the 1-token tile, 8 (AVX-512) or 4 (AVX2) rows at once
// sharing each load of x, prefetching the next tile's rows into L2. Both form each row's sum
// as the GEMM tiles do (one accumulator, 16 or 8 lanes in column order, then a fixed lane
// reduction).
//
// # Top-K selection
//
//	TopK(idx, x, k) []int32                 k largest |x_i|, ascending indices
//	TopKWeighted(idx, x, s, k, scratch)     k largest |x_i|·s_i (s: per-channel weight norms)
//	BlockTopN(idx, x, n, m)                 n largest |x_i| of every m consecutive channels
//	KeepCount(d, sparsity), Gather(vals, x, idx), Mask(dst, x, idx)
//
// The key of x_i is the bits of |x_i| (sign cleared), which order like magnitudes; +0 and -0
// tie and NaN ranks above +Inf. Ties are broken by the lower index, so the selection is a pure
// function of x and k. TopK is O(d): the threshold comes from a binary search over the key,
// each step one SIMD counting pass (pure Go: a radix select over 8+8+8+7-bit digits of the
// key, the later digits only over the threshold bucket's candidates), then one branch-free
// pass writes the survivors. BlockTopN takes each block's n-th largest key (keys carry the
// index, so they are distinct) from a sorted copy and keeps the keys at or above it in one
// branch-free pass; for M = 16 the SIMD backends rank a block's 16 keys in registers
// (block16AVX512, block16AVX2).
//
// # Pack layouts
//
// F16Cols (PackF16Cols, PackF16ColsFromF32): fp16, column-major. Column c — all output rows of
// input channel c — is Data[c*Stride : c*Stride+Rows], contiguous; Stride is Rows rounded up
// to a multiple of 64 (PadRows) and the padding rows are zero, so every column starts on a
// 128-byte boundary and kernels never handle a row tail.
//
// TernaryCols (PackTernary, QuantizeTernary): W[r][c] = t[r][c]·scale with t in {-1, 0, +1}
// and a per-tensor (len(Scale) == 1) or per-column (len(Scale) == Cols) scale, as column-major
// bit planes inside row blocks of Block = 2048 rows. In block b (rows/64 = bw words per plane),
// column c owns 2·bw consecutive uint64 words at BlockStart(b) + c·2·bw: the plus plane (bit
// r%64 of word r/64, r relative to the block, set when t = +1) then the minus plane (t = -1).
// Bit planes rather than packed 2-bit codes: both cost 2 bits per weight, but with AVX-512 a
// plane word is itself an opmask, so a column is applied to 16 rows by one merge-masked add
// with no decoding, where 2-bit codes need shifts, masks and compares per 16 lanes first.
// Row blocks rather than whole columns: a ternary column is short (1 KiB for 4096 rows), and
// inside a block a token's active columns are read in increasing address order from one
// region. A per-tensor scale is applied once to the finished sums; per-column scales are folded
// into the gathered inputs. The kernel keeps the sums of the +1 and of the -1 entries apart
// (two short dependency chains, one on the FP add pipes, one on the FMA pipes) and returns
// (plus - minus)·scale, the same float32 operations in the same order on every backend.
//
// TernaryQ8 (PackTernaryQ8, TernaryQ8FromCols): the same ternary matrix for the int8-activation
// kernel, as 2-bit codes (code = t + 1, as in HF BitNet checkpoints), column-major: column c
// is Codes[c*ColBytes():], one 64-byte line per 256 rows, each byte holding 4 rows (the row
// order inside a line, q8Pos, is the one the kernel's byte transpose produces). Codes rather
// than bit planes here, chosen by measurement: VPDPBUSD wants the weights of 4 columns of one
// row as the 4 bytes of a dword; from codes that costs 4 loads, 8 byte unpacks and one AND
// per 16 rows × 4 columns (64 weights per VPDPBUSD), from bit planes it would first need a
// VPMOVM2B per plane. One thread, 4096x11008 at 50 %: 0.26-0.35 ms for the int8 kernel on
// codes against 1.1-1.5 ms for the float kernel on bit planes. Whole columns rather than
// 256-row strips (the first version, strip-major 64-byte lines) because a token's active
// lines of a strip are scattered at ~50 % density and were fetched from DRAM nearly whole;
// column-major, every active column is one sequential run (1 KiB at 4096 rows). The float
// kernel keeps the bit planes, where a plane word is directly an opmask.
//
// # Sparse GEMV
//
//	SparseGemvF16(y, w *F16Cols, x, idx)           y[r] = Σ_j x[idx[j]]·W[r][idx[j]]
//	SparseGemvTernary(y, w *TernaryCols, x, idx)
//	(*Pool).SparseGemvF16 / SparseGemvTernary       output rows split across threads
//	(*Pool).SparseGemvF16Multi(ys, ws, x, idx)      several matrices, one input, one mask
//	(*Pool).SparseGemvTernaryMulti(ys, ws, x, idx)  (q/k/v; gate/up) in one parallel job
//	GemmF16Cols(y, x, w *F16Cols, row0, rows, n)   prefill GEMM on a pack (rows [row0, row0+rows));
//	(*Pool).GemmF16Cols                             each item transposes its rows into an L2
//	                                                block once per 128 tokens, then runs the
//	                                                row-major GEMM tiles: equal to GemmF16 bit for bit
//
// Only the listed columns are read. fp16: the active list is cut into two halves and the
// rows into chunks of at most 4096 (16 KiB of float32 sums, in L1); each work item sums one
// half over one whole chunk, so every active column is one sequential run of 2·chunk bytes,
// taken 8 (AVX-512) or 4 (AVX2) columns per pass; y = (first half) + (second half). Ternary:
// row chunks of at most 1024 inside the 2048-row blocks, 4 columns per pass, the +1 and -1
// sums kept apart. Each partial sum runs over its columns in idx order and the split depends
// only on len(idx) and the shapes, so results do not depend on the thread count. Ternary
// results are exact: the same sequence of float32 additions on every backend.
//
// The AVX-512 fp16 kernel (sparseF16AVX512) software-prefetches, while it sums rows i..i+31
// of a group of 8 columns, the same cache line of the next group's 8 columns into L2: those
// addresses are known from idx but not sequential, so the hardware prefetchers would only
// find each new column after its first misses. fp16 packs of 4 MiB or more are 2 MiB-aligned
// and marked MADV_HUGEPAGE on Linux, since every active column is a run at a scattered address.
//
//	SparseGemvTernaryQ8(y, w *TernaryQ8, x, idx)   int8 activations, exact int32 sums
//	(*TernaryQ8Scratch).SparseGemvTernaryQ8         the same with caller-owned buffers
//	(*Pool).SparseGemvTernaryQ8                     256-row strips split across threads
//
// The int8 variant does what BitNet b1.58 does by design: the active inputs (times the
// per-column scales, if any) are quantized per call with absmax to int8 (QuantizeQ8: sx =
// 127/max|v|, q = roundEven(v·sx)), Σ q·t is summed exactly in int32 and y = float32(sum) ·
// scale/sx. Since Σ q·(t+1) - Σ q = Σ q·t, the kernel multiplies the unsigned codes by the
// signed activations directly (VPDPBUSD) and subtracts Σ q once. Results are bit-identical on
// every backend and thread count (integer sums, one float32 epilogue), and differ from
// SparseGemvTernary by the activation rounding (each input off by at most max|v|/254). Work
// items are row chunks of ≤ 4096 rows × four segments of the active columns (int32 partial sums,
// added exactly). The AVX-512 VNNI kernel takes 8 columns per pass down a chunk: per 256-row
// strip it loads the 16 zmm of int32 sums, adds the 8 columns' lines, stores them (L1), and
// prefetches (into L2) the lines of the columns 16 ahead. The avx2 backend (and avx512 without VNNI) runs an
// AVX2 version (VPMADDUBSW, VPMADDWD), purego the pure-Go twin.
//
// # Backends
//
// "purego" (always available), "avx2" (AVX2+FMA+F16C) and "avx512" (AVX-512 F/BW/VL) on
// amd64. The amd64 kernels are generated with avo by the program in _asm (its own go.mod):
//
//	cd sparse/_asm && go run . -out ../kernels_amd64.s -stubs ../kernels_amd64.go -pkg sparse
//
// The int8 ternary kernels come from a second generator:
//
//	cd sparse/_asm && go run ./ternary -out ../ternary_amd64.s -stubs ../ternary_stub_amd64.go -pkg sparse
//
// Each generated stub's doc comment is the pure-Go loop it replaces. The best backend the CPU
// supports (golang.org/x/sys/cpu; GODEBUG=cpu.avx512f=off and similar are honoured) is chosen at
// start-up; QSPARSE_KERNEL=purego|avx2|avx512 forces one, Backend() reports the one in use, and
// SetBackend switches (tests and benchmarks). Building with -tags purego, or on another
// architecture, leaves only the pure-Go kernels.
package sparse
