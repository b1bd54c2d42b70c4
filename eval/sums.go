package eval

import "math"

// ChunkSums are the raw sums over the scored positions of one chunk, from which every figure of
// a row is computed. A run sums each chunk's positions in position order, then adds the chunks in
// chunk order (Total), so a run split into shards and merged (MergeShards) computes exactly the
// same figures as one run over all chunks.
type ChunkSums struct {
	Chunk int `json:"chunk"` // 0-based index of the chunk in the text
	Count int `json:"count"` // scored positions
	// NLL and NLL2 are Σ nll and Σ nll² of the row's model (natural log).
	NLL  float64 `json:"nll"`
	NLL2 float64 `json:"nll2"`
	// BaseNLL and BaseNLL2 are those of the reference (comparisons only).
	BaseNLL  float64 `json:"base_nll,omitempty"`
	BaseNLL2 float64 `json:"base_nll2,omitempty"`
	// KLD and KLD2 are Σ KL(reference || model) and its square; Same counts the positions whose
	// top-1 token is the reference's (comparisons only).
	KLD  float64 `json:"kld,omitempty"`
	KLD2 float64 `json:"kld2,omitempty"`
	Same int     `json:"same,omitempty"`
}

// add adds the sums of o (another chunk) to s.
func (s *ChunkSums) add(o *ChunkSums) {
	s.Count += o.Count
	s.NLL += o.NLL
	s.NLL2 += o.NLL2
	s.BaseNLL += o.BaseNLL
	s.BaseNLL2 += o.BaseNLL2
	s.KLD += o.KLD
	s.KLD2 += o.KLD2
	s.Same += o.Same
}

// Total adds the chunks' sums in slice order (Chunk is left -1) and returns the running
// perplexity after each chunk, exp(Σnll/count) over the chunks so far.
func Total(chunks []ChunkSums) (ChunkSums, []float64) {
	t := ChunkSums{Chunk: -1}
	running := make([]float64, 0, len(chunks))
	for i := range chunks {
		t.add(&chunks[i])
		running = append(running, math.Exp(t.NLL/float64(t.Count)))
	}
	return t, running
}

// klStats returns the mean KL divergence, its standard error, the top-1 agreement and its
// standard error from total sums.
func klStats(t *ChunkSums) (kld, kldErr, same, sameErr float64) {
	n := float64(t.Count)
	if t.Count == 0 {
		return 0, 0, 0, 0
	}
	kld = t.KLD / n
	if v := t.KLD2/n - kld*kld; v > 0 && t.Count > 1 {
		kldErr = math.Sqrt(v / (n - 1))
	}
	same = float64(t.Same) / n
	if t.Count > 1 {
		sameErr = math.Sqrt(same * (1 - same) / (n - 1))
	}
	return kld, kldErr, same, sameErr
}
