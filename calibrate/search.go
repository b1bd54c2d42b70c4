package calibrate

import (
	"context"

	"github.com/qsparse/qsparse/model"
)

// Search parameters of the kl method (see klSearch).
var (
	// layerAlphas are the strengths of the per-layer refinement tried: 0 gives every layer a
	// site type's ratio, 1 the Lagrangian allocation of the type's budget between layers.
	layerAlphas = []float64{0, 0.5, 1}
	// searchSteps are the sizes of the budget exchanges between site types, as fractions of
	// all site bytes, tried in turn from the largest.
	searchSteps = []float64{0.04, 0.02}
	// searchEvals caps the held-out forward passes of the type-budget exchanges.
	searchEvals = 30
)

// typeBudget is the bytes each site type saves over all layers.
type typeBudget [model.NumSites]float64

// klPlan is a point of the kl method's search: type budgets and the layer alpha.
type klPlan struct {
	budget typeBudget
	alpha  float64
}

// klSetup returns the per-(layer, site) units of the modelled KL, the per-type units (costs and
// savings of all layers added) and the target in weights for sparsity t.
func (ms *Measurements) klSetup(t float64, opt Options) ([]unit, []unit, float64) {
	sp := ms.sp
	ns := int(model.NumSites)
	units := ms.siteUnits(opt.MaxRatio, ms.klCost)
	types := make([]unit, ns)
	for s := range ns {
		u := ms.newUnit(model.Site(s), nil, opt.MaxRatio)
		u.cost = make([]float64, len(u.keep))
		for j := range u.saved {
			u.saved[j] *= float64(sp.NLayers)
			for l := range sp.NLayers {
				u.cost[j] += units[l*ns+s].cost[j]
			}
		}
		types[s] = u
	}
	return units, types, t * ms.totalParams() * (1 - 1e-12)
}

// klStart returns the Lagrangian type budgets of the modelled costs at sparsity t.
func klStart(types []unit, target float64) typeBudget {
	var b typeBudget
	for s, j := range lagrange(types, target) {
		b[s] = types[s].saved[j]
	}
	return b
}

// klSearch is the kl method at byte-weighted sparsity t. It allocates in two levels:
//
//  1. how many bytes each site type (attn_in, attn_out, mlp_in, mlp_down) saves over the whole
//     model: started from the Lagrangian allocation of the modelled costs summed over layers,
//     then improved on the measured held-out KL by exchanging fixed-size budget steps between
//     pairs of types (the best exchange of all pairs each round; the step halved when none
//     helps);
//  2. how each type's budget is split between layers: the Lagrangian allocation of the per-layer
//     modelled costs (from the single-site probes), blended with an even split by alpha, alpha
//     chosen on the measured KL before and after the type search.
//
// Every decision is taken on the measured KL of the whole sparsified model, moves are large and
// of equal byte size, and ties go to the earlier candidate: the result is deterministic.
func (ms *Measurements) klSearch(ctx context.Context, t float64, opt Options) (*model.Profile, klResult, klPlan, error) {
	ns := int(model.NumSites)
	units, types, target := ms.klSetup(t, opt)
	var limit typeBudget
	for s := range ns {
		limit[s] = types[s].saved[types[s].lo]
	}
	evals := 0
	var best *model.Profile
	var bestRes klResult
	var bestPlan klPlan
	try := func(pl klPlan) (bool, error) {
		p := ms.split(units, pl, target)
		res, err := ms.eval.measure(ctx, p)
		if err != nil {
			return false, err
		}
		evals++
		res.KL, res.PPL = round6(res.KL), round6(res.PPL)
		if opt.Progress != nil {
			opt.Progress(Progress{Stage: "search", Done: evals, Total: searchEvals + 2*len(layerAlphas), KL: res.KL})
		}
		if best == nil || res.KL < bestRes.KL {
			best, bestRes, bestPlan = p, res, pl
			return true, nil
		}
		return false, nil
	}
	pickAlpha := func(b typeBudget) error {
		for _, a := range layerAlphas {
			if _, err := try(klPlan{b, a}); err != nil {
				return err
			}
		}
		return nil
	}
	if err := pickAlpha(klStart(types, target)); err != nil {
		return nil, klResult{}, klPlan{}, err
	}
	for _, step := range searchSteps {
		d := step * ms.totalParams()
		for evals < searchEvals+len(layerAlphas) {
			cur := bestPlan
			improved := false
			for a := range ns {
				for b := range ns {
					if a == b || cur.budget[a]+d > limit[a] || cur.budget[b]-d < 0 || evals >= searchEvals+len(layerAlphas) {
						continue
					}
					c := cur
					c.budget[a] += d
					c.budget[b] -= d
					better, err := try(c)
					if err != nil {
						return nil, klResult{}, klPlan{}, err
					}
					improved = improved || better
				}
			}
			if !improved {
				break
			}
		}
	}
	if err := pickAlpha(bestPlan.budget); err != nil {
		return nil, klResult{}, klPlan{}, err
	}
	return best, bestRes, bestPlan, nil
}

// split returns the profile whose site type s saves about pl.budget[s] weights, split between
// layers by the Lagrangian allocation of the modelled costs blended with an even split by
// pl.alpha, then fitted to the global target.
func (ms *Measurements) split(units []unit, pl klPlan, target float64) *model.Profile {
	sp := ms.sp
	ns := int(model.NumSites)
	js := make([]int, len(units))
	for s := range ns {
		sub := make([]unit, sp.NLayers)
		for l := range sp.NLayers {
			sub[l] = units[l*ns+s]
		}
		per := lagrange(sub, pl.budget[s]*(1-1e-12))
		ratio := pl.budget[s] / (float64(sp.SiteParams(model.Site(s))) * float64(sp.NLayers))
		for l := range sp.NLayers {
			u := &units[l*ns+s]
			even := (1 - ratio) * float64(ms.grids[s].dim)
			js[l*ns+s] = nearest(u, (1-pl.alpha)*even+pl.alpha*float64(u.keep[per[l]]))
		}
	}
	fitTarget(units, js, target)
	return ms.profileOf(units, js)
}

// klBudget is the kl method under a KL or perplexity budget: a bisection of the sparsity with
// the starting plan (type budgets from the modelled costs, alpha 0.5; one forward pass per
// step), the full search at the sparsity found, then a bisection above it with the searched
// plan scaled to each sparsity.
func (ms *Measurements) klBudget(ctx context.Context, opt Options, within func(klResult) bool) (*model.Profile, klResult, error) {
	best := ms.dense()
	bestRes := klResult{PPL: ms.eval.densePPL}
	bestT := 0.0
	eval := func(t float64, plan func(types []unit, target float64) klPlan) (bool, error) {
		units, types, target := ms.klSetup(t, opt)
		p := ms.split(units, plan(types, target), target)
		res, err := ms.eval.measure(ctx, p)
		if err != nil {
			return false, err
		}
		res.KL, res.PPL = round6(res.KL), round6(res.PPL)
		if opt.Progress != nil {
			opt.Progress(Progress{Stage: "budget", Done: 0, Total: 1, KL: res.KL})
		}
		if within(res) && t > bestT {
			best, bestRes, bestT = p, res, t
		}
		return within(res), nil
	}
	start := func(types []unit, target float64) klPlan { return klPlan{klStart(types, target), 0.5} }
	lo, hi := 0.0, opt.MaxRatio
	for range budgetSteps {
		mid := round6((lo + hi) / 2)
		ok, err := eval(mid, start)
		if err != nil {
			return nil, klResult{}, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return best, bestRes, nil
	}
	p, res, plan, err := ms.klSearch(ctx, lo, opt)
	if err != nil {
		return nil, klResult{}, err
	}
	if within(res) {
		best, bestRes, bestT = p, res, lo
	}
	var frac typeBudget
	var sum float64
	for _, v := range plan.budget {
		sum += v
	}
	for s, v := range plan.budget {
		frac[s] = v / sum
	}
	scaled := func(types []unit, target float64) klPlan {
		pl := klPlan{alpha: plan.alpha}
		for s := range frac {
			pl.budget[s] = frac[s] * target
		}
		return pl
	}
	lo2, hi2 := lo, min(hi+0.1, opt.MaxRatio)
	for range budgetSteps / 2 {
		mid := round6((lo2 + hi2) / 2)
		ok, err := eval(mid, scaled)
		if err != nil {
			return nil, klResult{}, err
		}
		if ok {
			lo2 = mid
		} else {
			hi2 = mid
		}
	}
	return best, bestRes, nil
}
