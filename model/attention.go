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
		j := 0
		for ; j+4 <= len(att); j += 4 { // four positions at a time: q loaded once per 4 keys
			d0, d1, d2, d3 := dot4(q, kc[j*kvdim+koff:], kc[(j+1)*kvdim+koff:], kc[(j+2)*kvdim+koff:], kc[(j+3)*kvdim+koff:])
			att[j], att[j+1], att[j+2], att[j+3] = d0*scale, d1*scale, d2*scale, d3*scale
		}
		for ; j < len(att); j++ {
			att[j] = dot(q, kc[j*kvdim+koff:][:hd]) * scale
		}
		softmax(att)
		// out = Σ_j att[j] v_j
		out := s.att[t*qdim+h*hd:][:hd]
		clear(out)
		j = 0
		for ; j+4 <= len(att); j += 4 { // four value rows per pass over out
			axpy4(out, att[j], att[j+1], att[j+2], att[j+3], vc[j*kvdim+koff:], vc[(j+1)*kvdim+koff:], vc[(j+2)*kvdim+koff:], vc[(j+3)*kvdim+koff:])
		}
		for ; j < len(att); j++ {
			axpy(out, att[j], vc[j*kvdim+koff:][:hd])
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

// dot returns Σ a[i]*b[i] (len(b) >= len(a)) with four partial sums (fixed order).
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpy sets y[i] += a*x[i] (len(x) >= len(y)).
func axpy(y []float32, a float32, x []float32) {
	x = x[:len(y)]
	i := 0
	for ; i+4 <= len(y); i += 4 {
		y[i] += a * x[i]
		y[i+1] += a * x[i+1]
		y[i+2] += a * x[i+2]
		y[i+3] += a * x[i+3]
	}
	for ; i < len(y); i++ {
		y[i] += a * x[i]
	}
}

// dot4 returns the dot products of q with k0..k3 (each at least len(q) long).
func dot4(q, k0, k1, k2, k3 []float32) (d0, d1, d2, d3 float32) {
	n := len(q)
	k0, k1, k2, k3 = k0[:n], k1[:n], k2[:n], k3[:n]
	for i, qi := range q {
		d0 += qi * k0[i]
		d1 += qi * k1[i]
		d2 += qi * k2[i]
		d3 += qi * k3[i]
	}
	return
}

// axpy4 sets y[i] += (a0*x0[i] + a1*x1[i]) + (a2*x2[i] + a3*x3[i]).
func axpy4(y []float32, a0, a1, a2, a3 float32, x0, x1, x2, x3 []float32) {
	n := len(y)
	x0, x1, x2, x3 = x0[:n], x1[:n], x2[:n], x3[:n]
	for i := range y {
		y[i] += (a0*x0[i] + a1*x1[i]) + (a2*x2[i] + a3*x3[i])
	}
}
