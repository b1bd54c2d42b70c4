package eval

import (
	"context"
	"fmt"

	"github.com/qsparse/qsparse/model"
)

// Config is one configuration of a sweep: a sparsity profile of the model and how to label it.
type Config struct {
	// Label names the row ("top-K |x|", "2:4 |x|", a profile file, ...); the requested sparsity
	// column tells rows of one label apart.
	Label string
	// Family is the series the row belongs to in plots ("magnitude", "weighted", ...).
	Family string
	// Profile is the activation sparsity (nil or a dense profile: the dense row).
	Profile *model.Profile
	// Requested is the sparsity asked for (a uniform ratio, 1-N/M, a calibration target).
	Requested float64
}

// DefaultCacheMemory is the default memory budget of a sweep's dense-logits cache; a larger
// cache goes to a temporary file.
const DefaultCacheMemory = 512 << 20

// SweepOptions configures Sweep.
type SweepOptions struct {
	// Ctx, Batch and Chunks as for Perplexity (Vocab and BOS are taken from the model);
	// Progress is called after every chunk of every row.
	PPLOptions
	// Base, when set, is the reference of every row instead of the dense model: it gets a row
	// of its own ("base") and the dense model's row is compared with it.
	Base *model.Model
	// DenseLabel labels the dense row ("" is "dense").
	DenseLabel string
	// CacheMemory is the memory budget of the cache of reference logits (0:
	// DefaultCacheMemory); CacheDir is where a larger cache is written ("": os.TempDir()).
	CacheMemory int64
	CacheDir    string
	// RowStart is called before each forward pass: i is the index of the first row it makes,
	// n the number of rows.
	RowStart func(i, n int, label string)
	// RowDone is called with every finished row and its result (exactly one of ppl, kl is set;
	// the dense row of a run without Base has ppl).
	RowDone func(row *Row, ppl *PPLResult, kl *KLResult)
	// Warn, when set, receives notes about the run (e.g. the cache falling back to recomputing).
	Warn func(string)
}

// Sweep evaluates the model m dense and under every configuration on tokens and returns one
// report: the reference row first (the dense model, or Base then the dense model), then one
// row per non-dense configuration in order, with perplexity, ΔPPL, the KL divergence from the
// reference, top-1 agreement and the weight bytes a decoded token reads.
//
// The reference runs once: its logits are recorded (in memory or a temporary file) and replayed
// against every sparse configuration, so each row costs one forward pass of the sparse model.
// On cancellation (or any other error) the report holds the rows already finished, with
// Incomplete set, and the error wraps ctx.Err().
func Sweep(ctx context.Context, m *model.Model, tokens []int, configs []Config, opts SweepOptions) (*Report, error) {
	sp := &m.Spec
	o := opts.PPLOptions
	if o.Ctx < 4 {
		return nil, fmt.Errorf("sweep: context %d is too small (need at least 4)", o.Ctx)
	}
	if err := CheckTokens(len(tokens), o.Ctx); err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	if o.Batch <= 0 || o.Batch > o.Ctx {
		o.Batch = o.Ctx
	}
	o.Vocab, o.BOS = sp.Vocab, BOS(m)
	if b := opts.Base; b != nil && b.Spec.Vocab != sp.Vocab {
		return nil, fmt.Errorf("sweep: the base model has %d logits per token but the model has %d; compare models with the same vocabulary",
			b.Spec.Vocab, sp.Vocab)
	}
	denseLabel := opts.DenseLabel
	if denseLabel == "" {
		denseLabel = "dense"
	}
	var sparse []Config
	for _, c := range configs {
		if c.Profile == nil {
			continue // the dense row
		}
		if err := c.Profile.Validate(sp); err != nil {
			return nil, fmt.Errorf("sweep: configuration %q: %w", c.Label, err)
		}
		if c.Profile.Dense(sp) {
			continue // the dense row stands for it
		}
		sparse = append(sparse, c)
	}

	dense := m.DenseBytesPerToken()
	rep := &Report{Ctx: o.Ctx, Batch: o.Batch, DataTokens: len(tokens), DenseBytes: dense}
	nrows := 1 + len(sparse)
	if opts.Base != nil {
		nrows++
	}
	var running []float64
	userProgress := o.Progress
	o.Progress = func(p Progress) {
		running = append(running, p.PPL)
		if userProgress != nil {
			userProgress(p)
		}
	}
	finish := func(err error) (*Report, error) {
		rep.Incomplete = len(rep.Rows) < nrows
		return rep, err
	}
	done := func(row Row, ppl *PPLResult, kl *KLResult) {
		rep.Rows = append(rep.Rows, row)
		if opts.RowDone != nil {
			opts.RowDone(&rep.Rows[len(rep.Rows)-1], ppl, kl)
		}
	}

	// The reference pass, recording its logits for the sparse rows.
	var cache *logitCache
	if len(sparse) > 0 {
		nChunk := int64(ShardChunks(NumChunks(len(tokens), o), o.Shard, o.Shards))
		want := nChunk * int64(o.Ctx-o.Ctx/2+o.Ctx/o.Batch+2) * int64(o.Vocab)
		budget := opts.CacheMemory
		if budget <= 0 {
			budget = DefaultCacheMemory
		}
		var err error
		if cache, err = newLogitCache(want, budget, opts.CacheDir); err != nil {
			opts.warn(fmt.Sprintf("sweep: %v; the reference is recomputed for every row", err))
			cache = nil
		} else {
			defer cache.Close()
		}
	}
	st := m.NewState(o.Ctx)
	if opts.RowStart != nil {
		opts.RowStart(0, nrows, denseLabel)
	}
	running = nil
	if opts.Base == nil {
		var ref Forwarder = st
		if cache != nil {
			ref = &recorder{inner: st, cache: cache}
		}
		res, err := PerplexityWith(ctx, ref, tokens, o)
		if err != nil {
			return finish(fmt.Errorf("sweep: %s: %w", denseLabel, err))
		}
		row := RowFromPPL(denseLabel, 0, res)
		row.Reference, row.SameTop, row.Bytes, row.BytesFrac = true, 1, dense, 1
		row.Sums = res.Sums
		done(row, res, nil)
	} else {
		bst := opts.Base.NewState(o.Ctx)
		var ref Forwarder = bst
		if cache != nil {
			ref = &recorder{inner: bst, cache: cache}
		}
		kl, err := KLDivergenceWith(ctx, ref, st, tokens, o)
		if err != nil {
			return finish(fmt.Errorf("sweep: %s: %w", denseLabel, err))
		}
		bb := opts.Base.DenseBytesPerToken()
		done(Row{Label: "base", PPL: kl.BasePPL, Err: kl.BaseErr, MeanNLL: kl.BaseMeanNLL, Tokens: kl.Tokens,
			Chunks: kl.Chunks, Seconds: kl.Seconds, SameTop: 1, Reference: true, Bytes: bb,
			BytesFrac: float64(bb) / float64(dense), Sums: baseSums(kl.Sums)}, nil, nil)
		row := RowFromKL(denseLabel, 0, kl)
		row.Running, row.Bytes, row.BytesFrac = running, dense, 1
		row.Sums = kl.Sums
		done(row, nil, kl)
	}
	if cache != nil && cache.err != nil {
		opts.warn(fmt.Sprintf("sweep: %v; the reference is recomputed for every row", cache.err))
		cache.Close()
		cache = nil
	}

	// One pass per sparse configuration, against the replayed (or recomputed) reference.
	var refState Forwarder
	for _, c := range sparse {
		var ref Forwarder
		switch {
		case cache != nil:
			ref = &replayer{cache: cache}
		case refState != nil:
			ref = refState
		case opts.Base != nil:
			refState = opts.Base.NewState(o.Ctx)
			ref = refState
		default:
			refState = m.NewState(o.Ctx)
			ref = refState
		}
		if err := st.SetProfile(c.Profile); err != nil {
			return finish(fmt.Errorf("sweep: configuration %q: %w", c.Label, err))
		}
		if opts.RowStart != nil {
			opts.RowStart(len(rep.Rows), nrows, c.Label)
		}
		running = nil
		kl, err := KLDivergenceWith(ctx, ref, st, tokens, o)
		if err != nil {
			return finish(fmt.Errorf("sweep: %s (row %d of %d): %w", c.Label, len(rep.Rows)+1, nrows, err))
		}
		row := RowFromKL(c.Label, c.Requested, kl)
		row.Family, row.Scoring = c.Family, string(scoringOf(c.Profile))
		row.ByteSparsity = c.Profile.ByteSparsity(sp)
		row.Bytes = m.BytesPerToken(c.Profile)
		row.BytesFrac = float64(row.Bytes) / float64(dense)
		row.DeltaPPL = kl.PPL/rep.Rows[0].PPL - 1
		row.Running = running
		row.Sums = kl.Sums
		done(row, nil, kl)
	}
	return finish(nil)
}

// baseSums are the reference model's sums of a comparison, as the sums of its own row.
func baseSums(kl []ChunkSums) []ChunkSums {
	out := make([]ChunkSums, len(kl))
	for i, c := range kl {
		out[i] = ChunkSums{Chunk: c.Chunk, Count: c.Count, NLL: c.BaseNLL, NLL2: c.BaseNLL2}
	}
	return out
}

func scoringOf(p *model.Profile) model.Scoring {
	if p == nil || p.Scoring == "" {
		return model.ScoreMagnitude
	}
	return p.Scoring
}

func (o *SweepOptions) warn(s string) {
	if o.Warn != nil {
		o.Warn(s)
	}
}
