package model

import (
	"math"
)

// attention computes causal GQA attention for the s.attnN tokens at positions
// s.attnPos.. of layer s.attnLayer, reading q [n][QDim] and the float32 KV cache and writing
// s.att [n][QDim]. Work items (token, head) are strided over the pool's threads; each item is
// computed the same way whatever the thread count, so results do not depend on it.
func (s *State) attention(layer, pos, n int) {
	s.attnLayer, s.attnPos, s.attnN = layer, pos, n
	nw := min(s.m.pool.Threads(), n*s.m.Spec.NHeads)
	s.attnWorkers = nw
	if nw <= 1 {
		s.attnWorker(0)
		return
	}
	s.m.pool.Run(nw, s.attnFn)
}

// attnWorker handles work items w, w+nw, w+2nw, ... of the current attention call, using
// scratch row w of s.scores.
func (s *State) attnWorker(w int) {
	sp := &s.m.Spec
	hd, qdim, kvdim := sp.HeadDim, sp.QDim(), sp.KVDim()
	group := sp.NHeads / sp.NKVHeads
	scale := float32(1 / math.Sqrt(float64(hd)))
	layer, pos, n := s.attnLayer, s.attnPos, s.attnN
	kc := s.keyCache[layer*s.ctx*kvdim : (layer+1)*s.ctx*kvdim] // [ctx][kvdim]
	vc := s.valCache[layer*s.ctx*kvdim : (layer+1)*s.ctx*kvdim] // [ctx][kvdim]
	scores := s.scores[w*s.ctx : (w+1)*s.ctx]
	for item := w; item < n*sp.NHeads; item += s.attnWorkers {
		t, h := item/sp.NHeads, item%sp.NHeads
		p := pos + t // this token's position: it attends to 0..p
		q := s.q[t*qdim+h*hd:][:hd]
		koff := (h / group) * hd
		att := scores[:p+1]
		// scores[j] = q·k_j / sqrt(hd)
		for j := range att {
			k := kc[j*kvdim+koff:][:hd]
			var dot float32
			for i, qi := range q {
				dot += qi * k[i]
			}
			att[j] = dot * scale
		}
		softmax(att)
		// out = Σ_j att[j] v_j
		out := s.att[t*qdim+h*hd:][:hd]
		clear(out)
		for j, a := range att {
			v := vc[j*kvdim+koff:][:hd]
			for i, vi := range v {
				out[i] += a * vi
			}
		}
	}
}

// softmax normalises x in place, in float32.
func softmax(x []float32) {
	mx := x[0]
	for _, v := range x[1:] {
		mx = max(mx, v)
	}
	var sum float32
	for i, v := range x {
		e := float32(math.Exp(float64(v - mx)))
		x[i] = e
		sum += e
	}
	inv := 1 / sum
	for i := range x {
		x[i] *= inv
	}
}
