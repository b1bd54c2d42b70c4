// Package eval measures models: perplexity the way llama.cpp's llama-perplexity does, KL
// divergence and top-token agreement against a base model (its --kl-divergence statistics),
// prompt-processing / text-generation speed the way llama-bench does, and the generation loop
// behind `qsparse run`. Sweep evaluates a list of sparsity configurations against the dense
// model in one Report. Every measurement ends in one result struct (Report, KLResult,
// BenchReport, GenStats) from which all its outputs (table, markdown, CSV, JSON, SVG) are built.
//
// The measuring code runs on the Forwarder interface (model.State satisfies it), so it is tested
// against small fakes and slow twins; model.go holds the thin *model.Model wrappers.
package eval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"
)

// contexter is a Forwarder that can stop inside a Forward call (model.State.SetContext).
type contexter interface{ SetContext(context.Context) }

// setContext passes ctx to st when it can stop inside a Forward call.
func setContext(st Forwarder, ctx context.Context) {
	if c, ok := st.(contexter); ok {
		c.SetContext(ctx)
	}
}

// Forwarder is the part of a model state that perplexity needs (model.State satisfies it).
type Forwarder interface {
	// Reset clears the KV cache.
	Reset()
	// Forward runs tokens at positions pos.. and writes logits: len(logits) == vocab for the
	// last token only, or len(tokens)*vocab for every token.
	Forward(tokens []int, pos int, logits []float32) error
}

// PPLOptions configures a perplexity run.
type PPLOptions struct {
	Ctx    int // tokens per chunk (llama.cpp -c); required
	Batch  int // tokens per Forward call (llama.cpp -b); 0 or > Ctx means Ctx
	Chunks int // evaluate at most this many chunks; <= 0 means all
	Vocab  int // logits per token; required
	// BOS replaces every chunk's first token when >= 0 (set it when the vocab adds BOS).
	BOS int
	// Progress, when set, is called after every chunk (from the calling goroutine).
	Progress func(Progress)
	// Shard and Shards split the chunks over Shards runs: this run evaluates the chunks c (0-based)
	// with c % Shards == Shard. Shards <= 1 evaluates every chunk.
	Shard, Shards int
}

// Progress reports a finished chunk.
type Progress struct {
	Chunk   int     // chunks finished in this run (1-based count; the text's chunk with --shard)
	Chunks  int     // total chunks in this run (this shard's with Shards > 1)
	PPL     float64 // running perplexity over all chunks so far
	KLD     float64 // running mean KL divergence (KLDivergenceWith only)
	Tokens  int     // tokens scored so far
	Elapsed time.Duration
}

// PPLResult is the outcome of one perplexity run.
type PPLResult struct {
	PPL     float64   `json:"ppl"`
	Err     float64   `json:"ppl_err"`  // llama.cpp's "+/-": PPL * sqrt((E[nll²]-E[nll]²)/(n-1))
	MeanNLL float64   `json:"mean_nll"` // natural log
	Tokens  int       `json:"tokens"`   // tokens scored
	Chunks  int       `json:"chunks"`
	Ctx     int       `json:"ctx"`
	Running []float64 `json:"running_ppl"` // running perplexity after each chunk (llama.cpp's [i] values)
	Seconds float64   `json:"seconds"`
	// Sums are the raw sums of each evaluated chunk, in chunk order (see ChunkSums).
	Sums []ChunkSums `json:"-"`
}

// ErrTooFewTokens is returned (wrapped) when the data does not fill two chunks.
var ErrTooFewTokens = errors.New("too few tokens")

// MinTokens is the number of tokens llama-perplexity requires for a context of ctx: 2*ctx.
func MinTokens(ctx int) int { return 2 * ctx }

// CheckTokens reports whether n tokens are enough for perplexity at context ctx, with
// llama-perplexity's requirement and a message saying what to do.
func CheckTokens(n, ctx int) error {
	if n < MinTokens(ctx) {
		return fmt.Errorf("%w: need at least 2*ctx = %d tokens to evaluate perplexity with a context of %d, but the data tokenizes to only %d; use a longer text or a smaller --ctx",
			ErrTooFewTokens, MinTokens(ctx), ctx, n)
	}
	return nil
}

// NumChunks returns how many chunks a run over n tokens evaluates.
func NumChunks(n int, opts PPLOptions) int {
	if opts.Ctx <= 0 {
		return 0
	}
	c := n / opts.Ctx
	if opts.Chunks > 0 && opts.Chunks < c {
		c = opts.Chunks
	}
	return c
}

// ErrShard is returned (wrapped) for a shard index outside 0..shards-1 or a shard without chunks.
var ErrShard = errors.New("bad shard")

// ShardChunks returns how many of nChunk chunks shard i of n evaluates (the chunks c with
// c % n == i).
func ShardChunks(nChunk, i, n int) int {
	if n <= 1 {
		return nChunk
	}
	if i >= nChunk {
		return 0
	}
	return (nChunk-1-i)/n + 1
}

// PerplexityWith computes perplexity over tokens exactly as llama-perplexity does: non-overlapping
// chunks of opts.Ctx tokens, the KV cache cleared before each, the chunk's first token replaced
// by BOS when opts.BOS >= 0, and positions Ctx/2 .. Ctx-2 predicting their next token, with the
// negative log-likelihood from a float64 log-softmax. tokens is not modified. The context is
// checked between forward calls; on cancellation the error wraps ctx.Err().
func PerplexityWith(ctx context.Context, st Forwarder, tokens []int, opts PPLOptions) (*PPLResult, error) {
	res := &PPLResult{Ctx: opts.Ctx}
	var cur, tot ChunkSums
	start := time.Now()
	nChunk, err := scoreChunks(ctx, "perplexity", []Forwarder{st}, tokens, opts, scorer{
		nvals: 1,
		eval: func(_ int, rows [][]float32, target int, out []float64) {
			out[0] = -logSoftmax(rows[0], target)
		},
		add: func(v []float64) {
			cur.NLL += v[0]
			cur.NLL2 += v[0] * v[0]
			cur.Count++
		}},
		func(chunk, done, nChunk int) {
			cur.Chunk = chunk
			res.Sums = append(res.Sums, cur)
			tot.add(&cur)
			cur = ChunkSums{}
			running := math.Exp(tot.NLL / float64(tot.Count))
			res.Running = append(res.Running, running)
			if opts.Progress != nil {
				opts.Progress(Progress{Chunk: done, Chunks: nChunk, PPL: running, Tokens: tot.Count, Elapsed: time.Since(start)})
			}
		})
	if err != nil {
		return nil, err
	}
	res.Chunks = nChunk
	res.Seconds = time.Since(start).Seconds()
	res.PPL, res.Err, res.MeanNLL = pplStats(tot.NLL, tot.NLL2, tot.Count)
	res.Tokens = tot.Count
	return res, nil
}

// pplStats returns exp(mean nll) and llama.cpp's error estimate from the sums of nll and nll².
func pplStats(nll, nll2 float64, count int) (ppl, perr, mean float64) {
	mean = nll / float64(count)
	ppl = math.Exp(mean)
	if v := nll2/float64(count) - mean*mean; v > 0 && count > 1 {
		perr = ppl * math.Sqrt(v/float64(count-1))
	}
	return ppl, perr, mean
}

// scorer turns the logits at one scored position into values (in parallel), then accumulates
// them (in position order, so results do not depend on the number of workers).
type scorer struct {
	nvals int
	// eval writes the values of one position into out (len nvals) from the logits row of each
	// state and the token that follows. It runs concurrently; w in [0, scoreWorkers) identifies
	// the worker, for per-worker scratch space.
	eval func(w int, rows [][]float32, target int, out []float64)
	// add accumulates the values of one position.
	add func(vals []float64)
}

// scoreWorkers is the number of goroutines that score logits rows.
func scoreWorkers() int { return max(1, runtime.GOMAXPROCS(0)) }

// scoreChunks runs the llama-perplexity chunk loop over every state in sts in lockstep (same
// tokens, same batches) and scores each scored position with sc; done is called after each
// chunk with its 0-based index in the text, the number of chunks finished (1-based) and the
// number this run evaluates (its shard's with opts.Shards > 1), which it returns.
func scoreChunks(ctx context.Context, what string, sts []Forwarder, tokens []int, opts PPLOptions,
	sc scorer, done func(chunk, finished, nChunk int)) (int, error) {
	nctx := opts.Ctx
	if nctx < 4 {
		return 0, fmt.Errorf("%s: context %d is too small (need at least 4)", what, nctx)
	}
	if opts.Vocab <= 0 {
		return 0, fmt.Errorf("%s: vocabulary size %d is invalid", what, opts.Vocab)
	}
	if err := CheckTokens(len(tokens), nctx); err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	for _, st := range sts {
		setContext(st, ctx) // a long chunk stops within a layer on Ctrl-C
		defer setContext(st, nil)
	}
	nChunk := NumChunks(len(tokens), opts)
	shard, shards := opts.Shard, max(opts.Shards, 1)
	if shard < 0 || shard >= shards {
		return 0, fmt.Errorf("%s: %w: shard %d of %d (want 0 <= shard < %d)", what, ErrShard, shard, shards, shards)
	}
	if shard >= nChunk {
		return 0, fmt.Errorf("%s: %w: shard %d/%d has no chunk to evaluate, the run has only %d chunks; use at most %d shards",
			what, ErrShard, shard, shards, nChunk, nChunk)
	}
	nShard := ShardChunks(nChunk, shard, shards)
	for i, t := range tokens[:nChunk*nctx] {
		if t < 0 || t >= opts.Vocab {
			return 0, fmt.Errorf("%s: token %d at index %d is outside the vocabulary (size %d)", what, t, i, opts.Vocab)
		}
	}
	if opts.BOS >= opts.Vocab {
		return 0, fmt.Errorf("%s: BOS id %d is outside the vocabulary (size %d)", what, opts.BOS, opts.Vocab)
	}
	batch := opts.Batch
	if batch <= 0 || batch > nctx {
		batch = nctx
	}
	first := nctx / 2
	vocab := opts.Vocab

	// As llama.cpp, logits are computed only for positions >= first: a batch straddling first is
	// run as two Forward calls, the part before first asking for the last token's logits only.
	logits := make([][]float32, len(sts))
	for i := range logits {
		logits[i] = make([]float32, min(batch, nctx-first)*vocab)
	}
	buf := make([]int, batch)
	nw := scoreWorkers()
	vals := make([]float64, min(batch, nctx-first)*sc.nvals)
	rows := make([][][]float32, nw)
	for w := range rows {
		rows[w] = make([][]float32, len(sts))
	}
	var wg sync.WaitGroup
	forward := func(chunk, p0, n int, all bool) error {
		base := chunk * nctx
		toks := buf[:n]
		for si, st := range sts {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("%s: stopped at chunk %d of %d: %w", what, chunk+1, nChunk, err)
			}
			copy(toks, tokens[base+p0:base+p0+n]) // a Forwarder may not keep or change them, but be safe
			if p0 == 0 && opts.BOS >= 0 {
				toks[0] = opts.BOS
			}
			out := logits[si][:vocab]
			if all {
				out = logits[si][:n*vocab]
			}
			if err := st.Forward(toks, p0, out); err != nil {
				return fmt.Errorf("%s: chunk %d of %d, positions %d..%d: %w", what, chunk+1, nChunk, p0, p0+n-1, err)
			}
		}
		if !all {
			return nil
		}
		m := min(n, nctx-1-p0) // the last position predicts nothing inside the chunk
		work := func(w int) {
			for k := w; k < m; k += nw {
				r := rows[w]
				for si := range sts {
					r[si] = logits[si][k*vocab : (k+1)*vocab]
				}
				sc.eval(w, r, tokens[base+p0+k+1], vals[k*sc.nvals:(k+1)*sc.nvals])
			}
		}
		for w := 1; w < min(nw, m); w++ {
			wg.Add(1)
			go func() { defer wg.Done(); work(w) }()
		}
		work(0)
		wg.Wait()
		for k := 0; k < m; k++ {
			sc.add(vals[k*sc.nvals : (k+1)*sc.nvals])
		}
		return nil
	}
	finished := 0
	for i := shard; i < nChunk; i += shards {
		for _, st := range sts {
			st.Reset()
		}
		for b0 := 0; b0 < nctx; b0 += batch {
			n := min(batch, nctx-b0)
			if b0 < first {
				m := min(n, first-b0)
				if err := forward(i, b0, m, false); err != nil {
					return 0, err
				}
				if m < n {
					if err := forward(i, first, n-m, true); err != nil {
						return 0, err
					}
				}
			} else if err := forward(i, b0, n, true); err != nil {
				return 0, err
			}
		}
		finished++
		done(i, finished, nShard)
	}
	return nShard, nil
}

// logSoftmax returns log p(tok) under softmax(logits), as llama.cpp's log_softmax: the maximum
// in float32, the sum of exp in float64.
func logSoftmax(logits []float32, tok int) float64 {
	mx := logits[0]
	for _, l := range logits[1:] {
		if l > mx {
			mx = l
		}
	}
	var sum float64
	for _, l := range logits {
		sum += math.Exp(float64(l - mx))
	}
	return float64(logits[tok]-mx) - math.Log(sum)
}

// FormatRunning formats one running value as llama-perplexity prints it: "[i]ppl,".
func FormatRunning(chunk int, ppl float64) string { return fmt.Sprintf("[%d]%.4f,", chunk, ppl) }

// FormatFinal formats the final line as llama-perplexity prints it.
func FormatFinal(r *PPLResult) string {
	return fmt.Sprintf("Final estimate: PPL = %.4f +/- %.5f", r.PPL, r.Err)
}
