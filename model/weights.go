package model

import (
	"fmt"

	"github.com/qsparse/qsparse/sparse"
)

// Matrix is a weight matrix [Rows][Cols], row-major, in the compute dtype: exactly one of F32
// and F16 (IEEE half bits) is set.
type Matrix struct {
	Rows, Cols int
	F32        []float32
	F16        []uint16
}

// Bytes returns the size of the matrix data.
func (m *Matrix) Bytes() int64 {
	if m.F16 != nil {
		return int64(len(m.F16)) * 2
	}
	return int64(len(m.F32)) * 4
}

// row writes row r as float32 into dst (len Cols).
func (m *Matrix) row(r int, dst []float32) {
	if m.F16 != nil {
		sparse.F16ToF32Slice(dst, m.F16[r*m.Cols:(r+1)*m.Cols])
		return
	}
	copy(dst, m.F32[r*m.Cols:(r+1)*m.Cols])
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
