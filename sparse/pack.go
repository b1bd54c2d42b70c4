package sparse

import (
	"fmt"
	"math"

	"github.com/qsparse/qsparse/internal/hugepage"
)

// PadRows is the row padding of column-major packs: every column holds a multiple of 64 rows,
// so a column starts on a 128-byte boundary (fp16) or a whole uint64 word (ternary planes),
// and kernels never need a row tail.
const PadRows = 64

func padRows(rows int) int { return (rows + PadRows - 1) / PadRows * PadRows }

// F16Cols is an fp16 matrix stored column-major for sparse GEMV: column c (all output rows of
// input channel c) is Data[c*Stride : c*Stride+Rows], contiguous, and Stride = Rows rounded up
// to a multiple of PadRows (padding rows are zero). A token whose active inputs are idx reads
// only len(idx) columns, each one sequential run of 2*Stride bytes.
type F16Cols struct {
	Rows, Cols int
	Stride     int      // elements between the starts of consecutive columns
	Data       []uint16 // IEEE fp16 bits, len Cols*Stride
}

// NewF16Cols allocates a zero rows×cols pack.
func NewF16Cols(rows, cols int) *F16Cols {
	s := padRows(rows)
	return &F16Cols{Rows: rows, Cols: cols, Stride: s, Data: hugepage.Slice[uint16](cols * s)}
}

// PackF16Cols transposes the row-major fp16 matrix w (rows×cols) into a column-major pack.
func PackF16Cols(w []uint16, rows, cols int) (*F16Cols, error) {
	if rows < 0 || cols < 0 || len(w) != rows*cols {
		return nil, fmt.Errorf("sparse: PackF16Cols: %d values for a %d×%d matrix; pass the row-major weights of the whole matrix", len(w), rows, cols)
	}
	p := NewF16Cols(rows, cols)
	for r := 0; r < rows; r++ {
		row := w[r*cols : r*cols+cols]
		for c, v := range row {
			p.Data[c*p.Stride+r] = v
		}
	}
	return p, nil
}

// PackF16ColsFromF32 is PackF16Cols from float32 weights (rounded to nearest even fp16).
func PackF16ColsFromF32(w []float32, rows, cols int) (*F16Cols, error) {
	if rows < 0 || cols < 0 || len(w) != rows*cols {
		return nil, fmt.Errorf("sparse: PackF16ColsFromF32: %d values for a %d×%d matrix; pass the row-major weights of the whole matrix", len(w), rows, cols)
	}
	p := NewF16Cols(rows, cols)
	for r := 0; r < rows; r++ {
		row := w[r*cols : r*cols+cols]
		for c, v := range row {
			p.Data[c*p.Stride+r] = F32ToF16(v)
		}
	}
	return p, nil
}

// At returns W[r][c] as float32.
func (p *F16Cols) At(r, c int) float32 { return F16ToF32(p.Data[c*p.Stride+r]) }

// Bytes returns the size of the pack's weight data.
func (p *F16Cols) Bytes() int64 { return int64(len(p.Data)) * 2 }

// TernaryCols is a ternary matrix W[r][c] = t[r][c] * scale, t in {-1, 0, +1}, stored as
// column-major bit planes inside row blocks of Block rows (a multiple of 64; the last block
// may be shorter). Block b holds rows [b*Block, min((b+1)*Block, padded Rows)); let
// bw = its rows/64. Inside block b, column c owns 2*bw consecutive words starting at
// BlockStart(b) + c*2*bw: the plus plane (bit r%64 of word r/64, r relative to the block, set
// when t = +1) then the minus plane (t = -1). Padding bits are zero. Scale has 1 element
// (per-tensor scale) or Cols elements (per-column scale).
//
// Bit planes rather than packed 2-bit codes: both cost 2 bits per weight, but with AVX-512 a
// plane word is itself an opmask, so applying a column to 16 rows takes one merge-masked add
// (or fused multiply-add) and no decoding, where 2-bit codes need shifts, masks and compares
// per 16 lanes first. Row blocks rather than whole columns: a ternary column is short (a
// 4096-row column is 1 KiB), so whole-column runs scattered over the matrix leave the kernel
// waiting on memory; inside a block, the active columns of a token are read in increasing
// address order from one contiguous region, which the hardware prefetchers stream. With Block
// >= Rows the layout is plainly column-major.
//
// The int8-activation kernel uses a different layout of the same trits, 2-bit codes
// (TernaryQ8, in ternaryq8.go), because VPDPBUSD needs bytes, not masks; the exact float32
// kernel stays on bit planes.
type TernaryCols struct {
	Rows, Cols int
	Block      int
	Planes     []uint64
	Scale      []float32
}

// TernaryBlock is the row-block height PackTernary uses.
const TernaryBlock = 2048

// NumBlocks returns the number of row blocks.
func (p *TernaryCols) NumBlocks() int { return (padRows(p.Rows) + p.Block - 1) / p.Block }

// BlockWords returns the words per plane per column in block b.
func (p *TernaryCols) BlockWords(b int) int {
	return min(p.Block, padRows(p.Rows)-b*p.Block) / 64
}

// BlockStart returns the index in Planes of block b's first word.
func (p *TernaryCols) BlockStart(b int) int { return b * p.Cols * 2 * (p.Block / 64) }

// planeWord returns the index of the plus-plane word holding row r of column c, and the
// distance to the matching minus-plane word.
func (p *TernaryCols) planeWord(r, c int) (int, int) {
	b := r / p.Block
	bw := p.BlockWords(b)
	return p.BlockStart(b) + c*2*bw + (r-b*p.Block)/64, bw
}

// PackTernary packs the row-major ternary matrix t (rows×cols, values -1, 0, +1) with scale
// (len 1: per tensor; len cols: per column).
func PackTernary(t []int8, scale []float32, rows, cols int) (*TernaryCols, error) {
	if rows < 0 || cols < 0 || len(t) != rows*cols {
		return nil, fmt.Errorf("sparse: PackTernary: %d values for a %d×%d matrix; pass the whole row-major matrix", len(t), rows, cols)
	}
	if len(scale) != 1 && len(scale) != cols {
		return nil, fmt.Errorf("sparse: PackTernary: %d scales for %d columns; pass 1 (per tensor) or one per column", len(scale), cols)
	}
	p := &TernaryCols{Rows: rows, Cols: cols, Block: TernaryBlock, Scale: append([]float32(nil), scale...)}
	p.Planes = make([]uint64, 2*cols*padRows(rows)/64)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			wi, bw := p.planeWord(r, c)
			switch t[r*cols+c] {
			case 0:
			case 1:
				p.Planes[wi] |= 1 << (r % 64)
			case -1:
				p.Planes[wi+bw] |= 1 << (r % 64)
			default:
				return nil, fmt.Errorf("sparse: PackTernary: value %d at row %d column %d is not -1, 0 or +1", t[r*cols+c], r, c)
			}
		}
	}
	return p, nil
}

// QuantizeTernary quantizes row-major float32 weights to ternary with BitNet b1.58's absmean
// rule: scale = mean |W| (over the tensor, or over each column when perColumn), t =
// clamp(round(W/scale), -1, 1).
func QuantizeTernary(w []float32, rows, cols int, perColumn bool) (*TernaryCols, error) {
	if rows < 0 || cols < 0 || len(w) != rows*cols {
		return nil, fmt.Errorf("sparse: QuantizeTernary: %d values for a %d×%d matrix", len(w), rows, cols)
	}
	var scale []float32
	if perColumn {
		scale = make([]float32, cols)
		sums := make([]float64, cols)
		for r := 0; r < rows; r++ {
			for c := 0; c < cols; c++ {
				sums[c] += math.Abs(float64(w[r*cols+c]))
			}
		}
		for c := range scale {
			scale[c] = float32(sums[c] / float64(max(rows, 1)))
		}
	} else {
		var s float64
		for _, v := range w {
			s += math.Abs(float64(v))
		}
		scale = []float32{float32(s / float64(max(len(w), 1)))}
	}
	t := make([]int8, len(w))
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			sc := scale[0]
			if perColumn {
				sc = scale[c]
			}
			if sc == 0 {
				continue
			}
			q := math.Round(float64(w[r*cols+c] / sc))
			t[r*cols+c] = int8(max(-1, min(1, q)))
		}
	}
	return PackTernary(t, scale, rows, cols)
}

// Trit returns t[r][c] in {-1, 0, +1}.
func (p *TernaryCols) Trit(r, c int) int {
	wi, bw := p.planeWord(r, c)
	bit := uint64(1) << (r % 64)
	switch {
	case p.Planes[wi]&bit != 0:
		return 1
	case p.Planes[wi+bw]&bit != 0:
		return -1
	}
	return 0
}

// ColScale returns the scale of column c.
func (p *TernaryCols) ColScale(c int) float32 {
	if len(p.Scale) == 1 {
		return p.Scale[0]
	}
	return p.Scale[c]
}

// At returns W[r][c] = t[r][c] * scale.
func (p *TernaryCols) At(r, c int) float32 { return float32(p.Trit(r, c)) * p.ColScale(c) }

// Bytes returns the size of the pack's weight data (bit planes and scales).
func (p *TernaryCols) Bytes() int64 { return int64(len(p.Planes))*8 + int64(len(p.Scale))*4 }
