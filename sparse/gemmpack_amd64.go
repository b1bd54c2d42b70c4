//go:build amd64 && !purego

package sparse

// The AVX2 GEMM over packed weights (generator: _asm/gemmpack.go). For every k-block of a
// GEMM item, each strip of packRows weight rows is converted to float32 and packed column by
// column into the thread's scratch (pack[c*packRows+j] = w[r+j][kb+c]), then every tile of up
// to packTokens tokens of the item runs over it: 12 ymm accumulators, two loads of weights
// and one broadcast of x per token and column, no horizontal sums. With 16 ymm registers the
// dot-form tiles stop at 4 tokens × 2 rows (8 accumulators) and convert each fp16 weight once
// per 4 tokens; here it is once per item (64 tokens).
//
// Every output element is, per k-block, a sequential fused multiply-add chain over the block's
// columns from zero, added to y (or stored for the first block), then the column tail in Go;
// the k-blocks depend only on cols. So an element's bits do not depend on the tile, strip or
// item that computes it, nor on the thread count.

const (
	packRows   = 16
	packTokens = 6
	// packKCMax bounds the k-block: a 16-row strip of 576 columns is 36 KiB of float32 (the
	// tiles stream it from L1/L2). Measured on the Sapphire-Rapids-class Xeon, one thread,
	// GFLOP per CPU-second on 512 tokens (576x576, 1536x576, 576x1536): 256 -> 97 90 90,
	// 576 -> 101 96 96, 128 -> 94 90 89.
	packKCMax = 576
)

// packItemTokens is the token width of a GEMM work item: each item packs its weights once
// (one thread, 512 tokens: one item of 512 measured 3-8% slower than four of 128, whose
// activation panels of 128 x 576 floats stay in L2).
const packItemTokens = 128

// packStrip8 packs 8 rows (packF16x8AVX2 / packF32x8AVX2), called directly so that the
// scratch passed to it does not escape.
func packStrip8[W uint16 | float32](dst *float32, w *W, ws, k int) {
	switch w := any(w).(type) {
	case *uint16:
		packF16x8AVX2(dst, w, ws, k)
	case *float32:
		packF32x8AVX2(dst, w, ws, k)
	}
}

// packedTile runs the tt-token packed tile (1 <= tt <= packTokens).
func packedTile(tt int, y *float32, ys int, x *float32, xs int, wp *float32, k, acc int) {
	switch tt {
	case 1:
		gemmPackedT1AVX2(y, ys, x, xs, wp, k, acc)
	case 2:
		gemmPackedT2AVX2(y, ys, x, xs, wp, k, acc)
	case 3:
		gemmPackedT3AVX2(y, ys, x, xs, wp, k, acc)
	case 4:
		gemmPackedT4AVX2(y, ys, x, xs, wp, k, acc)
	case 5:
		gemmPackedT5AVX2(y, ys, x, xs, wp, k, acc)
	default:
		gemmPackedT6AVX2(y, ys, x, xs, wp, k, acc)
	}
}

// packKC is the k-block for kMain vector columns (a multiple of 8): kMain split evenly into
// blocks of at most packKCMax, each a multiple of 8. It depends only on kMain.
func packKC(kMain int) int {
	nb := (kMain + packKCMax - 1) / packKCMax
	return ((kMain+nb-1)/nb + 7) &^ 7
}

// packScratch is how many float32s gemmPackedBlock needs: one packed strip and one tile of
// output for a partial strip.
func packScratch(cols int) int {
	return packRows*packKC(max(cols&^7, 8)) + packTokens*packRows
}

// gemmPackedBlock computes y[t*rows+r] = Σ_c x[t*cols+c]*w[r*cols+c] for tokens [t0, t1) and
// rows [r0, r1) (see the file comment); toF32 widens one weight for the column tail and the
// rows of a partial strip.
func gemmPackedBlock[W uint16 | float32](toF32 func(W) float32,
	y, x []float32, w []W, rows, cols, t0, t1, r0, r1 int, scratch []float32) {
	_ = y[(t1-1)*rows+r1-1]
	if cols > 0 {
		_ = x[t1*cols-1]
		_ = w[r1*cols-1]
	}
	gemmPacked(toF32, y, rows, x, cols, w, cols, cols, t0, t1, r0, r1, scratch)
}

// gemmPacked computes y[t*ys+r] = Σ_{c<cols} x[t*xs+c]*w[r*ws+c] for tokens [t0, t1) and rows
// [r0, r1); the caller checked the sizes.
func gemmPacked[W uint16 | float32](toF32 func(W) float32,
	y []float32, ys int, x []float32, xs int, w []W, ws, cols, t0, t1, r0, r1 int, scratch []float32) {
	kMain := cols &^ 7
	if kMain == 0 {
		for t := t0; t < t1; t++ {
			clear(y[t*ys+r0 : t*ys+r1])
		}
		if cols == 0 {
			return
		}
	}
	if kMain > 0 {
		kc := packKC(kMain)
		wp := scratch[:packRows*kc]
		tmp := scratch[packRows*kc : packRows*kc+packTokens*packRows]
		for kb := 0; kb < kMain; kb += kc {
			kn := min(kc, kMain-kb)
			acc := min(kb, 1)
			for r := r0; r < r1; r += packRows {
				nr := min(packRows, r1-r)
				g := 0
				for ; g+8 <= nr; g += 8 {
					packStrip8(&wp[g], &w[(r+g)*ws+kb], ws, kn)
				}
				if g < nr { // a partial strip: the rest in Go, zero rows after it
					for c := 0; c < kn; c++ {
						col := wp[c*packRows : c*packRows+packRows]
						for j := g; j < packRows; j++ {
							if j < nr {
								col[j] = toF32(w[(r+j)*ws+kb+c])
							} else {
								col[j] = 0
							}
						}
					}
				}
				for t := t0; t < t1; t += packTokens {
					tt := min(packTokens, t1-t)
					if nr == packRows {
						packedTile(tt, &y[t*ys+r], ys, &x[t*xs+kb], xs, &wp[0], kn, acc)
						continue
					}
					packedTile(tt, &tmp[0], packRows, &x[t*xs+kb], xs, &wp[0], kn, 0)
					for i := range tt {
						yt := y[(t+i)*ys+r : (t+i)*ys+r+nr]
						src := tmp[i*packRows : i*packRows+nr]
						if acc != 0 {
							for j, v := range src {
								yt[j] += v
							}
						} else {
							copy(yt, src)
						}
					}
				}
			}
		}
	}
	if kMain < cols {
		for t := t0; t < t1; t++ {
			xt := x[t*xs : t*xs+cols]
			for r := r0; r < r1; r++ {
				wr := w[r*ws : r*ws+cols]
				var v float32
				for c := kMain; c < cols; c++ {
					v += xt[c] * toF32(wr[c])
				}
				y[t*ys+r] += v
			}
		}
	}
}
