package model

import (
	"math"

	"github.com/qsparse/qsparse/sparse"
)

// attnBlock is how many consecutive tokens one attention work item takes.
const attnBlock = 32

// attnLongKeys is the context from which a decoded token's attention runs as attentionLong;
// attnKeyChunk is how many keys one of its QK work items takes. Variables for tests.
var attnLongKeys, attnKeyChunk = 256, 64

// attention computes causal GQA attention for the s.attnArgs.n tokens at positions
// s.attnArgs.pos.. of layer s.attnArgs.layer, reading q [n][QDim] and the float32 KV cache and writing
// s.att [n][QDim]. A work item is one head and a block of up to attnBlock tokens, as two small
// GEMMs (scores = Q·Kᵀ, out = P·V) over the cache (9 items per decoded token on SmolLM2, so
// two threads split them 5:4 rather than 2:1 as with one item per KV head). Items are strided over the pool's threads; each is computed the same way whatever
// the thread count, and every score and output element is a dot product that does not depend
// on the block it is computed in (causally masked entries are exact zeros), so results do not
// depend on the thread count nor on how tokens are batched.
//
// A decoded token attending to at least attnLongKeys positions takes attentionLong instead,
// which computes the same dot products and softmax (bit for bit) in an order that reads the
// cache sequentially.
func (s *State) attention(layer, pos, n int) {
	if n == 1 && pos+1 >= attnLongKeys {
		s.attentionLong(layer, pos)
		return
	}
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
// Positions from s.stale on were never written since the cache was made or Reset (only a
// rewind, pos+n < s.stale, leaves stale values there), so only [pos+n, min(end, s.stale))
// needs zeroing: none while a sequence grows, which saves a clear call on each of the KVDim
// rows of every layer of every decoded token.
func (s *State) storeValues(l, pos, n int) {
	sp := &s.m.Spec
	kvdim, cp := sp.KVDim(), s.ctxPad
	vl := s.valCache[l*kvdim*cp : (l+1)*kvdim*cp]
	end := min((pos+n+15)&^15, cp, max(s.stale, pos+n))
	for c := range kvdim { // c = kvh*hd + d: row c of the layer is [kvh][d]
		row := vl[c*cp : (c+1)*cp]
		for t := range n {
			row[pos+t] = s.vnew[t*kvdim+c]
		}
		if end > pos+n {
			clear(row[pos+n : end])
		}
	}
}

// attentionLong is attention for one decoded token at position pos attending to many keys, in
// three parallel phases over the whole layer:
//
//  1. scores: one item per chunk of attnKeyChunk keys computes every query head's scores
//     against them, head by head (the one-token GEMV form, 8 keys per kernel iteration): the
//     keys of a chunk are one contiguous run of the cache ([ctx][KVDim]), brought in once and
//     then read from cache by the other heads, instead of each head streaming the whole
//     cache at KVDim strides;
//  2. softmax: one item per query head;
//  3. out = P·V: one item per KV head and half of HeadDim, the group's query heads as one GEMM
//     over the transposed values.
//
// Each score and output element is the same dot product as in attnWorker's items (the GEMM
// tiles compute every dot product alike) and the softmax is the same call on the same row, so
// the results equal attnWorker's bit for bit. At 1,536 positions SmolLM2's cache is 70 MB per
// token: per-head items read it at short strides and three times over.
func (s *State) attentionLong(layer, pos int) {
	sp := &s.m.Spec
	keys := pos + 1
	s.attnArgs = attnJob{layer: layer, pos: pos, n: 1}
	pool := s.m.pool
	pool.Run((keys+attnKeyChunk-1)/attnKeyChunk, s.qkFn)
	pool.Run(sp.NHeads, s.softmaxFn)
	pool.Run(2*sp.NKVHeads, s.pvFn)
}

// qkChunk is phase 1 of attentionLong: scores[h][j] = q_h·k_j for every query head h and the
// keys j of chunk i (row h of s.scores).
func (s *State) qkChunk(i int) {
	sp := &s.m.Spec
	hd, kvdim, cp := sp.HeadDim, sp.KVDim(), s.ctxPad
	group := sp.NHeads / sp.NKVHeads
	layer, keys := s.attnArgs.layer, s.attnArgs.pos+1
	j0 := i * attnKeyChunk
	nj := min(attnKeyChunk, keys-j0)
	kc := s.keyCache[layer*s.ctx*kvdim : (layer+1)*s.ctx*kvdim] // [ctx][kvdim]
	for h := range sp.NHeads {                                  // one head at a time: the GEMV form (8 keys per iteration)
		sparse.GemmF32Strided(s.scores[h*cp+j0:], cp, s.q[h*hd:], hd, kc[j0*kvdim+(h/group)*hd:], kvdim, 1, nj, hd)
	}
}

// softmaxHead is phase 2 of attentionLong: row h of s.scores becomes the softmax of the scaled
// scores, zero up to the next multiple of 16 keys (what phase 3 reads).
func (s *State) softmaxHead(h int) {
	sp := &s.m.Spec
	cp := s.ctxPad
	keys := s.attnArgs.pos + 1
	kp := min((keys+15)&^15, cp)
	row := s.scores[h*cp : h*cp+kp]
	sparse.Softmax(row[:keys], float32(1/math.Sqrt(float64(sp.HeadDim))))
	clear(row[keys:])
}

// pvItem is phase 3 of attentionLong: for KV head i/2 and half i%2 of HeadDim, out[h][d] =
// Σ_j p[h][j]·v_j[d] for the head group's query heads h.
func (s *State) pvItem(i int) {
	sp := &s.m.Spec
	hd, kvdim, cp := sp.HeadDim, sp.KVDim(), s.ctxPad
	group := sp.NHeads / sp.NKVHeads
	keys := s.attnArgs.pos + 1
	kp := min((keys+15)&^15, cp)
	kvh, d0 := i/2, (i%2)*(hd/2)
	nd := hd/2 + (i%2)*(hd%2)                                                   // the second half takes an odd HeadDim's last row
	vl := s.valCache[s.attnArgs.layer*kvdim*cp : (s.attnArgs.layer+1)*kvdim*cp] // [NKVHeads][hd][ctxPad]
	h0 := kvh * group
	sparse.GemmF32Strided(s.att[h0*hd+d0:], hd, s.scores[h0*cp:], cp, vl[(kvh*hd+d0)*cp:], cp, group, nd, kp)
}
