package model

import (
	"context"
	"fmt"
	"math"
	"runtime"

	"github.com/qsparse/qsparse/sparse"
)

// LayerEdit may change layer l's weights in place before variant v of the model runs through
// the layer (see Stream.Perplexity). L holds float32 row-major matrices in the canonical layout
// (q/k rows rotate-half; Q, K and V are views of L.QKV, Gate and Up of L.GateUp): edit the
// values, do not replace the slices. Edits carry over to the later variants of the same layer.
type LayerEdit func(l int, L *Layer, v int) error

// vecDst is where a layer's 1-D tensor (suffix name) goes.
type vecDst struct {
	dst  *[]float32
	name string
}

// streamBatch is the tokens per layer call of Stream.Perplexity (TextPerplexity's batch in convert).
const streamBatch = 64

// streamHeadRows is the LM head rows Stream.Perplexity reads at a time.
const streamHeadRows = 2048

// Perplexity returns the perplexity of variants versions of the model on tokens (one causal
// sequence from position 0; tokens[1:] are scored, each given the tokens before it), reading
// the checkpoint one layer at a time: the model is never held whole. Each layer is read once
// as float32 and run for variant 0, then edit (if not nil) may change it for variant 1, and so
// on; so a converter measures its source and its quantized copy in one pass (convert's ternary
// check). The LM head is read in blocks of rows, the log-softmax accumulated over the blocks.
// Memory: one layer's float32 weights, one head block, and per variant the [len(tokens)][Dim]
// residual stream. The dense kernels are Forward's, so variant 0 matches a loaded f32 model's
// Forward up to float rounding of the batching.
func (s *Stream) Perplexity(ctx context.Context, tokens []int, variants, threads int, edit LayerEdit) ([]float64, error) {
	sp := &s.Spec
	n := len(tokens) - 1 // positions run through the model
	switch {
	case s.src == nil:
		return nil, fmt.Errorf("model %s: the stream is closed", sp.Name)
	case n < 1:
		return nil, fmt.Errorf("model %s: perplexity needs at least 2 tokens, got %d", sp.Name, len(tokens))
	case variants < 1:
		return nil, fmt.Errorf("model %s: perplexity of %d variants", sp.Name, variants)
	}
	for i, t := range tokens {
		if t < 0 || t >= sp.Vocab {
			return nil, fmt.Errorf("model %s: token %d at index %d is outside the vocabulary [0,%d)", sp.Name, t, i, sp.Vocab)
		}
	}
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	dim, q, kv, ffn, half := sp.Dim, sp.QDim(), sp.KVDim(), sp.FFNDim, sp.HeadDim/2

	// A one-layer f32 model: every layer is read into its Layer in turn, and its KV cache (one
	// layer, n positions) is reused, since a layer runs over all tokens before the next.
	one := *sp
	one.NLayers = 1
	m := &Model{Spec: one, WeightType: "f32", Layout: LoadRows, Format: s.Format, Path: s.Path, ctx: n}
	m.iota = siteIota(&m.Spec)
	var err error
	if m.W.RopeFreqs, err = s.Vector(NameRopeFreqs); err != nil {
		return nil, err
	}
	if f := m.W.RopeFreqs; f != nil && len(f) != half {
		return nil, errorf(ErrTensorShape, "model %s: tensor %s has %d values, want %d", sp.Name, NameRopeFreqs, len(f), half)
	}
	if m.invFreq, err = ropeInvFreq(&m.Spec, m.W.RopeFreqs); err != nil {
		return nil, err
	}
	m.pool = sparse.NewPool(threads)
	defer m.pool.Close()
	f32 := func(rows, cols int) *Matrix { return &Matrix{Rows: rows, Cols: cols, F32: make([]float32, rows*cols)} }
	view := func(w *Matrix, r0, rows int) *Matrix {
		return &Matrix{Rows: rows, Cols: w.Cols, F32: w.F32[r0*w.Cols : (r0+rows)*w.Cols]}
	}
	m.W.Layers = make([]Layer, 1)
	L := &m.W.Layers[0]
	L.QKV, L.O, L.GateUp, L.Down = f32(q+2*kv, dim), f32(dim, q), f32(2*ffn, dim), f32(dim, ffn)
	L.Q, L.K, L.V = view(L.QKV, 0, q), view(L.QKV, q, kv), view(L.QKV, q+kv, kv)
	L.Gate, L.Up = view(L.GateUp, 0, ffn), view(L.GateUp, ffn, ffn)
	mats := []struct {
		suffix string
		w      *Matrix
	}{{AttnQ, L.Q}, {AttnK, L.K}, {AttnV, L.V}, {AttnOutput, L.O}, {FFNGate, L.Gate}, {FFNUp, L.Up}, {FFNDown, L.Down}}
	st := m.NewState(n)

	// Embedding lookup, the same for every variant.
	xs := make([][]float32, variants) // [variant][n][dim] residual streams
	xs[0] = make([]float32, n*dim)
	for t := range n {
		if err := s.Rows(NameTokEmbd, xs[0][t*dim:(t+1)*dim], tokens[t], 1); err != nil {
			return nil, err
		}
	}
	for v := 1; v < variants; v++ {
		xs[v] = append([]float32(nil), xs[0]...)
	}

	for l := range sp.NLayers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for _, mt := range mats {
			if err := s.Rows(LayerName(l, mt.suffix), mt.w.F32, 0, mt.w.Rows); err != nil {
				return nil, err
			}
		}
		vecs := []vecDst{{&L.AttnNorm, AttnNorm}, {&L.FFNNorm, FFNNorm}}
		if sp.QKVBias {
			vecs = append(vecs, vecDst{&L.QBias, AttnQBias}, vecDst{&L.KBias, AttnKBias}, vecDst{&L.VBias, AttnVBias})
		}
		for _, vc := range vecs {
			if *vc.dst, err = s.Vector(LayerName(l, vc.name)); err != nil {
				return nil, err
			}
		}
		for v := range variants {
			if edit != nil {
				if err := edit(l, L, v); err != nil {
					return nil, err
				}
			}
			for p := 0; p < n; p += streamBatch {
				b := min(streamBatch, n-p)
				for t := range b {
					ropeTable(st.cos[t*half:(t+1)*half], st.sin[t*half:(t+1)*half], m.invFreq, p+t)
				}
				st.layer(0, xs[v][p*dim:(p+b)*dim], p, b)
			}
		}
	}

	// Final norm, then the LM head block by block with a running log-sum-exp per token.
	norm, err := s.Vector(NameOutputNorm)
	if err != nil {
		return nil, err
	}
	eps := float32(sp.NormEps)
	for v := range variants {
		rmsNorm(xs[v], xs[v], norm, n, dim, eps) // in place: each row's scale is taken first
	}
	head := NameOutput
	if sp.TiedEmbeddings {
		head = NameTokEmbd
	}
	rows := min(streamHeadRows, sp.Vocab)
	hw := make([]float32, rows*dim)
	logits := make([]float32, n*rows)
	mx, sum, target := make([]float64, variants*n), make([]float64, variants*n), make([]float64, variants*n)
	for i := range mx {
		mx[i] = math.Inf(-1)
	}
	for r0 := 0; r0 < sp.Vocab; r0 += rows {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		k := min(rows, sp.Vocab-r0)
		if err := s.Rows(head, hw[:k*dim], r0, k); err != nil {
			return nil, err
		}
		w := &Matrix{Rows: k, Cols: dim, F32: hw[:k*dim]}
		for v := range variants {
			st.matmul(w, xs[v], n, logits[:n*k], nil) // [n][k]
			for t := range n {
				row, i := logits[t*k:(t+1)*k], v*n+t
				cm := math.Inf(-1)
				for _, x := range row {
					cm = max(cm, float64(x))
				}
				if cm > mx[i] {
					sum[i] *= math.Exp(mx[i] - cm)
					mx[i] = cm
				}
				for _, x := range row {
					sum[i] += math.Exp(float64(x) - mx[i])
				}
				if tg := tokens[t+1]; tg >= r0 && tg < r0+k {
					target[i] = float64(row[tg-r0])
				}
			}
		}
	}
	ppl := make([]float64, variants)
	for v := range ppl {
		var nll float64
		for t := range n {
			i := v*n + t
			nll -= target[i] - mx[i] - math.Log(sum[i])
		}
		ppl[v] = math.Exp(nll / float64(n))
	}
	return ppl, nil
}
