package model

import (
	"math"
	"math/rand/v2"
	"slices"
)

// SamplerOptions configures a Sampler. Temperature 0 is greedy (argmax, lowest id on ties).
// Temperature scales the logits before top-k and top-p filter them (as Hugging Face and
// llama2.c do); top-p is applied to the top-k survivors, renormalised.
type SamplerOptions struct {
	Temperature float64 // 0: greedy
	TopK        int     // keep the K most likely tokens; <= 0: all
	TopP        float64 // keep the smallest set whose probability reaches TopP; <= 0 or >= 1: all
	Seed        uint64  // random seed: the same seed gives the same tokens
	// MinP keeps only tokens whose probability is at least MinP times the top token's (after
	// temperature, top-k and top-p, as Hugging Face's min_p); <= 0: off.
	MinP float64
	// RepeatPenalty divides the positive logits (multiplies the negative ones) of the tokens
	// among the last RepeatLastN accepted ones (see Accept), once per token, before anything
	// else, greedy included (llama.cpp's repeat penalty); 0 or 1: off.
	RepeatPenalty float64
	RepeatLastN   int // tokens the repeat penalty looks back on; <= 0: 64
}

// Sampler picks the next token from logits. It allocates only in NewSampler.
type Sampler struct {
	opt   SamplerOptions
	rng   *rand.Rand
	probs []float32 // [vocab]
	idx   []int32   // [vocab] candidate ids
	pen   []float32 // [vocab] penalised copy of the logits (repeat penalty only)
	last  []int32   // ring of the last RepeatLastN accepted tokens
	nlast int       // tokens accepted so far (the ring holds min(nlast, len(last)))
}

// NewSampler returns a sampler for logits of length vocab.
func NewSampler(vocab int, opt SamplerOptions) *Sampler {
	s := &Sampler{
		opt:   opt,
		rng:   rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x9e3779b97f4a7c15)),
		probs: make([]float32, vocab),
		idx:   make([]int32, vocab),
	}
	if s.penalises() {
		n := opt.RepeatLastN
		if n <= 0 {
			n = 64
		}
		s.pen = make([]float32, vocab)
		s.last = make([]int32, n)
	}
	return s
}

func (s *Sampler) penalises() bool { return s.opt.RepeatPenalty > 0 && s.opt.RepeatPenalty != 1 }

// Accept records a token of the context (prompt or generated) for the repeat penalty.
func (s *Sampler) Accept(id int) {
	if s.last == nil {
		return
	}
	s.last[s.nlast%len(s.last)] = int32(id)
	s.nlast++
}

// penalise returns the logits with the repeat penalty applied to the recent tokens.
func (s *Sampler) penalise(logits []float32) []float32 {
	if s.last == nil || s.nlast == 0 {
		return logits
	}
	pen := s.pen[:len(logits)]
	copy(pen, logits)
	p := float32(s.opt.RepeatPenalty)
	for _, id := range s.last[:min(s.nlast, len(s.last))] {
		if id < 0 || int(id) >= len(pen) || pen[id] != logits[id] {
			continue // out of range, or penalised already (a logit of 0 stays 0 either way)
		}
		if pen[id] <= 0 {
			pen[id] *= p
		} else {
			pen[id] /= p
		}
	}
	return pen
}

// Argmax returns the index of the largest logit (the lowest index on ties).
func Argmax(logits []float32) int {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	return best
}

// Sample returns the next token id for logits (len vocab). logits is not modified.
func (s *Sampler) Sample(logits []float32) int {
	o := s.opt
	logits = s.penalise(logits)
	if o.Temperature <= 0 || o.TopK == 1 {
		return Argmax(logits)
	}
	n := len(logits)
	probs, idx := s.probs[:n], s.idx[:n]
	// Softmax with temperature, in float32 after a float64-safe max shift.
	mx := logits[Argmax(logits)]
	inv := float32(1 / o.Temperature)
	var sum float64
	for i, v := range logits {
		p := float32(math.Exp(float64((v - mx) * inv)))
		probs[i] = p
		sum += float64(p)
	}
	for i := range idx {
		idx[i] = int32(i)
	}
	cand := idx
	// Candidates sorted by probability (descending, then by id) when top-k or top-p needs it.
	byProb := func(a, b int32) int {
		pa, pb := probs[a], probs[b]
		switch {
		case pa > pb:
			return -1
		case pa < pb:
			return 1
		}
		return int(a - b)
	}
	if o.TopK > 0 && o.TopK < n {
		cand = selectTopK(cand, probs, o.TopK)
		slices.SortFunc(cand, byProb)
	} else if o.TopP > 0 && o.TopP < 1 {
		// Drop tokens that cannot be in the nucleus before sorting (as llama2.c):
		// a token with p < (1-TopP)/(n-1) of the total is never needed.
		cut := float32((1 - o.TopP) / float64(n-1) * sum)
		k := 0
		for i, p := range probs {
			if p >= cut {
				idx[k] = int32(i)
				k++
			}
		}
		cand = idx[:k]
		slices.SortFunc(cand, byProb)
	}
	total := 0.0
	for _, c := range cand {
		total += float64(probs[c])
	}
	if o.TopP > 0 && o.TopP < 1 {
		acc := 0.0
		for i, c := range cand {
			acc += float64(probs[c])
			if acc >= o.TopP*total {
				cand = cand[:i+1]
				total = acc
				break
			}
		}
	}
	if o.MinP > 0 {
		// probs are relative to the top token's (exp(0) = 1), so the bound is MinP itself.
		k := 0
		total = 0
		for _, c := range cand {
			if float64(probs[c]) >= o.MinP {
				cand[k] = c
				k++
				total += float64(probs[c])
			}
		}
		cand = cand[:k]
	}
	r := s.rng.Float64() * total
	acc := 0.0
	for _, c := range cand {
		acc += float64(probs[c])
		if r < acc {
			return int(c)
		}
	}
	return int(cand[len(cand)-1])
}

// selectTopK moves the k most probable ids (ties: lower id first) to the front of ids and
// returns them (unsorted), in expected linear time (quickselect with a deterministic pivot).
func selectTopK(ids []int32, probs []float32, k int) []int32 {
	less := func(a, b int32) bool { // a ranks before b
		return probs[a] > probs[b] || (probs[a] == probs[b] && a < b)
	}
	lo, hi := 0, len(ids)-1
	for lo < hi {
		// median of three as pivot
		mid := lo + (hi-lo)/2
		if less(ids[mid], ids[lo]) {
			ids[mid], ids[lo] = ids[lo], ids[mid]
		}
		if less(ids[hi], ids[lo]) {
			ids[hi], ids[lo] = ids[lo], ids[hi]
		}
		if less(ids[hi], ids[mid]) {
			ids[hi], ids[mid] = ids[mid], ids[hi]
		}
		pivot := ids[mid]
		i, j := lo, hi
		for i <= j {
			for less(ids[i], pivot) {
				i++
			}
			for less(pivot, ids[j]) {
				j--
			}
			if i <= j {
				ids[i], ids[j] = ids[j], ids[i]
				i++
				j--
			}
		}
		switch {
		case k-1 <= j:
			hi = j
		case k-1 >= i:
			lo = i
		default:
			return ids[:k]
		}
	}
	return ids[:k]
}
