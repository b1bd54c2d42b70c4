package eval

import (
	"math"
	"math/rand/v2"
	"sort"
)

// SamplerOptions configures token sampling. Temp <= 0 is greedy (argmax).
type SamplerOptions struct {
	Temp float64 // temperature; <= 0: greedy
	TopK int     // keep the K most likely tokens; <= 0: all
	TopP float64 // keep the smallest set whose probability reaches P; >= 1 or <= 0: all
	Seed uint64
}

// Sampler picks the next token from logits as llama.cpp's sampler chain top-k -> top-p ->
// temperature -> dist does (with the other stages at their neutral settings).
type Sampler struct {
	opts SamplerOptions
	rng  *rand.Rand
	idx  []int
	p    []float64
}

// NewSampler returns a sampler; it allocates its scratch space on first use.
func NewSampler(opts SamplerOptions) *Sampler {
	return &Sampler{opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))}
}

// Argmax returns the index of the largest logit (the first one on ties).
func Argmax(logits []float32) int {
	best := 0
	for i, l := range logits {
		if l > logits[best] {
			best = i
		}
	}
	return best
}

// Sample returns the next token id.
func (s *Sampler) Sample(logits []float32) int {
	if s.opts.Temp <= 0 || len(logits) == 1 {
		return Argmax(logits)
	}
	n := len(logits)
	if cap(s.idx) < n {
		s.idx = make([]int, n)
		s.p = make([]float64, n)
	}
	idx := s.idx[:n]
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return logits[idx[a]] > logits[idx[b]] })
	k := n
	if s.opts.TopK > 0 && s.opts.TopK < k {
		k = s.opts.TopK
	}
	idx = idx[:k]
	p := s.p[:k]
	// top-p on the softmax of the untempered logits
	if s.opts.TopP > 0 && s.opts.TopP < 1 {
		softmaxInto(p, logits, idx, 1)
		cum := 0.0
		keep := k
		for i := range p {
			cum += p[i]
			if cum >= s.opts.TopP {
				keep = i + 1
				break
			}
		}
		idx, p = idx[:keep], p[:keep]
	}
	softmaxInto(p, logits, idx, s.opts.Temp)
	r := s.rng.Float64()
	for i := range p {
		r -= p[i]
		if r < 0 {
			return idx[i]
		}
	}
	return idx[len(idx)-1]
}

// softmaxInto writes softmax(logits[idx]/temp) into p; idx is sorted by descending logit.
func softmaxInto(p []float64, logits []float32, idx []int, temp float64) {
	mx := float64(logits[idx[0]]) / temp
	sum := 0.0
	for i, j := range idx {
		p[i] = math.Exp(float64(logits[j])/temp - mx)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
}
