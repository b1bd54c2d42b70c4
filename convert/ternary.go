package convert

import (
	"context"
	_ "embed"
	"fmt"
	"math"

	"github.com/qsparse/qsparse/model"
	"github.com/qsparse/qsparse/sparse"
	"github.com/qsparse/qsparse/tokenizer"
)

// sampleText is the built-in English text of the ternary perplexity check (~2 KB).
//
//go:embed sample.txt
var sampleText string

// WreckFactor is the perplexity ratio (ternary / source, on the check text) above which convert
// warns that ternarization wrecked the model.
const WreckFactor = 1.5

type ternaryResult struct {
	packs                 map[string]*sparse.TernaryCols // canonical site matrix name → trits and scales
	sourcePPL, ternaryPPL float64
	exact                 int // matrices that were already ternary
}

func (t *ternaryResult) warning(name string) string {
	if t.ternaryPPL <= WreckFactor*t.sourcePPL {
		return ""
	}
	return fmt.Sprintf("warning: ternarizing %s wrecks it: perplexity on the check text %.4g -> %.4g (x%.3g). "+
		"BitNet b1.58 absmean quantization only works for models trained ternary (quantization-aware); "+
		"the pack is written, but its output will be poor. For a full-precision model use --format fp16.",
		name, t.sourcePPL, t.ternaryPPL, t.ternaryPPL/t.sourcePPL)
}

// ternarizeStream measures the perplexity of the model in s on text, and that of its ternary
// copy, in one layer-at-a-time pass over the source (model.Stream.Perplexity: the model is
// never held whole): each layer is read as float32 and run as is, then every site matrix of it
// is quantized to ternary (exactly when it already is: one magnitude per tensor or per column;
// else BitNet b1.58 absmean with a per-tensor or per-column scale), replaced by its dequantized
// values and run again. The packs are kept for the output.
func ternarizeStream(ctx context.Context, s *model.Stream, perColumn bool, text string, threads int) (*ternaryResult, error) {
	toks, err := checkTokens(s.Tok, text)
	if err != nil {
		return nil, fmt.Errorf("perplexity check: %w", err)
	}
	res := &ternaryResult{packs: map[string]*sparse.TernaryCols{}}
	ppl, err := s.Perplexity(ctx, toks, 2, threads, func(l int, L *model.Layer, v int) error {
		if v == 0 {
			return nil
		}
		for _, sm := range []struct {
			suffix string
			w      *model.Matrix
		}{{model.AttnQ, L.Q}, {model.AttnK, L.K}, {model.AttnV, L.V}, {model.AttnOutput, L.O},
			{model.FFNGate, L.Gate}, {model.FFNUp, L.Up}, {model.FFNDown, L.Down}} {
			name := model.LayerName(l, sm.suffix)
			if err := ternarizeMatrix(res, name, sm.w, perColumn); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("perplexity check: %w", err)
	}
	res.sourcePPL, res.ternaryPPL = ppl[0], ppl[1]
	return res, nil
}

// ternarizeMatrix packs the float32 matrix w (canonical name) as ternary into res and replaces
// its values by the dequantized ternary ones.
func ternarizeMatrix(res *ternaryResult, name string, w *model.Matrix, perColumn bool) error {
	p, exact, err := TernaryPack(w.F32, w.Rows, w.Cols, perColumn)
	if err != nil {
		return fmt.Errorf("tensor %s: %w", name, err)
	}
	if exact {
		res.exact++
	}
	res.packs[name] = p
	for r := 0; r < w.Rows; r++ {
		for c := 0; c < w.Cols; c++ {
			w.F32[r*w.Cols+c] = p.At(r, c)
		}
	}
	return nil
}

// TernaryPack packs the row-major matrix w as ternary. Weights that are already ternary (all
// non-zero magnitudes equal over the tensor, or over each column) are packed exactly with that
// magnitude as scale (exact true); others are quantized with BitNet b1.58's absmean rule
// (sparse.QuantizeTernary), per column when perColumn.
func TernaryPack(w []float32, rows, cols int, perColumn bool) (*sparse.TernaryCols, bool, error) {
	if len(w) != rows*cols {
		return nil, false, fmt.Errorf("%d values for a %d×%d matrix", len(w), rows, cols)
	}
	if t, scale, ok := exactTernary(w, rows, cols); ok {
		p, err := sparse.PackTernary(t, scale, rows, cols)
		return p, true, err
	}
	p, err := sparse.QuantizeTernary(w, rows, cols, perColumn)
	return p, false, err
}

// exactTernary returns the trits and scale(s) of w when every value is 0 or ±s with one s per
// tensor (else one per column).
func exactTernary(w []float32, rows, cols int) ([]int8, []float32, bool) {
	col := make([]float32, cols) // magnitude of each column (0: none seen yet)
	var tensor float32
	sameTensor := true
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			v := w[r*cols+c]
			a := float32(math.Abs(float64(v)))
			if a == 0 {
				continue
			}
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, nil, false
			}
			if col[c] == 0 {
				col[c] = a
			} else if col[c] != a {
				return nil, nil, false
			}
			if tensor == 0 {
				tensor = a
			} else if tensor != a {
				sameTensor = false
			}
		}
	}
	scale := col
	if sameTensor {
		scale = []float32{tensor}
	}
	t := make([]int8, len(w))
	for i, v := range w {
		switch {
		case v > 0:
			t[i] = 1
		case v < 0:
			t[i] = -1
		}
	}
	return t, scale, true
}

// TextPerplexity is a quick perplexity of m on text: the text is tokenized (with BOS when the
// vocab adds it), cut to at most 512 tokens, run through one KV cache, and every token after
// the first is scored. It is a sanity check, not llama.cpp's chunked protocol (eval does that).
func TextPerplexity(ctx context.Context, m *model.Model, text string) (float64, error) {
	toks, err := checkTokens(m.Tok, text)
	if err != nil {
		return 0, err
	}
	V := m.Spec.Vocab
	const batch = 64
	st := m.NewState(len(toks))
	logits := make([]float32, batch*V)
	var nll float64
	for p := 0; p < len(toks)-1; p += batch {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n := min(batch, len(toks)-1-p)
		if err := st.Forward(toks[p:p+n], p, logits[:n*V]); err != nil {
			return 0, err
		}
		for i := range n {
			nll -= logProb(logits[i*V:(i+1)*V], toks[p+i+1])
		}
	}
	return math.Exp(nll / float64(len(toks)-1)), nil
}

// checkTokens tokenizes the check text (with BOS when the vocab adds it) and cuts it to at
// most 512 tokens; fewer than 16 is an error.
func checkTokens(tok *tokenizer.Tokenizer, text string) ([]int, error) {
	toks := tok.Encode(text, true, false)
	if len(toks) > 512 {
		toks = toks[:512]
	}
	if len(toks) < 16 {
		return nil, fmt.Errorf("the check text has %d tokens; give at least 16", len(toks))
	}
	return toks, nil
}

// logProb returns log softmax(logits)[tok].
func logProb(logits []float32, tok int) float64 {
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = max(mx, float64(v))
	}
	var s float64
	for _, v := range logits {
		s += math.Exp(float64(v) - mx)
	}
	return float64(logits[tok]) - mx - math.Log(s)
}
