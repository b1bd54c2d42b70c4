package calibrate

import (
	"context"
	"fmt"

	"github.com/qsparse/qsparse/model"
)

// budgetSteps is the number of bisection steps of a KL or perplexity budget (precision
// MaxRatio/2^budgetSteps in sparsity).
const budgetSteps = 8

// Allocate chooses the profile for opt's method and target or budget from the measurements
// (opt's Tokens, KLTokens, Ctx and Probes are those of Measure). The teal and kl methods need
// Measure to have run with their method (kl measurements serve all three).
func (ms *Measurements) Allocate(ctx context.Context, opt Options) (*model.Profile, error) {
	opt.defaults()
	opt.Tokens, opt.KLTokens, opt.Ctx, opt.Probes, opt.ProbeTokens = ms.opt.Tokens, ms.opt.KLTokens, ms.opt.Ctx, ms.opt.Probes, ms.opt.ProbeTokens
	if err := opt.check(ms.Tokens); err != nil {
		return nil, err
	}
	if opt.Scoring != ms.opt.Scoring {
		return nil, fmt.Errorf("%w: the measurements were made with %s scoring, not %s", ErrOptions, ms.opt.Scoring, opt.Scoring)
	}
	switch {
	case opt.Method == MethodTEAL && ms.proxy == nil, opt.Method == MethodKL && ms.probe == nil:
		return nil, fmt.Errorf("%w: method %s needs measurements made for it (these were for %s)", ErrOptions, opt.Method, ms.opt.Method)
	}
	var p *model.Profile
	var res klResult
	var err error
	if opt.Target != 0 {
		p, res, err = ms.at(ctx, opt, opt.Target)
	} else {
		p, res, err = ms.budget(ctx, opt)
	}
	if err != nil {
		return nil, err
	}
	p.Model = model.NewModelID(ms.sp)
	p.Calibration = &model.Calibration{
		Method: opt.Method, Target: opt.Target, MaxKL: opt.MaxKL, MaxPPL: opt.MaxPPL, Tokens: ms.Tokens,
		Sparsity: round6(p.ByteSparsity(ms.sp)), KL: round6(res.KL), PPL: round6(res.PPL), DensePPL: round6(ms.eval.densePPL),
	}
	return p, nil
}

// budget bisects the target sparsity for the highest one whose held-out error is within opt's
// budget.
func (ms *Measurements) budget(ctx context.Context, opt Options) (*model.Profile, klResult, error) {
	within := func(r klResult) bool {
		if opt.MaxKL != 0 {
			return r.KL <= opt.MaxKL
		}
		return r.PPL <= ms.eval.densePPL*(1+opt.MaxPPL)
	}
	if opt.Method == MethodKL {
		return ms.klBudget(ctx, opt, within)
	}
	best := ms.dense()
	bestRes := klResult{PPL: ms.eval.densePPL}
	lo, hi := 0.0, opt.MaxRatio
	for step := range budgetSteps {
		mid := round6((lo + hi) / 2)
		p, res, err := ms.at(ctx, opt, mid)
		if err != nil {
			return nil, klResult{}, err
		}
		if within(res) {
			lo, best, bestRes = mid, p, res
		} else {
			hi = mid
		}
		if opt.Progress != nil {
			opt.Progress(Progress{Stage: "budget", Done: step + 1, Total: budgetSteps, KL: res.KL})
		}
	}
	return best, bestRes, nil
}

// at returns the method's profile at byte-weighted sparsity t and its held-out error.
func (ms *Measurements) at(ctx context.Context, opt Options, t float64) (*model.Profile, klResult, error) {
	var cands []*model.Profile
	switch opt.Method {
	case MethodUniform:
		p, err := model.UniformProfile(ms.sp, t)
		if err != nil {
			return nil, klResult{}, fmt.Errorf("calibrate: %w", err)
		}
		p.Scoring = opt.Scoring
		cands = append(cands, p)
	case MethodTEAL:
		cands = append(cands, ms.teal(t, opt.MaxRatio))
	case MethodKL:
		p, res, _, err := ms.klSearch(ctx, t, opt)
		return p, res, err
	}
	var best *model.Profile
	var bestRes klResult
	for i, p := range cands {
		res, err := ms.eval.measure(ctx, p)
		if err != nil {
			return nil, klResult{}, err
		}
		res.KL, res.PPL = round6(res.KL), round6(res.PPL)
		if best == nil || res.KL < bestRes.KL {
			best, bestRes = p, res
		}
		if opt.Progress != nil && len(cands) > 1 {
			opt.Progress(Progress{Stage: "search", Done: i + 1, Total: len(cands), KL: res.KL})
		}
	}
	return best, bestRes, nil
}

// siteUnits returns one unit per (layer, site), index l*NumSites+s, with the given cost curves.
func (ms *Measurements) siteUnits(maxRatio float64, cost func(l int, s model.Site) []float64) []unit {
	sp := ms.sp
	units := make([]unit, 0, sp.NLayers*int(model.NumSites))
	for l := range sp.NLayers {
		for s := model.AttnIn; s < model.NumSites; s++ {
			units = append(units, ms.newUnit(s, cost(l, s), maxRatio))
		}
	}
	return units
}

func (ms *Measurements) newUnit(s model.Site, cost []float64, maxRatio float64) unit {
	g := ms.grids[s]
	w := float64(ms.sp.SiteParams(s))
	u := unit{keep: g.keep, cost: cost, saved: make([]float64, len(g.keep))}
	for j, k := range g.keep {
		u.saved[j] = w * (1 - float64(k)/float64(g.dim))
		if float64(k) < (1-maxRatio)*float64(g.dim)-1e-9 {
			u.lo = j + 1
		}
	}
	return u
}

// totalParams returns Σ SiteParams over all layers and sites.
func (ms *Measurements) totalParams() float64 {
	var w float64
	for s := model.AttnIn; s < model.NumSites; s++ {
		w += float64(ms.sp.SiteParams(s))
	}
	return w * float64(ms.sp.NLayers)
}

// profileOf turns per-(layer, site) grid indices into a profile.
func (ms *Measurements) profileOf(units []unit, js []int) *model.Profile {
	p := ms.dense()
	for i, j := range js {
		p.Keep[i/int(model.NumSites)][i%int(model.NumSites)] = units[i].keep[j]
	}
	return p
}

// teal is the TEAL-style allocation: every layer saves the fraction t of its site bytes, split
// between its sites by a greedy that each time raises, by one grid step, the site whose relative
// output error (dropped over total energy of the proxy) grows least per byte.
func (ms *Measurements) teal(t, maxRatio float64) *model.Profile {
	units := ms.siteUnits(maxRatio, func(l int, s model.Site) []float64 {
		px := ms.proxy[l][s]
		c := make([]float64, len(px))
		if tot := px[0]; tot > 0 {
			for j, v := range px {
				c[j] = v / tot
			}
		}
		return c
	})
	js := make([]int, len(units))
	ns := int(model.NumSites)
	for l := range ms.sp.NLayers {
		lu := units[l*ns : (l+1)*ns]
		lj := js[l*ns : (l+1)*ns]
		var layer float64
		for i := range lu {
			lj[i] = lu[i].full()
			layer += lu[i].saved[0]
		}
		fill(lu, lj, t*layer*(1-1e-12), true)
	}
	return ms.profileOf(units, js)
}
