package calibrate

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/qsparse/qsparse/eval"
	"github.com/qsparse/qsparse/model"
)

// Measurements is what Calibrate learns from the text before it allocates: per-site proxy error
// curves, the measured effect of sparsifying each site alone, and the held-out evaluator. One
// Measurements serves several Allocate calls (targets, methods) on the same model and text.
type Measurements struct {
	m         *model.Model
	sp        *model.Spec
	opt       Options // of Measure
	grids     [model.NumSites]grid
	proxy     [][model.NumSites][]float64 // [layer][site][grid j] mean dropped energy per token
	probeJ    [][model.NumSites][]int     // grid index of each probe ratio
	probe     [][model.NumSites][]float64 // [layer][site][probe] measured KL of that site alone
	eval      *klEval
	probeEval *klEval // the first ProbeTokens of the held-out slice
	// Tokens is the number of calibration tokens used (statistics + held-out slice).
	Tokens int
}

// Measure runs the statistics pass (teal, kl), the held-out reference and the per-site probes
// (kl) that opt.Method needs.
func Measure(ctx context.Context, m *model.Model, tokens []int, opt Options) (*Measurements, error) {
	opt.defaults()
	if err := opt.check(len(tokens)); err != nil {
		return nil, err
	}
	sp := &m.Spec
	ms := &Measurements{m: m, sp: sp, opt: opt, Tokens: opt.Tokens}
	statToks := tokens[:opt.Tokens-opt.KLTokens]
	held := tokens[opt.Tokens-opt.KLTokens : opt.Tokens]
	chunk := min(opt.Ctx, len(held))
	var err error
	if ms.eval, err = newKLEval(ctx, m, held, chunk, eval.BOS(m), opt.Threads); err != nil {
		return nil, err
	}
	for st := model.AttnIn; st < model.NumSites; st++ {
		d := sp.SiteDim(st)
		ms.grids[st] = newGrid(d, gridUnit(d))
	}
	if opt.Method == MethodUniform {
		return ms, nil
	}
	if !opt.SkipStats {
		if err := ms.statistics(ctx, statToks); err != nil {
			return nil, err
		}
	}
	if opt.Method == MethodKL {
		pt := held[:opt.ProbeTokens]
		if ms.probeEval, err = newKLEval(ctx, m, pt, min(opt.Ctx, len(pt)), eval.BOS(m), opt.Threads); err != nil {
			return nil, err
		}
		if err := ms.probes(ctx); err != nil {
			return nil, err
		}
	}
	return ms, nil
}

// statistics runs the dense model over toks in chunks of opt.Ctx with the collector's hook.
func (ms *Measurements) statistics(ctx context.Context, toks []int) error {
	opt := ms.opt
	norms := ms.m.ColumnNorms()
	if norms == nil {
		return fmt.Errorf("calibrate: the model is closed")
	}
	col := newCollector(ms.sp, norms, opt.Scoring == model.ScoreWeighted, opt.Threads, opt.StatStride)
	ms.grids = col.grids
	st := ms.m.NewState(opt.Ctx)
	st.SetHook(col.hook)
	logits := make([]float32, ms.sp.Vocab)
	bos := eval.BOS(ms.m)
	buf := make([]int, opt.Ctx)
	nChunks := (len(toks) + opt.Ctx - 1) / opt.Ctx
	for c := 0; c < nChunks; c++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("calibrate: statistics: %w", err)
		}
		part := toks[c*opt.Ctx : min(len(toks), (c+1)*opt.Ctx)]
		b := buf[:len(part)]
		copy(b, part)
		if bos >= 0 {
			b[0] = bos
		}
		st.Reset()
		if err := st.Forward(b, 0, logits); err != nil {
			return fmt.Errorf("calibrate: statistics, chunk %d: %w", c+1, err)
		}
		if opt.Progress != nil {
			opt.Progress(Progress{Stage: "statistics", Done: c + 1, Total: nChunks})
		}
	}
	ms.proxy = make([][model.NumSites][]float64, ms.sp.NLayers)
	for l := range ms.proxy {
		for s := range ms.proxy[l] {
			d := col.stats[l][s].dropped
			out := make([]float64, len(d))
			for j, v := range d {
				out[j] = v / float64(max(1, col.tokens[l][s]))
			}
			ms.proxy[l][s] = out
		}
	}
	return nil
}

// probes measures the held-out KL of sparsifying one (layer, site) alone at each probe ratio.
func (ms *Measurements) probes(ctx context.Context) error {
	sp := ms.sp
	n := sp.NLayers * int(model.NumSites) * len(ms.opt.Probes)
	ms.probe = make([][model.NumSites][]float64, sp.NLayers)
	ms.probeJ = make([][model.NumSites][]int, sp.NLayers)
	p := ms.dense()
	done := 0
	for l := range sp.NLayers {
		if ms.opt.ProbeLayers != nil && !slices.Contains(ms.opt.ProbeLayers, l) {
			continue
		}
		for s := model.AttnIn; s < model.NumSites; s++ {
			g := ms.grids[s]
			for _, r := range ms.opt.Probes {
				j := nearestKeep(g.keep, (1-r)*float64(g.dim))
				p.Keep[l][s] = g.keep[j]
				res, err := ms.probeEval.measure(ctx, p)
				if err != nil {
					return err
				}
				ms.probeJ[l][s] = append(ms.probeJ[l][s], j)
				ms.probe[l][s] = append(ms.probe[l][s], round6(res.KL))
				done++
				if ms.opt.Progress != nil {
					ms.opt.Progress(Progress{Stage: "probes", Done: done, Total: n})
				}
			}
			p.Keep[l][s] = g.dim
		}
	}
	return nil
}

// dense returns a profile keeping every channel, with the options' scoring.
func (ms *Measurements) dense() *model.Profile {
	p, _ := model.UniformProfile(ms.sp, 0)
	p.Scoring = ms.opt.Scoring
	return p
}

// nearestKeep returns the index of keep (ascending) closest to k (ties to the larger).
func nearestKeep(keep []int, k float64) int {
	best, bd := len(keep)-1, math.Inf(1)
	for j := len(keep) - 1; j >= 0; j-- {
		if d := math.Abs(float64(keep[j]) - k); d < bd {
			best, bd = j, d
		}
	}
	return best
}

// klCost returns the modelled KL of a (layer, site) at every grid index: the probes' measured
// KL carried along the proxy curve, piecewise linear in log-log between probes, with slope 1
// outside them (or the end segments' slopes, clamped to [1, 3]), made non-decreasing as K falls.
func (ms *Measurements) klCost(l int, s model.Site) []float64 {
	px := ms.proxy[l][s]
	type pt struct{ x, y float64 }
	var pts []pt
	for i, j := range ms.probeJ[l][s] {
		if px[j] <= 0 {
			continue
		}
		pts = append(pts, pt{math.Log(px[j]), math.Log(max(ms.probe[l][s][i], 1e-9))})
	}
	// sort by x (probes are given in any order)
	for i := 1; i < len(pts); i++ {
		for k := i; k > 0 && pts[k].x < pts[k-1].x; k-- {
			pts[k], pts[k-1] = pts[k-1], pts[k]
		}
	}
	cost := make([]float64, len(px))
	if len(pts) == 0 {
		return cost
	}
	slope := func(a, b pt) float64 {
		if b.x-a.x < 1e-9 {
			return 1
		}
		return min(max((b.y-a.y)/(b.x-a.x), 1), 3)
	}
	lo, hi := 1.0, 1.0
	if len(pts) > 1 {
		lo, hi = slope(pts[0], pts[1]), slope(pts[len(pts)-2], pts[len(pts)-1])
	}
	for j, v := range px {
		if v <= 0 {
			continue
		}
		x := math.Log(v)
		var y float64
		switch {
		case x <= pts[0].x:
			y = pts[0].y + lo*(x-pts[0].x)
		case x >= pts[len(pts)-1].x:
			y = pts[len(pts)-1].y + hi*(x-pts[len(pts)-1].x)
		default:
			for k := 1; k < len(pts); k++ {
				if x <= pts[k].x {
					a, b := pts[k-1], pts[k]
					y = a.y + (b.y-a.y)*(x-a.x)/max(b.x-a.x, 1e-12)
					break
				}
			}
		}
		cost[j] = math.Exp(y)
	}
	// non-decreasing as j falls (sparser)
	full := len(cost) - 1
	cost[full] = 0
	for j := full - 1; j >= 0; j-- {
		cost[j] = max(cost[j], cost[j+1])
	}
	return cost
}
