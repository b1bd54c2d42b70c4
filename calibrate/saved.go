package calibrate

import (
	"context"
	"fmt"

	"github.com/qsparse/qsparse/model"
)

// Saved is the part of Measurements that can be kept in a file (JSON) and merged: the proxy
// curves and the probe results. Several Measure runs (statistics in one, the probes of
// different layers in others) are merged by Restore.
type Saved struct {
	Fingerprint string                      `json:"fingerprint"`
	Tokens      int                         `json:"tokens"`
	KLTokens    int                         `json:"kl_tokens"`
	ProbeTokens int                         `json:"probe_tokens"`
	Scoring     model.Scoring               `json:"scoring"`
	Probes      []float64                   `json:"probes"`
	Proxy       [][model.NumSites][]float64 `json:"proxy,omitempty"`
	ProbeJ      [][model.NumSites][]int     `json:"probe_j,omitempty"`
	Probe       [][model.NumSites][]float64 `json:"probe,omitempty"`
}

// Export returns the savable part of ms.
func (ms *Measurements) Export() *Saved {
	return &Saved{Fingerprint: model.Fingerprint(ms.sp), Tokens: ms.opt.Tokens, KLTokens: ms.opt.KLTokens,
		ProbeTokens: ms.opt.ProbeTokens, Scoring: ms.opt.Scoring, Probes: ms.opt.Probes,
		Proxy: ms.proxy, ProbeJ: ms.probeJ, Probe: ms.probe}
}

// Restore rebuilds Measurements for m and tokens from saved parts made with the same options:
// the held-out reference is recomputed, the proxy taken from the part that has it, and each
// layer's probes from the part that measured it.
func Restore(ctx context.Context, m *model.Model, tokens []int, opt Options, parts []*Saved) (*Measurements, error) {
	opt.defaults()
	o := opt
	o.Method = MethodUniform // only the held-out evaluator and the grids
	ms, err := Measure(ctx, m, tokens, o)
	if err != nil {
		return nil, err
	}
	ms.opt.Method = opt.Method
	sp := ms.sp
	for _, p := range parts {
		if p.Fingerprint != model.Fingerprint(sp) || p.Tokens != ms.opt.Tokens || p.KLTokens != ms.opt.KLTokens || p.Scoring != ms.opt.Scoring {
			return nil, fmt.Errorf("%w: saved measurements were made with other options or for another model", ErrOptions)
		}
		if p.Proxy != nil {
			ms.proxy = p.Proxy
		}
		for l := range p.Probe {
			if len(p.Probe[l][0]) == 0 {
				continue
			}
			if ms.probe == nil {
				ms.probe = make([][model.NumSites][]float64, sp.NLayers)
				ms.probeJ = make([][model.NumSites][]int, sp.NLayers)
			}
			ms.probe[l], ms.probeJ[l] = p.Probe[l], p.ProbeJ[l]
		}
	}
	if opt.Method == MethodKL {
		for l := range sp.NLayers {
			if ms.probe == nil || len(ms.probe[l][0]) == 0 {
				return nil, fmt.Errorf("%w: the saved measurements lack the probes of layer %d", ErrOptions, l)
			}
		}
	}
	return ms, nil
}
