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
//
// The functions run on the calling goroutine; a Pool (NewPool(threads)) runs the same
// operations split over persistent workers (output rows for GEMV; blocks of rows × tokens for
// GEMM) and Run(n, fn) as a generic parallel for. Pool calls do not allocate in steady state,
// and every output element is computed by one thread in a fixed order over work items whose
// boundaries depend only on the shapes, so results are bit-identical for any thread count.
//
// GEMM is blocked for the caches and registers: work items of up to 240 rows (≈192 KiB of
// fp16 weights, in L2) × 64 tokens; inside an item, register tiles of 4 tokens × 3 rows
// (AVX-512: 12 zmm accumulators) or 4 × 2 (AVX2), each accumulator a dot product over 16 (8)
// columns at a time, reduced at the end of the tile; rows longer than 1536 columns are cut in
// k-blocks of 512 so a 4-token activation tile stays in L1.
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
// function of x and k. TopK is O(d): a radix select over 11+11+9-bit digits of the key (the
// later digits only over the candidates of the threshold bucket, stopping as soon as a bucket
// is taken whole) finds the threshold, then one branch-free pass writes the survivors.
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
// # Sparse GEMV
//
//	SparseGemvF16(y, w *F16Cols, x, idx)           y[r] = Σ_j x[idx[j]]·W[r][idx[j]]
//	SparseGemvTernary(y, w *TernaryCols, x, idx)
//	(*Pool).SparseGemvF16 / SparseGemvTernary       output rows split across threads
//	(*Pool).SparseGemvF16Multi(ys, ws, x, idx)      several matrices, one input, one mask
//	(*Pool).SparseGemvTernaryMulti(ys, ws, x, idx)  (q/k/v; gate/up) in one parallel job
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
// # Backends
//
// "purego" (always available), "avx2" (AVX2+FMA+F16C) and "avx512" (AVX-512 F/BW/VL) on
// amd64. The amd64 kernels are generated with avo by the program in _asm (its own go.mod):
//
//	cd sparse/_asm && go run . -out ../kernels_amd64.s -stubs ../kernels_amd64.go -pkg sparse
//
// Each generated stub's doc comment is the pure-Go loop it replaces. The best backend the CPU
// supports (golang.org/x/sys/cpu; GODEBUG=cpu.avx512f=off and similar are honoured) is chosen at
// start-up; QSPARSE_KERNEL=purego|avx2|avx512 forces one, Backend() reports the one in use, and
// SetBackend switches (tests and benchmarks). Building with -tags purego, or on another
// architecture, leaves only the pure-Go kernels.
package sparse
