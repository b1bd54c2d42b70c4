package eval

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/qsparse/qsparse/model"
)

// KLResult compares a test model (e.g. a sparse one) with a base model (dense) on the same
// chunks, as llama-perplexity --kl-divergence does: perplexity of both, the KL divergence
// KL(base || test) of the next-token distributions, and how often their top tokens agree.
type KLResult struct {
	PPL         float64 `json:"ppl"` // test model
	Err         float64 `json:"ppl_err"`
	MeanNLL     float64 `json:"mean_nll"`
	BasePPL     float64 `json:"base_ppl"`
	BaseErr     float64 `json:"base_ppl_err"`
	BaseMeanNLL float64 `json:"base_mean_nll"`
	KLD         float64 `json:"kld"`     // mean KL(base || test), nats
	KLDErr      float64 `json:"kld_err"` // standard error of the mean
	KLDMedian   float64 `json:"kld_median"`
	KLD99       float64 `json:"kld_p99"`
	KLDMax      float64 `json:"kld_max"`
	SameTop     float64 `json:"same_top"`     // fraction of positions whose argmax agrees
	SameTopErr  float64 `json:"same_top_err"` // standard error
	Tokens      int     `json:"tokens"`
	Chunks      int     `json:"chunks"`
	Ctx         int     `json:"ctx"`
	Seconds     float64 `json:"seconds"`
	// Sums are the raw sums of each evaluated chunk, in chunk order (see ChunkSums).
	Sums []ChunkSums `json:"-"`
}

// KLDivergenceWith runs the llama-perplexity chunk loop (see PerplexityWith) over base and test
// in lockstep and compares their distributions at every scored position. Progress reports the
// test model's running perplexity and the running mean KLD.
func KLDivergenceWith(ctx context.Context, base, test Forwarder, tokens []int, opts PPLOptions) (*KLResult, error) {
	res := &KLResult{Ctx: opts.Ctx}
	var cur, tot ChunkSums
	var klds []float64
	nw := scoreWorkers()
	lpb, lpt := make([][]float64, nw), make([][]float64, nw)
	start := time.Now()
	nChunk, err := scoreChunks(ctx, "kl-divergence", []Forwarder{base, test}, tokens, opts, scorer{
		nvals: 4,
		eval: func(w int, rows [][]float32, target int, out []float64) {
			b, t := rows[0], rows[1]
			if lpb[w] == nil {
				lpb[w], lpt[w] = make([]float64, len(b)), make([]float64, len(b))
			}
			lb, lt := lpb[w], lpt[w]
			logSoftmaxAll(lb, b)
			logSoftmaxAll(lt, t)
			var kl float64
			for i := range b {
				if p := math.Exp(lb[i]); p > 0 {
					kl += p * (lb[i] - lt[i])
				}
			}
			out[0] = max(kl, 0)
			out[1] = -lb[target]
			out[2] = -lt[target]
			out[3] = 0
			if model.Argmax(b) == model.Argmax(t) {
				out[3] = 1
			}
		},
		add: func(v []float64) {
			cur.KLD += v[0]
			cur.KLD2 += v[0] * v[0]
			klds = append(klds, v[0])
			cur.BaseNLL += v[1]
			cur.BaseNLL2 += v[1] * v[1]
			cur.NLL += v[2]
			cur.NLL2 += v[2] * v[2]
			cur.Same += int(v[3])
			cur.Count++
		}},
		func(chunk, done, nChunk int) {
			cur.Chunk = chunk
			res.Sums = append(res.Sums, cur)
			tot.add(&cur)
			cur = ChunkSums{}
			if opts.Progress != nil {
				opts.Progress(Progress{Chunk: done, Chunks: nChunk, PPL: math.Exp(tot.NLL / float64(tot.Count)),
					KLD: tot.KLD / float64(tot.Count), Tokens: tot.Count, Elapsed: time.Since(start)})
			}
		})
	if err != nil {
		return nil, err
	}
	res.Chunks, res.Tokens, res.Seconds = nChunk, tot.Count, time.Since(start).Seconds()
	res.PPL, res.Err, res.MeanNLL = pplStats(tot.NLL, tot.NLL2, tot.Count)
	res.BasePPL, res.BaseErr, res.BaseMeanNLL = pplStats(tot.BaseNLL, tot.BaseNLL2, tot.Count)
	res.KLD, res.KLDErr, res.SameTop, res.SameTopErr = klStats(&tot)
	slices.Sort(klds)
	res.KLDMedian = quantile(klds, 0.5)
	res.KLD99 = quantile(klds, 0.99)
	res.KLDMax = klds[len(klds)-1]
	return res, nil
}

// logSumExp returns log Σ exp(x_i - max x).
func logSumExp(x []float32) float64 {
	mx := x[model.Argmax(x)]
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v - mx))
	}
	return math.Log(s)
}

// logSoftmaxAll writes log softmax(x) into dst (float64).
func logSoftmaxAll(dst []float64, x []float32) {
	mx := x[model.Argmax(x)]
	l := logSumExp(x)
	for i, v := range x {
		dst[i] = float64(v-mx) - l
	}
}

// quantile returns the q-quantile of sorted x by linear interpolation.
func quantile(x []float64, q float64) float64 {
	if len(x) == 0 {
		return 0
	}
	pos := q * float64(len(x)-1)
	i := int(pos)
	if i >= len(x)-1 {
		return x[len(x)-1]
	}
	f := pos - float64(i)
	return x[i]*(1-f) + x[i+1]*f
}

// FormatKL formats the comparison as llama-perplexity --kl-divergence prints its statistics.
func FormatKL(r *KLResult) string {
	return fmt.Sprintf("Mean PPL(Q)    : %10.6f ± %10.6f\n", r.PPL, r.Err) +
		fmt.Sprintf("Mean PPL(base) : %10.6f ± %10.6f\n", r.BasePPL, r.BaseErr) +
		fmt.Sprintf("Mean    KLD: %10.6f ± %10.6f\n", r.KLD, r.KLDErr) +
		fmt.Sprintf("Maximum KLD: %10.6f\n", r.KLDMax) +
		fmt.Sprintf("99.0%%   KLD: %10.6f\n", r.KLD99) +
		fmt.Sprintf("Median  KLD: %10.6f\n", r.KLDMedian) +
		fmt.Sprintf("Same top p: %6.3f ± %5.3f %%\n", 100*r.SameTop, 100*r.SameTopErr)
}
