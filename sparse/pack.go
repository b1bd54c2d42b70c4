package sparse

import (
	"fmt"
	"math"
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
	return &F16Cols{Rows: rows, Cols: cols, Stride: s, Data: make([]uint16, cols*s)}
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

// TernaryCols is a ternary matrix W[r][c] = t[r][c] * scale, t in {-1, 0, +1}, stored
// column-major as two bit planes per column: for column c, plus plane
// Planes[c*2*Words : c*2*Words+Words] and minus plane the next Words words; bit r%64 of word
// r/64 is set when t[r][c] is +1 (plus) or -1 (minus). Words = ceil(Rows/64); padding bits are
// zero. Scale has 1 element (per-tensor scale) or Cols elements (per-column scale).
//
// Bit planes rather than packed 2-bit codes: both cost 2 bits per weight, but with AVX-512 a
// 16-bit plane word is directly an opmask (KMOVW), so a column is applied to 16 rows with one
// merge-masked add and one merge-masked subtract and no decoding at all; 2-bit codes need
// shift, mask and compare (or a lookup) per 16 lanes before the same add. See
// /work/notes/kernels-bench.md (README "Kernels") for the measured throughput.
type TernaryCols struct {
	Rows, Cols int
	Words      int
	Planes     []uint64
	Scale      []float32
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
	words := padRows(rows) / 64
	p := &TernaryCols{Rows: rows, Cols: cols, Words: words, Planes: make([]uint64, 2*words*cols), Scale: append([]float32(nil), scale...)}
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			base := c * 2 * words
			switch t[r*cols+c] {
			case 0:
			case 1:
				p.Planes[base+r/64] |= 1 << (r % 64)
			case -1:
				p.Planes[base+words+r/64] |= 1 << (r % 64)
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
	base := c * 2 * p.Words
	bit := uint64(1) << (r % 64)
	switch {
	case p.Planes[base+r/64]&bit != 0:
		return 1
	case p.Planes[base+p.Words+r/64]&bit != 0:
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
