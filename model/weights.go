package model

import (
	"fmt"

	"github.com/qsparse/qsparse/sparse"
)

// Matrix is a weight matrix [Rows][Cols] in one of the layouts of Layout: exactly one of F32
// (row-major float32), F16 (row-major IEEE half bits), Pack (column-major fp16) and Tern
// (column-major ternary 2-bit codes, W = t·scale) is set. A Pack may be shared by several
// matrices stacked in it (q, k and v of Layer.QKV): the matrix is then the pack's rows
// [PackRow, PackRow+Rows). A Tern is always the whole matrix (Tern.Rows == Rows).
type Matrix struct {
	Rows, Cols int
	F32        []float32
	F16        []uint16
	Pack       *sparse.F16Cols
	PackRow    int
	Tern       *sparse.TernaryQ8
}

// The layouts of a Matrix (see Matrix.Layout).
const (
	LayoutF32     = "f32"      // row-major float32
	LayoutF16     = "f16"      // row-major fp16
	LayoutF16Cols = "f16-cols" // column-major fp16 (sparse.F16Cols): decode reads active columns only
	// LayoutTernaryQ8 is column-major ternary 2-bit codes (sparse.TernaryQ8, pack files only):
	// every token runs the int8-activation kernel (sparse.SparseGemvTernaryQ8).
	LayoutTernaryQ8 = "ternary-q8"
)

// Layout returns the matrix's storage layout: LayoutF32, LayoutF16, LayoutF16Cols or
// LayoutTernaryQ8.
func (m *Matrix) Layout() string {
	switch {
	case m.Tern != nil:
		return LayoutTernaryQ8
	case m.Pack != nil:
		return LayoutF16Cols
	case m.F16 != nil:
		return LayoutF16
	}
	return LayoutF32
}

// Bytes returns the size of the matrix data (for an fp16 pack: this matrix's rows, padding
// excluded; for a ternary pack: the stored codes, padding rows included, and scales).
func (m *Matrix) Bytes() int64 {
	switch {
	case m.Tern != nil:
		return m.Tern.Bytes()
	case m.Pack != nil:
		return int64(m.Rows) * int64(m.Cols) * 2
	case m.F16 != nil:
		return int64(len(m.F16)) * 2
	}
	return int64(len(m.F32)) * 4
}

// At returns W[r][c] as float32.
func (m *Matrix) At(r, c int) float32 {
	switch {
	case m.Tern != nil:
		return float32(m.Tern.Trit(r, c)) * m.ternScale(c)
	case m.Pack != nil:
		return m.Pack.At(m.PackRow+r, c)
	case m.F16 != nil:
		return sparse.F16ToF32(m.F16[r*m.Cols+c])
	}
	return m.F32[r*m.Cols+c]
}

// row writes row r as float32 into dst (len Cols).
func (m *Matrix) row(r int, dst []float32) {
	switch {
	case m.Tern != nil:
		for c := range dst[:m.Cols] {
			dst[c] = float32(m.Tern.Trit(r, c)) * m.ternScale(c)
		}
	case m.Pack != nil:
		p, i := m.Pack, m.PackRow+r
		for c := range dst[:m.Cols] {
			dst[c] = sparse.F16ToF32(p.Data[c*p.Stride+i])
		}
	case m.F16 != nil:
		sparse.F16ToF32Slice(dst, m.F16[r*m.Cols:(r+1)*m.Cols])
	default:
		copy(dst, m.F32[r*m.Cols:(r+1)*m.Cols])
	}
}

// ternScale returns the scale of column c of a ternary matrix.
func (m *Matrix) ternScale(c int) float32 {
	if s := m.Tern.Scale; len(s) != 1 {
		return s[c]
	}
	return m.Tern.Scale[0]
}

// Row returns row r as a new float32 slice.
func (m *Matrix) Row(r int) []float32 {
	dst := make([]float32, m.Cols)
	m.row(r, dst)
	return dst
}

// Layer holds one transformer block's weights. Bias slices are nil unless Spec.QKVBias.
type Layer struct {
	AttnNorm, FFNNorm   []float32 // [Dim]
	Q                   *Matrix   // [QDim][Dim], rows in rotate-half layout
	K, V                *Matrix   // [KVDim][Dim], K rows in rotate-half layout
	O                   *Matrix   // [Dim][QDim]
	Gate, Up            *Matrix   // [FFNDim][Dim]
	Down                *Matrix   // [Dim][FFNDim]
	QBias, KBias, VBias []float32
	// QKV is Q, K and V stacked ([QDim+2*KVDim][Dim]) and GateUp is Gate and Up stacked
	// ([2*FFNDim][Dim]): the same storage as the separate matrices, for one fused projection.
	QKV, GateUp *Matrix
}

// Weights are all the model's tensors in canonical layout.
type Weights struct {
	TokEmbd    *Matrix   // [Vocab][Dim]
	OutputNorm []float32 // [Dim]
	Output     *Matrix   // [Vocab][Dim]; == TokEmbd when Spec.TiedEmbeddings
	Layers     []Layer
	RopeFreqs  []float32 // optional per-pair RoPE frequency divisors (GGUF rope_freqs.weight)
}

// Matrix returns the weight matrix with the given canonical name, or nil.
func (w *Weights) Matrix(name string) *Matrix {
	switch name {
	case NameTokEmbd:
		return w.TokEmbd
	case NameOutput:
		return w.Output
	}
	var l int
	var suffix string
	if n, _ := fmt.Sscanf(name, "blk.%d.%s", &l, &suffix); n != 2 || l < 0 || l >= len(w.Layers) {
		return nil
	}
	L := &w.Layers[l]
	return map[string]*Matrix{AttnQ: L.Q, AttnK: L.K, AttnV: L.V, AttnOutput: L.O,
		FFNGate: L.Gate, FFNUp: L.Up, FFNDown: L.Down}[suffix]
}
