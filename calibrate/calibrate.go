// Package calibrate chooses a sparsity profile for a model from a sample of text: it runs the
// model over the sample, gathers per-site activation statistics through the forward pass's site
// hook, measures how much each site's sparsity disturbs the model's output (KL divergence of
// the logits on a held-out slice of the sample), and allocates each layer's and site's K so that
// the byte-weighted sparsity meets a target (or the error a budget).
//
// Methods: "uniform" (one ratio everywhere), "teal" (TEAL-style: the same byte budget in every
// layer, split inside it by a greedy on each site's output error) and "kl" (budgets differ
// between layers and sites, judged by the measured effect on the final logits). See Method.
package calibrate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"

	"github.com/qsparse/qsparse/model"
)

// ErrOptions marks calibration options that cannot be used (bad target, too little text...).
var ErrOptions = errors.New("bad calibration options")

// Method names.
const (
	MethodUniform = "uniform" // one sparsity ratio at every site of every layer
	MethodTEAL    = "teal"    // TEAL-style per-layer greedy, same budget in every layer
	MethodKL      = "kl"      // per-layer and per-site allocation by measured logit KL
)

// Methods lists the method names.
var Methods = []string{MethodUniform, MethodTEAL, MethodKL}

// Options configures Calibrate. Exactly one of Target, MaxKL and MaxPPL is set.
type Options struct {
	Method  string        // "" is MethodKL
	Scoring model.Scoring // "" is magnitude

	Target float64 // byte-weighted sparsity in (0, 1)
	MaxKL  float64 // or: the highest sparsity whose mean KL on the held-out slice is <= MaxKL
	MaxPPL float64 // or: ... whose held-out perplexity is <= dense * (1 + MaxPPL)

	Tokens   int // calibration tokens used (the text must have at least this many); 0: 16384
	KLTokens int // of which the last KLTokens are the held-out slice for KL; 0: 512
	Ctx      int // tokens per chunk; 0: 512
	// ProbeTokens: the single-site probes are measured on the first ProbeTokens of the held-out
	// slice (0: half of it).
	ProbeTokens int

	// Probes are the sparsity ratios at which each (layer, site) is measured alone (kl method);
	// nil: {0.5}.
	Probes []float64
	// MaxRatio caps any one site's sparsity (teal and kl); 0: 0.9.
	MaxRatio float64
	// StatStride: the activation statistics use every StatStride-th token (0: 4); the
	// forward pass still runs over every token.
	StatStride int
	// SkipStats and ProbeLayers split Measure over processes (see Saved): SkipStats leaves out
	// the statistics pass, ProbeLayers (nil: all) limits the probes to these layers.
	SkipStats   bool
	ProbeLayers []int
	// Threads is the number of goroutines of the statistics (0: GOMAXPROCS).
	Threads int

	// Progress, when set, is called as the work advances (from the calling goroutine).
	Progress func(Progress)
}

// Progress reports how far one stage of the calibration is.
type Progress struct {
	Stage string // "statistics", "probes", "search"
	Done  int
	Total int
	// KL is the held-out KL of the candidate just measured (stages "search" and "budget").
	KL float64
}

func (o *Options) defaults() {
	if o.Method == "" {
		o.Method = MethodKL
	}
	if o.Scoring == "" {
		o.Scoring = model.ScoreMagnitude
	}
	if o.Tokens == 0 {
		o.Tokens = 16384
	}
	if o.KLTokens == 0 {
		o.KLTokens = 512
	}
	if o.Ctx == 0 {
		o.Ctx = 512
	}
	if o.ProbeTokens <= 0 || o.ProbeTokens > o.KLTokens {
		o.ProbeTokens = o.KLTokens / 2
	}
	if o.Probes == nil {
		o.Probes = []float64{0.5}
	}
	if o.MaxRatio == 0 {
		o.MaxRatio = 0.9
	}
	if o.StatStride <= 0 {
		o.StatStride = 4
	}
	if o.Threads <= 0 {
		o.Threads = runtime.GOMAXPROCS(0)
	}
}

// check validates o (after defaults) against a text of n tokens.
func (o *Options) check(n int) error {
	set := 0
	for _, v := range []float64{o.Target, o.MaxKL, o.MaxPPL} {
		if v != 0 {
			set++
		}
	}
	switch {
	case set != 1:
		return fmt.Errorf("%w: give exactly one of a target sparsity, a KL budget and a perplexity budget", ErrOptions)
	case o.Target != 0 && !(o.Target > 0 && o.Target < 1):
		return fmt.Errorf("%w: target sparsity %g is outside (0, 1)", ErrOptions, o.Target)
	case o.MaxKL < 0 || math.IsNaN(o.MaxKL) || math.IsInf(o.MaxKL, 0):
		return fmt.Errorf("%w: KL budget %g must be a positive number", ErrOptions, o.MaxKL)
	case o.MaxPPL < 0 || math.IsNaN(o.MaxPPL) || math.IsInf(o.MaxPPL, 0):
		return fmt.Errorf("%w: perplexity budget %g must be a positive fraction (0.1 = 10%%)", ErrOptions, o.MaxPPL)
	case !(o.MaxRatio > 0 && o.MaxRatio < 1):
		return fmt.Errorf("%w: max ratio %g is outside (0, 1)", ErrOptions, o.MaxRatio)
	case o.Ctx < 4:
		return fmt.Errorf("%w: chunk size %d is too small (need at least 4)", ErrOptions, o.Ctx)
	case o.Tokens < 0 || o.KLTokens < 0:
		return fmt.Errorf("%w: token counts must be positive", ErrOptions)
	case o.KLTokens < min(o.Ctx, 4):
		return fmt.Errorf("%w: the held-out slice of %d tokens is too small", ErrOptions, o.KLTokens)
	case o.Tokens < 2*o.KLTokens:
		return fmt.Errorf("%w: --tokens %d must be at least twice the held-out slice of %d tokens", ErrOptions, o.Tokens, o.KLTokens)
	case n < o.Tokens:
		return fmt.Errorf("%w: the calibration text has only %d tokens, but %d were asked for: give a longer text or fewer --tokens", ErrOptions, n, o.Tokens)
	}
	for _, r := range o.Probes {
		if !(r > 0 && r < 1) {
			return fmt.Errorf("%w: probe ratio %g is outside (0, 1)", ErrOptions, r)
		}
	}
	switch o.Method {
	case MethodUniform, MethodTEAL, MethodKL:
	default:
		return fmt.Errorf("%w: unknown method %q (want uniform, teal or kl)", ErrOptions, o.Method)
	}
	_, err := model.ParseScoring(string(o.Scoring))
	return err
}

// Calibrate chooses a profile for m from the calibration text tokens (see Options). The result
// names the model and carries a Calibration record (method, target or budget, tokens used and
// the estimates on the held-out slice); Data and DataSHA are left for the caller. The same
// model, tokens and options give the same profile.
func Calibrate(ctx context.Context, m *model.Model, tokens []int, opt Options) (*model.Profile, error) {
	opt.defaults()
	if err := opt.check(len(tokens)); err != nil {
		return nil, err
	}
	meas, err := Measure(ctx, m, tokens, opt)
	if err != nil {
		return nil, err
	}
	return meas.Allocate(ctx, opt)
}

// round6 rounds v to 6 significant digits: measured errors feed decisions, and rounding them
// keeps last-bit float differences (another kernel, another thread count) from flipping them.
func round6(v float64) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 6, 64), 64)
	return r
}
