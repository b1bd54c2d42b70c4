package model

import (
	"math"

	"github.com/qsparse/qsparse/sparse"
)

// attnBlock is how many consecutive tokens one attention work item takes.
const attnBlock = 32

// attention computes causal GQA attention for the s.attnArgs.n tokens at positions
// s.attnArgs.pos.. of layer s.attnArgs.layer, reading q [n][QDim] and the float32 KV cache and writing
// s.att [n][QDim]. A work item is one head and a block of up to attnBlock tokens, as two small
// GEMMs (scores = Q·Kᵀ, out = P·V) over the cache (9 items per decoded token on SmolLM2, so
// two threads split them 5:4 rather than 2:1 as with one item per KV head). Items are strided over the pool's threads; each is computed the same way whatever
// the thread count, and every score and output element is a dot product that does not depend
// on the block it is computed in (causally masked entries are exact zeros), so results do not
// depend on the thread count nor on how tokens are batched.
func (s *State) attention(layer, pos, n int) {
	items := s.m.Spec.NHeads * ((n + attnBlock - 1) / attnBlock)
	nw := min(s.m.pool.Threads(), items)
	s.attnArgs = attnJob{layer: layer, pos: pos, n: n, workers: nw}
	if nw <= 1 {
		s.attnWorker(0)
		return
	}
	s.m.pool.Run(nw, s.attnFn)
}

// attnWorker handles work items w, w+nw, w+2nw, ... of the current attention call, using
// scratch w of s.scores ([attnBlock][ctxPad] scores).
func (s *State) attnWorker(w int) {
	sp := &s.m.Spec
	hd, qdim, kvdim := sp.HeadDim, sp.QDim(), sp.KVDim()
	group := sp.NHeads / sp.NKVHeads
	scale := float32(1 / math.Sqrt(float64(hd)))
	layer, pos, n := s.attnArgs.layer, s.attnArgs.pos, s.attnArgs.n
	cp := s.ctxPad
	kc := s.keyCache[layer*s.ctx*kvdim : (layer+1)*s.ctx*kvdim] // [ctx][kvdim]
	vl := s.valCache[layer*kvdim*cp : (layer+1)*kvdim*cp]       // [NKVHeads][hd][ctxPad]
	sc := s.scores[w*attnBlock*cp : (w+1)*attnBlock*cp]
	nb := (n + attnBlock - 1) / attnBlock
	for item := w; item < nb*sp.NHeads; item += s.attnArgs.workers {
		b, h := item/sp.NHeads, item%sp.NHeads
		kvh := h / group
		t0 := b * attnBlock
		nt := min(attnBlock, n-t0)
		keys := pos + t0 + nt // the block attends to positions [0, keys)
		kp := min((keys+15)&^15, cp)
		koff := kvh * hd
		vt := vl[kvh*hd*cp : (kvh+1)*hd*cp] // vt[c][j] = v_j[c]; zero or valid past keys (storeValues)
		// scores[t][j] = q_t·k_j for the block's tokens and every key of the block
		sparse.GemmF32Strided(sc, cp, s.q[t0*qdim+h*hd:], qdim, kc[koff:], kvdim, nt, keys, hd)
		for t := range nt {
			row := sc[t*cp : t*cp+kp]
			p := pos + t0 + t // this token attends to 0..p
			sparse.Softmax(row[:p+1], scale)
			clear(row[p+1:])
		}
		// out[t] = Σ_j p[t][j] v_j
		sparse.GemmF32Strided(s.att[t0*qdim+h*hd:], qdim, sc, cp, vt, cp, nt, hd, kp)
	}
}

// storeValues moves the values of the current step (s.vnew, [n][KVDim]) into layer l of the
// transposed value cache at positions pos..pos+n-1 and zeroes the cache up to the next multiple
// of 16 positions: attention reads Vᵀ rows in whole multiples of 16 positions and multiplies
// the ones past a token's position by exact zeros, which must not meet a stale Inf or NaN.
func (s *State) storeValues(l, pos, n int) {
	sp := &s.m.Spec
	kvdim, cp := sp.KVDim(), s.ctxPad
	vl := s.valCache[l*kvdim*cp : (l+1)*kvdim*cp]
	end := min((pos+n+15)&^15, cp)
	for c := range kvdim { // c = kvh*hd + d: row c of the layer is [kvh][d]
		row := vl[c*cp : (c+1)*cp]
		for t := range n {
			row[pos+t] = s.vnew[t*kvdim+c]
		}
		clear(row[pos+n : end])
	}
}
