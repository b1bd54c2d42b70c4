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
	// packKCMax bounds the k-block: a 16-row strip of packKCMax columns is 16 KiB of float32.
	packKCMaxDefault = 256
)

// packItemTokens is the token width of a GEMM work item: each item packs its weights once.
var packItemTokens = 128

var packKCMax = packKCMaxDefault

// packedGemm is the kernel table of one packed-GEMM backend.
type packedGemm struct {
	packF16 func(dst *float32, w *uint16, wstride, k int)  // 8 rows, see packF16x8AVX2
	packF32 func(dst *float32, w *float32, wstride, k int) // 8 rows
	tiles   [packTokens]func(y *float32, ystride int, x *float32, xstride int, wp *float32, k int, acc int)
}

var packedAVX2 = packedGemm{
	packF16: packF16x8AVX2,
	packF32: packF32x8AVX2,
	tiles: [packTokens]func(y *float32, ystride int, x *float32, xstride int, wp *float32, k int, acc int){
		gemmPackedT1AVX2, gemmPackedT2AVX2, gemmPackedT3AVX2, gemmPackedT4AVX2, gemmPackedT5AVX2, gemmPackedT6AVX2,
	},
}

// packKC is the k-block for kMain vector columns (a multiple of 8): kMain split evenly into
// blocks of at most packKCMax, each a multiple of 8. It depends only on kMain.
func packKC(kMain int) int {
	nb := (kMain + packKCMax - 1) / packKCMax
	return ((kMain+nb-1)/nb + 7) &^ 7
}

// scratch is how many float32s gemmPackedBlock needs: one packed strip and one tile of output
// for a partial strip.
func (p *packedGemm) scratch(cols int) int {
	return packRows*packKC(max(cols&^7, 8)) + packTokens*packRows
}

// gemmPackedBlock computes y[t*rows+r] = Σ_c x[t*cols+c]*w[r*cols+c] for tokens [t0, t1) and
// rows [r0, r1) (see the file comment); toF32 widens one weight for the column tail and the
// rows of a partial strip.
func gemmPackedBlock[W uint16 | float32](p *packedGemm, pack func(dst *float32, w *W, wstride, k int), toF32 func(W) float32,
	y, x []float32, w []W, rows, cols, t0, t1, r0, r1 int, scratch []float32) {
	_ = y[(t1-1)*rows+r1-1]
	kMain := cols &^ 7
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
					pack(&wp[g], &w[(r+g)*cols+kb], cols, kn)
				}
				if g < nr { // a partial strip: the rest in Go, zero rows after it
					for c := 0; c < kn; c++ {
						col := wp[c*packRows : c*packRows+packRows]
						for j := g; j < packRows; j++ {
							if j < nr {
								col[j] = toF32(w[(r+j)*cols+kb+c])
							} else {
								col[j] = 0
							}
						}
					}
				}
				for t := t0; t < t1; t += packTokens {
					tt := min(packTokens, t1-t)
					tile := p.tiles[tt-1]
					if nr == packRows {
						tile(&y[t*rows+r], rows, &x[t*cols+kb], cols, &wp[0], kn, acc)
						continue
					}
					tile(&tmp[0], packRows, &x[t*cols+kb], cols, &wp[0], kn, 0)
					for i := range tt {
						yt := y[(t+i)*rows+r : (t+i)*rows+r+nr]
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
