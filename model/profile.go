package model

import "github.com/qsparse/qsparse/sparse"

// Profile is an activation-sparsity setting of a model: for every layer and site, how many
// input channels of each token are kept before the site's projections run (the top-K by |x|,
// Q-Sparse style; the others are set to zero, kept values are not rescaled). Keep[l][site] ==
// Spec.SiteDim(site) leaves that site dense.
type Profile struct {
	Keep [][NumSites]int `json:"keep"` // [NLayers][NumSites]
}

// UniformProfile returns the profile that drops the fraction ratio (in [0, 1]) of every site's
// input: k = int((1-ratio)*SiteDim) channels kept per token, as Q-Sparse (sparse.KeepCount).
func UniformProfile(sp *Spec, ratio float64) (*Profile, error) {
	if !(ratio >= 0 && ratio <= 1) {
		return nil, errorf(ErrBadProfile, "model %s: sparsity %g is outside [0, 1]", sp.Name, ratio)
	}
	p := &Profile{Keep: make([][NumSites]int, sp.NLayers)}
	for l := range p.Keep {
		for site := AttnIn; site < NumSites; site++ {
			p.Keep[l][site] = sparse.KeepCount(sp.SiteDim(site), ratio)
		}
	}
	return p, nil
}

// Validate checks that p has one entry per layer and every K is in [0, SiteDim].
func (p *Profile) Validate(sp *Spec) error {
	if len(p.Keep) != sp.NLayers {
		return errorf(ErrBadProfile, "model %s: sparsity profile has %d layers, the model has %d", sp.Name, len(p.Keep), sp.NLayers)
	}
	for l, ks := range p.Keep {
		for site, k := range ks {
			if d := sp.SiteDim(Site(site)); k < 0 || k > d {
				return errorf(ErrBadProfile, "model %s: sparsity profile keeps %d channels of layer %d %s, want 0..%d", sp.Name, k, l, Site(site), d)
			}
		}
	}
	return nil
}

// SetSparsity sets uniform top-K activation sparsity on every site of every layer (see
// UniformProfile); 0 is dense.
func (s *State) SetSparsity(ratio float64) error {
	p, err := UniformProfile(&s.m.Spec, ratio)
	if err != nil {
		return err
	}
	return s.SetProfile(p)
}

// SetProfile sets the activation sparsity of the forward pass (nil: dense). p is copied. At a
// site whose K is below its width, each token's input keeps its K largest |x| (sparse.TopK,
// ties to the lower index) and the rest is zeroed before the dense kernels run; a site at full
// width runs exactly as dense. The scratch buffers are allocated here, not per token.
func (s *State) SetProfile(p *Profile) error {
	if p == nil {
		s.keep = nil
		return nil
	}
	sp := &s.m.Spec
	if err := p.Validate(sp); err != nil {
		return err
	}
	s.keep = append(s.keep[:0], p.Keep...)
	width := 0
	for site := AttnIn; site < NumSites; site++ {
		width = max(width, sp.SiteDim(site))
	}
	threads := 1
	if s.m.pool != nil {
		threads = s.m.pool.Threads()
	}
	s.maskWorkers = min(threads, s.batch)
	if len(s.masked) < s.batch*width {
		s.masked = make([]float32, s.batch*width)
	}
	if len(s.topIdx) < s.maskWorkers*width {
		s.topIdx = make([]int32, s.maskWorkers*width)
	}
	s.maskFn = s.maskWorker
	return nil
}

// Profile returns a copy of the State's sparsity profile, nil when dense.
func (s *State) Profile() *Profile {
	if s.keep == nil {
		return nil
	}
	return &Profile{Keep: append([][NumSites]int(nil), s.keep...)}
}

// mask writes in ([n][dim]) with all but the k largest |x| of each row zeroed into s.masked
// and returns that [n][dim] view. Rows are split over the pool's threads; every row's result
// depends only on the row, so not on the thread count.
func (s *State) mask(in []float32, n, dim, k int) []float32 {
	s.maskIn, s.maskOut = in[:n*dim], s.masked[:n*dim]
	s.maskDim, s.maskK, s.maskN = dim, k, n
	s.maskItems = min(n, s.maskWorkers)
	if s.maskItems <= 1 {
		s.maskItems = 1
		s.maskWorker(0)
	} else {
		s.m.pool.Run(s.maskItems, s.maskFn)
	}
	out := s.maskOut
	s.maskIn, s.maskOut = nil, nil
	return out
}

// maskWorker masks rows w, w+maskItems, ... of the current mask call, with its own index buffer.
func (s *State) maskWorker(w int) {
	dim, k := s.maskDim, s.maskK
	idx := s.topIdx[w*dim : w*dim : (w+1)*dim]
	for t := w; t < s.maskN; t += s.maskItems {
		row := s.maskIn[t*dim : (t+1)*dim]
		idx = sparse.TopK(idx, row, k)
		sparse.Mask(s.maskOut[t*dim:(t+1)*dim], row, idx)
	}
}
