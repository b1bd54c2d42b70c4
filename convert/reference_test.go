package convert

import (
	"context"
	"fmt"

	"github.com/qsparse/qsparse/model"
	"github.com/qsparse/qsparse/sparse"
)

// The reference path: what convert did before it streamed from the source. A loaded model is a
// tensorSource; ternarize quantizes a loaded F32 model in memory and measures it with
// TextPerplexity (Forward over the whole model). Tests compare the streamed conversion with it.

// modelSource reads a loaded model's tensors.
type modelSource struct{ m *model.Model }

func (s modelSource) matrix(name string, n int, dstLen int) (*model.Matrix, error) {
	w := s.m.W.Matrix(name)
	if w == nil || dstLen != n*w.Cols {
		return nil, fmt.Errorf("matrix %s: not in the model or %d values for %d rows", name, dstLen, n)
	}
	return w, nil
}

func (s modelSource) Rows(name string, dst []float32, r0, n int) error {
	w, err := s.matrix(name, n, len(dst))
	if err != nil {
		return err
	}
	for i := range n {
		copy(dst[i*w.Cols:(i+1)*w.Cols], w.Row(r0+i))
	}
	return nil
}

func (s modelSource) RowsF16(name string, dst []uint16, r0, n int) error {
	w, err := s.matrix(name, n, len(dst))
	if err != nil {
		return err
	}
	if w.F16 != nil {
		copy(dst, w.F16[r0*w.Cols:(r0+n)*w.Cols])
		return nil
	}
	for i := range n {
		sparse.F32ToF16Slice(dst[i*w.Cols:(i+1)*w.Cols], w.Row(r0+i))
	}
	return nil
}

func (s modelSource) Vector(name string) ([]float32, error) { return vector(s.m, name), nil }

// vector returns the 1-D tensor (norm, bias, rope_freqs) with a canonical name (nil if none).
func vector(m *model.Model, name string) []float32 {
	switch name {
	case model.NameOutputNorm:
		return m.W.OutputNorm
	case model.NameRopeFreqs:
		return m.W.RopeFreqs
	}
	var l int
	var suffix string
	if n, _ := fmt.Sscanf(name, "blk.%d.%s", &l, &suffix); n != 2 || l < 0 || l >= len(m.W.Layers) {
		return nil
	}
	L := &m.W.Layers[l]
	switch suffix {
	case model.AttnNorm:
		return L.AttnNorm
	case model.FFNNorm:
		return L.FFNNorm
	case model.AttnQBias:
		return L.QBias
	case model.AttnKBias:
		return L.KBias
	case model.AttnVBias:
		return L.VBias
	}
	return nil
}

// ternarize measures m's perplexity on text, quantizes every site matrix to ternary
// (ternarizeMatrix) in m, and measures the perplexity again. m must hold F32 weights.
func ternarize(ctx context.Context, m *model.Model, perColumn bool, text string) (*ternaryResult, error) {
	if m.WeightType != "f32" {
		return nil, fmt.Errorf("ternarize needs F32 weights, the model holds %s", m.WeightType)
	}
	res := &ternaryResult{packs: map[string]*sparse.TernaryCols{}}
	var err error
	if res.sourcePPL, err = TextPerplexity(ctx, m, text); err != nil {
		return nil, fmt.Errorf("perplexity check: %w", err)
	}
	for _, ts := range m.Spec.Tensors() {
		if !ts.Matrix || !isSiteMatrix(ts.Name) {
			continue
		}
		if err := ternarizeMatrix(res, ts.Name, m.W.Matrix(ts.Name), perColumn); err != nil {
			return nil, err
		}
	}
	if res.ternaryPPL, err = TextPerplexity(ctx, m, text); err != nil {
		return nil, fmt.Errorf("perplexity check: %w", err)
	}
	return res, nil
}
