package model

import (
	"context"
	"fmt"
	"math"

	"github.com/qsparse/qsparse/sparse"
)

// Forward runs tokens (at positions pos, pos+1, ...) through the model, appending their keys and
// values to the KV cache, and writes logits: len(logits) == Vocab gives the last token's logits,
// len(logits) == len(tokens)*Vocab gives every token's ([token][vocab]). Several tokens are
// processed as a batch (GEMM for all projections, attention per token and head in parallel);
// a single token uses GEMV. Nothing is allocated.
func (s *State) Forward(tokens []int, pos int, logits []float32) error {
	sp := &s.m.Spec
	n := len(tokens)
	switch {
	case s.m.pool == nil:
		return fmt.Errorf("model forward: the model is closed")
	case n == 0:
		return fmt.Errorf("model forward: no tokens")
	case pos < 0 || pos+n > s.ctx:
		return fmt.Errorf("model forward: positions %d..%d exceed the context of %d (start a new State with a larger ctx)", pos, pos+n-1, s.ctx)
	case len(logits) != sp.Vocab && len(logits) != n*sp.Vocab:
		return fmt.Errorf("model forward: logits has length %d, want %d (last token) or %d (all %d tokens)", len(logits), sp.Vocab, n*sp.Vocab, n)
	}
	for i, t := range tokens {
		if t < 0 || t >= sp.Vocab {
			return fmt.Errorf("model forward: token %d at index %d is outside the vocabulary [0,%d)", t, i, sp.Vocab)
		}
	}
	all := len(logits) != sp.Vocab || n == 1
	for off := 0; off < n; off += s.batch {
		b := min(s.batch, n-off)
		last := off+b == n
		var out []float32
		switch {
		case all:
			out = logits[off*sp.Vocab : (off+b)*sp.Vocab]
		case last:
			out = logits
		}
		if err := s.step(tokens[off:off+b], pos+off, out); err != nil {
			return err
		}
	}
	return nil
}

// SetContext makes Forward stop between layers once ctx is done, returning ctx.Err() (the KV
// cache positions of that call are then undefined); nil never stops. A long prefill (a chunk of
// 32k tokens takes minutes) so answers Ctrl-C within one layer's work.
func (s *State) SetContext(ctx context.Context) { s.cancel = ctx }

// stopped returns the State's context error, if any.
func (s *State) stopped() error {
	if s.cancel == nil {
		return nil
	}
	return s.cancel.Err()
}

// step runs one batch of n <= s.batch tokens at positions pos..pos+n-1. logits is nil (no
// logits), [Vocab] (last token) or [n][Vocab].
func (s *State) step(tokens []int, pos int, logits []float32) error {
	m, sp := s.m, &s.m.Spec
	n := len(tokens)
	dim, half := sp.Dim, sp.HeadDim/2
	eps := float32(sp.NormEps)
	x := s.x[:n*dim] // [n][dim] residual stream
	s.stale = s.used
	s.used = max(s.used, pos+n)

	// Embedding lookup: x[t] = token_embd[tokens[t]].
	for t, tok := range tokens {
		m.W.TokEmbd.row(tok, x[t*dim:(t+1)*dim])
	}
	// RoPE cos/sin of each position, shared by all layers: [n][hd/2].
	for t := range n {
		ropeTable(s.cos[t*half:(t+1)*half], s.sin[t*half:(t+1)*half], m.invFreq, pos+t)
	}

	for l := range sp.NLayers {
		if err := s.stopped(); err != nil {
			return err
		}
		s.layer(l, x, pos, n)
	}
	if logits == nil {
		return nil
	}
	// Final norm and LM head (output.weight, or token_embd.weight when tied).
	if len(logits) == sp.Vocab && n > 1 {
		x = x[(n-1)*dim:]
		n = 1
	}
	xb := s.xb[:n*dim]
	rmsNorm(xb, x, m.W.OutputNorm, n, dim, eps)
	s.matmul(m.W.Output, xb, n, logits, nil)
	return nil
}

// layer runs transformer block l on the residual stream x ([n][dim], updated in place) of n <=
// s.batch tokens at positions pos..pos+n-1, whose RoPE tables s.cos and s.sin hold, appending
// their keys and values to layer l's KV cache.
func (s *State) layer(l int, x []float32, pos, n int) {
	sp := &s.m.Spec
	dim, qdim, kvdim, ffn, half := sp.Dim, sp.QDim(), sp.KVDim(), sp.FFNDim, sp.HeadDim/2
	eps := float32(sp.NormEps)
	xb, xb2 := s.xb[:n*dim], s.xb2[:n*dim] // [n][dim]
	q, att := s.q[:n*qdim], s.att[:n*qdim] // [n][qdim]
	hb, hb2 := s.hb[:n*ffn], s.hb2[:n*ffn] // [n][ffn]
	L := &s.m.W.Layers[l]
	lc := l * s.ctx * kvdim
	k := s.keyCache[lc+pos*kvdim : lc+(pos+n)*kvdim] // [n][kvdim], written in place in the cache
	v := s.vnew[:n*kvdim]                            // [n][kvdim], then stored transposed (storeValues)

	// Attention block: xb = RMSNorm(x); q,k,v = xb·Wᵀ (+bias); RoPE(q,k); attention; o_proj.
	rmsNorm(xb, x, L.AttnNorm, n, dim, eps)
	s.project(AttnIn, l, xb, n, q, k, v)
	s.storeValues(l, pos, n)
	for t := range n {
		c, si := s.cos[t*half:(t+1)*half], s.sin[t*half:(t+1)*half]
		ropeRotateHalf(q[t*qdim:(t+1)*qdim], sp.NHeads, sp.HeadDim, c, si)
		ropeRotateHalf(k[t*kvdim:(t+1)*kvdim], sp.NKVHeads, sp.HeadDim, c, si)
	}
	s.attention(l, pos, n) // att = softmax(q·Kᵀ/√hd)·V, causal, GQA
	s.project(AttnOut, l, att, n, xb2)
	addTo(x, xb2) // residual

	// MLP block: xb = RMSNorm(x); hb = SiLU(xb·Wgateᵀ) * (xb·Wupᵀ); x += hb·Wdownᵀ.
	rmsNorm(xb, x, L.FFNNorm, n, dim, eps)
	s.project(MLPIn, l, xb, n, hb, hb2)
	swiGLU(hb, hb2)
	s.project(MLPDown, l, hb, n, xb2)
	addTo(x, xb2) // residual
}

// project runs the projections of a site of a layer (siteTable: q/k/v, o, gate/up or down),
// which share one input in ([n][cols]), writing each matrix's [n][rows] output to outs (in
// siteTable order) and adding its bias. Every projection of the forward pass goes through
// here: the hook sees the input first; then, when the State's profile keeps K < cols channels
// at this site, a decoded token (n == 1) on column-major packs runs the sparse kernel on its
// top-K channels (the index set shared by the site's matrices), and anything else — prefill,
// row-major weights, the masked twin of tests — masks the input to its top-K (see SetProfile)
// before the dense kernels. The site's matrices run as one kernel call on their stacked form
// (Layer.QKV, Layer.GateUp) when there is one, the output rows then split to outs. Ternary
// packs always run the int8 ternary kernel (see ternProject).
func (s *State) project(site Site, layer int, in []float32, n int, outs ...[]float32) {
	L := &s.m.W.Layers[layer]
	mats := siteTable[site]
	w0 := mats[0].w(L)
	cols := w0.Cols
	if s.hook != nil {
		s.hook(site, layer, in[:n*cols], n)
	}
	var idx []int32 // active channels of the sparse kernel; nil: all
	orig := in
	masked := false // in is masked to its top-K channels (the rest are zero)
	if s.keep != nil {
		if k := s.keep[layer][site]; k < cols {
			var norms []float32
			if s.colNorms != nil {
				norms = s.colNorms[layer][site]
			}
			if n == 1 && (w0.Pack != nil || w0.Tern != nil) && !s.maskedDecode {
				in, idx = s.selectSite(site, layer, in, cols, k, norms)
			} else {
				in = s.maskSite(in, n, cols, k, norms, site, layer) // reference semantics: masked input, dense kernels
				masked = true
				if s.maskHook != nil {
					s.maskHook(site, layer, in, n)
				}
			}
		}
	}
	sparseKernel := idx != nil
	fused := L.siteFused(site)
	if w0.Tern != nil {
		s.ternProject(L, mats, in, n, outs, idx, masked)
	} else if fused != nil && (fuseProjections || fused.Pack != nil) {
		out := s.fused[:n*fused.Rows] // [n][fused.Rows]
		s.matmul(fused, in, n, out, idx)
		for t := range n {
			row := out[t*fused.Rows : (t+1)*fused.Rows]
			for i, o := range outs {
				r := mats[i].w(L).Rows
				copy(o[t*r:(t+1)*r], row[:r])
				row = row[r:]
			}
		}
	} else if n == 1 && len(outs) > 1 && s.wholePacks(L, mats) {
		// separate packs sharing one input and index set (pack files): one kernel call
		if idx == nil {
			idx = s.m.iota[:cols]
		}
		ys, ws := s.multiY[:len(outs)], s.multiW[:len(outs)]
		for i, o := range outs {
			w := mats[i].w(L)
			ys[i], ws[i] = o[:w.Rows], w.Pack
		}
		s.m.pool.SparseGemvF16Multi(ys, ws, in, idx)
	} else {
		for i, o := range outs {
			s.matmul(mats[i].w(L), in, n, o, idx)
		}
	}
	if sparseKernel && s.twinHook != nil {
		s.runTwin(site, layer, L, orig, fused, outs)
	}
	for i, o := range outs {
		if mats[i].bias == nil {
			continue
		}
		if b := mats[i].bias(L); b != nil {
			r := len(b)
			for t := range n {
				addTo(o[t*r:(t+1)*r], b)
			}
		}
	}
}

// wholePacks reports whether every matrix of a site is a whole pack of its own.
func (s *State) wholePacks(L *Layer, mats []siteMat) bool {
	for _, m := range mats {
		w := m.w(L)
		if w.Pack == nil || w.PackRow != 0 || w.Rows != w.Pack.Rows {
			return false
		}
	}
	return len(mats) <= len(s.multiY)
}

// ternProject runs a site's matrices on a ternary pack (every site matrix of a ternary pack
// file is one) for n tokens of input in ([n][cols]) into outs. One decoded token is one
// Pool.SparseGemvTernaryQ8Multi call over idx (nil: every channel). Several tokens (prefill,
// the masked twin) are one pool job with a token per item, each running the same kernel
// (sparse.SparseGemvTernaryQ8, with its thread's scratch) over all channels, or over its non-zero
// channels when in was masked. That is the decode computation exactly: the kernel quantizes
// the values of the channels it is given (absmax to int8) and sums integers, and channels
// that are zero add nothing and do not change the absmax, so the non-zero channels of a
// masked row and the top-K index set of a decoded token give the same bits. Prefill and
// decode thus agree, and perplexity measures what decode runs.
func (s *State) ternProject(L *Layer, mats []siteMat, in []float32, n int, outs [][]float32, idx []int32, masked bool) {
	cols := mats[0].w(L).Cols
	if s.ternRef != nil { // tests: the plain reference, token by token
		for t := range n {
			for i, o := range outs {
				w := mats[i].w(L)
				s.ternRef(w, in[t*cols:(t+1)*cols], idx, o[t*w.Rows:(t+1)*w.Rows])
			}
		}
		return
	}
	j := &s.ternArgs
	j.nm = len(mats)
	for i, o := range outs {
		w := mats[i].w(L)
		j.ws[i], j.ys[i] = w.Tern, o[:n*w.Rows]
	}
	if n == 1 {
		if idx == nil {
			idx = s.m.iota[:cols]
		}
		s.m.pool.SparseGemvTernaryQ8Multi(j.ys[:j.nm], j.ws[:j.nm], in[:cols], idx)
	} else {
		j.in, j.n, j.cols, j.masked = in[:n*cols], n, cols, masked
		s.m.pool.RunThreads(n, s.ternFn)
	}
	*j = ternJob{}
}

// ternWorker runs token t of the current ternProject call on pool thread thread.
func (s *State) ternWorker(t, thread int) {
	j := &s.ternArgs
	x := j.in[t*j.cols : (t+1)*j.cols]
	idx := s.m.iota[:j.cols]
	if j.masked {
		idx = s.ternIdx[t*j.cols : t*j.cols : (t+1)*j.cols]
		for c, v := range x {
			if v != 0 {
				idx = append(idx, int32(c))
			}
		}
	}
	for m, w := range j.ws[:j.nm] {
		s.ternScr[thread].SparseGemvTernaryQ8(j.ys[m][t*w.Rows:(t+1)*w.Rows], w, x, idx)
	}
}

// runTwin (tests) computes a sparse-kernel site's outputs again on the masked reference path
// (its own selection from the same input; selHook is not consulted) and hands both to
// s.twinHook.
func (s *State) runTwin(site Site, layer int, L *Layer, in []float32, fused *Matrix, outs [][]float32) {
	cols := siteTable[site][0].w(L).Cols
	var norms []float32
	if s.colNorms != nil {
		norms = s.colNorms[layer][site]
	}
	masked := s.maskSite(in, 1, cols, s.keep[layer][site], norms, site, -1)
	for i, o := range outs {
		w := siteTable[site][i].w(L)
		ref := make([]float32, w.Rows)
		if fused != nil {
			full := make([]float32, fused.Rows)
			s.matmul(fused, masked, 1, full, nil)
			off := 0
			for j := range i {
				off += siteTable[site][j].w(L).Rows
			}
			copy(ref, full[off:])
		} else {
			s.matmul(w, masked, 1, ref, nil)
		}
		s.twinHook(site, layer, o[:w.Rows], ref)
	}
}

// selectSite picks one decoded token's active channels at a sparse site of a layer
// (selectTop, on the calling goroutine: a few microseconds, cheaper than a pool job) and
// returns the kernel's input and the index set. With Rescale, the input is a copy whose kept
// values are scaled exactly as the masked path scales them.
func (s *State) selectSite(site Site, layer int, in []float32, cols, k int, norms []float32) ([]float32, []int32) {
	x := in[:cols]
	idx := s.topIdx[:0:cols]
	var blk *Block
	if s.prof != nil {
		blk = s.prof.Block
	}
	idx = s.selectTop(idx, x, k, norms, blk, s.scoreBuf[:cols])
	if s.selHook != nil {
		idx = s.selHook(site, layer, x, idx)
	}
	if s.prof != nil && s.prof.Rescale {
		if f, ok := rescaleFactor(x, idx); ok {
			xs := s.masked[:cols]
			for _, c := range idx {
				xs[c] = x[c] * f
			}
			return xs, idx
		}
	}
	return x, idx
}

// fuseProjections selects the fused q/k/v and gate/up kernel calls (tests compare both).
var fuseProjections = true

// SetHook installs fn (nil removes it) to be called with the input of every sparsity site
// ([n][SiteDim] values, read-only, valid only during the call) before its projections run:
// the way calibration observes activations. The hook sees the input before any sparsity mask
// (see SetProfile).
func (s *State) SetHook(fn func(site Site, layer int, in []float32, n int)) { s.hook = fn }

// matmul computes out[t][r] = Σ_c in[t][c]·W[r][c] for n tokens: GEMV for one token, GEMM for
// more. On a column-major pack, one token runs the sparse GEMV over the channels idx (nil: all
// of them) and several tokens the GEMM on the pack (idx must then be nil). A ternary pack runs
// the int8 ternary GEMV over idx (nil: all) for each token.
func (s *State) matmul(w *Matrix, in []float32, n int, out []float32, idx []int32) {
	pool := s.m.pool
	in, out = in[:n*w.Cols], out[:n*w.Rows]
	switch {
	case w.Tern != nil: // one token at a time (project runs ternary sites through ternProject)
		if idx == nil {
			idx = s.m.iota[:w.Cols]
		}
		for t := range n {
			pool.SparseGemvTernaryQ8(out[t*w.Rows:(t+1)*w.Rows], w.Tern, in[t*w.Cols:(t+1)*w.Cols], idx)
		}
	case w.Pack != nil && n == 1 && w.PackRow == 0 && w.Rows == w.Pack.Rows:
		if idx == nil {
			idx = s.m.iota[:w.Cols]
		}
		pool.SparseGemvF16(out, w.Pack, in, idx)
	case w.Pack != nil && idx == nil:
		pool.GemmF16Cols(out, in, w.Pack, w.PackRow, w.Rows, n)
	case w.Pack != nil:
		panic("model: sparse kernel on a part of a stacked pack") // project never asks this
	case w.F16 != nil && n == 1:
		pool.GemvF16(out, w.F16, in, w.Rows, w.Cols)
	case w.F16 != nil:
		pool.GemmF16(out, in, w.F16, n, w.Rows, w.Cols)
	case n == 1:
		pool.GemvF32(out, w.F32, in, w.Rows, w.Cols)
	default:
		pool.GemmF32(out, in, w.F32, n, w.Rows, w.Cols)
	}
}

// rmsNorm writes out[t] = x[t] / sqrt(mean(x[t]²) + eps) * w for n rows of dim values. The sum
// of squares is accumulated in float64, as ggml does.
func rmsNorm(out, x, w []float32, n, dim int, eps float32) {
	for t := range n {
		xr, or := x[t*dim:(t+1)*dim], out[t*dim:(t+1)*dim]
		var ss float64
		for _, v := range xr {
			ss += float64(v * v)
		}
		scale := float32(1 / math.Sqrt(float64(float32(ss/float64(dim))+eps)))
		for i, v := range xr {
			or[i] = v * scale * w[i]
		}
	}
}

// swiGLU sets gate[i] = SiLU(gate[i]) * up[i] (float32 e^x, vectorised).
func swiGLU(gate, up []float32) { sparse.SiLUMul(gate, up) }

// addTo sets dst[i] += src[i].
func addTo(dst, src []float32) {
	for i, v := range src {
		dst[i] += v
	}
}
