package model

import (
	"fmt"
	"math"

	"github.com/qsparse/qsparse/sparse"
)

// Scoring is how a site's input channels are ranked before the top-K is kept.
type Scoring string

const (
	// ScoreMagnitude ranks channel i by |x_i| (Q-Sparse, TEAL). The zero value means this.
	ScoreMagnitude Scoring = "magnitude"
	// ScoreWeighted ranks channel i by |x_i|·‖W[:, i]‖₂ (WINA), W being the site's matrices
	// stacked (q/k/v; gate/up), so a channel whose weight column is small counts less.
	ScoreWeighted Scoring = "weighted"
)

// ParseScoring parses a scoring name ("" is magnitude).
func ParseScoring(s string) (Scoring, error) {
	switch Scoring(s) {
	case "", ScoreMagnitude:
		return ScoreMagnitude, nil
	case ScoreWeighted:
		return ScoreWeighted, nil
	}
	return "", fmt.Errorf("%w: unknown scoring %q (want magnitude or weighted)", ErrBadProfile, s)
}

// Block is Block Q-Sparse's N:M pattern: every block of M consecutive input channels keeps its
// N largest (by the profile's scoring of |x|), for every site.
type Block struct {
	N int `json:"n"`
	M int `json:"m"`
}

// Profile is an activation-sparsity setting of a model: for every layer and site, how many
// input channels of each token are kept before the site's projections run (the top-K, ties to
// the lower index; the others are set to zero). Keep[l][site] == Spec.SiteDim(site) leaves that
// site dense. Files hold it as versioned JSON with site names and the model's identity (see
// WriteProfile, ReadProfile).
type Profile struct {
	Keep [][NumSites]int // [NLayers][NumSites]

	// Scoring ranks the channels ("" is ScoreMagnitude).
	Scoring Scoring
	// Block, when set, replaces the per-token top-K by N:M blocks (Keep is then N/M of each
	// site's width; see BlockProfile).
	Block *Block
	// Rescale multiplies the kept values of a token by ‖x‖₂/‖x_kept‖₂ (off by default, as in
	// Q-Sparse's code).
	Rescale bool

	// Model identifies the model the profile was made for (nil: any model of the right shape).
	Model *ModelID
	// Calibration records how a calibrated profile was made (nil for uniform profiles).
	Calibration *Calibration
}

// Calibration records how `qsparse calibrate` chose a profile and what it measured.
type Calibration struct {
	Method  string  `json:"method"`                     // "uniform", "teal", ...
	Target  float64 `json:"target,omitempty"`           // requested byte-weighted sparsity
	MaxKL   float64 `json:"max_kl,omitempty"`           // or: budget of mean KL divergence
	MaxPPL  float64 `json:"max_ppl_increase,omitempty"` // or: budget of relative PPL increase (0.1 = 10%)
	Data    string  `json:"data,omitempty"`             // calibration text (file name)
	DataSHA string  `json:"data_sha256,omitempty"`
	Tokens  int     `json:"tokens,omitempty"` // tokens of calibration text used
	// Estimates on the calibration text.
	Sparsity float64 `json:"sparsity"`            // byte-weighted sparsity reached
	KL       float64 `json:"kl,omitempty"`        // mean KL(dense || sparse), nats
	PPL      float64 `json:"ppl,omitempty"`       // sparse perplexity
	DensePPL float64 `json:"dense_ppl,omitempty"` // dense perplexity
}

// UniformProfile returns the profile that drops the fraction ratio (in [0, 1)) of every site's
// input: k = floor((1-ratio)*SiteDim) channels kept per token, as Q-Sparse (sparse.KeepCount).
func UniformProfile(sp *Spec, ratio float64) (*Profile, error) {
	if !(ratio >= 0 && ratio < 1) {
		return nil, fmt.Errorf("%w: sparsity %g is outside [0, 1)", ErrBadProfile, ratio)
	}
	p := &Profile{Keep: make([][NumSites]int, sp.NLayers), Scoring: ScoreMagnitude}
	for l := range p.Keep {
		for site := AttnIn; site < NumSites; site++ {
			p.Keep[l][site] = sparse.KeepCount(sp.SiteDim(site), ratio)
		}
	}
	return p, nil
}

// BlockProfile returns the N:M profile (Block Q-Sparse): every block of m consecutive channels
// of every site keeps its n largest. m must divide every site's width and 0 < n <= m.
func BlockProfile(sp *Spec, n, m int) (*Profile, error) {
	if m <= 0 || n <= 0 || n > m {
		return nil, fmt.Errorf("%w: block %d:%d needs 0 < N <= M", ErrBadProfile, n, m)
	}
	p := &Profile{Keep: make([][NumSites]int, sp.NLayers), Scoring: ScoreMagnitude, Block: &Block{N: n, M: m}}
	for site := AttnIn; site < NumSites; site++ {
		if d := sp.SiteDim(site); d%m != 0 {
			return nil, fmt.Errorf("%w: block %d:%d: M=%d does not divide the %s width %d", ErrBadProfile, n, m, m, site, d)
		}
	}
	for l := range p.Keep {
		for site := AttnIn; site < NumSites; site++ {
			p.Keep[l][site] = sp.SiteDim(site) / m * n
		}
	}
	return p, nil
}

// Validate checks that p has one entry per layer, every K is in [0, SiteDim], the scoring is
// known, a block pattern divides every width, and, when p names a model, that it is this one.
// Errors wrap ErrBadProfile.
func (p *Profile) Validate(sp *Spec) error {
	if p.Model != nil {
		if err := p.Model.Check(sp); err != nil {
			return err
		}
	}
	if len(p.Keep) != sp.NLayers {
		return fmt.Errorf("%w: it has %d layers, the model %s has %d", ErrBadProfile, len(p.Keep), sp.Name, sp.NLayers)
	}
	if _, err := ParseScoring(string(p.Scoring)); err != nil {
		return err
	}
	for l, ks := range p.Keep {
		for site, k := range ks {
			if d := sp.SiteDim(Site(site)); k < 0 || k > d {
				return fmt.Errorf("%w: it keeps %d channels of layer %d %s, want 0..%d", ErrBadProfile, k, l, Site(site), d)
			}
		}
	}
	if b := p.Block; b != nil {
		if b.M <= 0 || b.N <= 0 || b.N > b.M {
			return fmt.Errorf("%w: block %d:%d needs 0 < N <= M", ErrBadProfile, b.N, b.M)
		}
		for l, ks := range p.Keep {
			for site, k := range ks {
				d := sp.SiteDim(Site(site))
				if d%b.M != 0 {
					return fmt.Errorf("%w: block %d:%d: M=%d does not divide the %s width %d", ErrBadProfile, b.N, b.M, b.M, Site(site), d)
				}
				if k != d && k != d/b.M*b.N {
					return fmt.Errorf("%w: block %d:%d keeps %d of %d channels, but layer %d %s says %d", ErrBadProfile, b.N, b.M, d/b.M*b.N, d, l, Site(site), k)
				}
			}
		}
	}
	return nil
}

// Dense reports whether p keeps every channel of every site (nil is dense).
func (p *Profile) Dense(sp *Spec) bool {
	if p == nil {
		return true
	}
	for _, ks := range p.Keep {
		for site, k := range ks {
			if k < sp.SiteDim(Site(site)) {
				return false
			}
		}
	}
	return true
}

// SiteParams returns the number of weights that read a site's input in one layer (the matrices
// of SiteTensors): the bytes a dense token reads there, in units of one weight.
func (s *Spec) SiteParams(site Site) int64 {
	d, q, kv, f := int64(s.Dim), int64(s.QDim()), int64(s.KVDim()), int64(s.FFNDim)
	switch site {
	case AttnIn:
		return (q + 2*kv) * d
	case AttnOut:
		return d * q
	case MLPIn:
		return 2 * f * d
	case MLPDown:
		return d * f
	}
	return 0
}

// ByteSparsity returns the fraction of the sites' weights a decoded token does not read under
// p: Σ (1 - K/SiteDim)·SiteParams over all layers and sites, over Σ SiteParams (the LM head,
// embeddings and norms are not counted). nil is 0.
func (p *Profile) ByteSparsity(sp *Spec) float64 {
	if p == nil {
		return 0
	}
	var skipped, total float64
	for _, ks := range p.Keep {
		for site, k := range ks {
			w := float64(sp.SiteParams(Site(site)))
			d := float64(sp.SiteDim(Site(site)))
			skipped += w * (1 - float64(k)/d)
			total += w
		}
	}
	if total == 0 {
		return 0
	}
	return skipped / total
}

// Clone returns a deep copy of p (nil for nil).
func (p *Profile) Clone() *Profile {
	if p == nil {
		return nil
	}
	q := *p
	q.Keep = append([][NumSites]int(nil), p.Keep...)
	if p.Block != nil {
		b := *p.Block
		q.Block = &b
	}
	if p.Model != nil {
		id := *p.Model
		q.Model = &id
	}
	if p.Calibration != nil {
		c := *p.Calibration
		q.Calibration = &c
	}
	return &q
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
// site whose K is below its width, each token's input keeps its K highest-scoring channels
// (sparse.TopK on |x| or |x|·‖W[:, i]‖₂, or N:M blocks; ties to the lower index), optionally
// L2-rescaled, and the rest is zeroed before the dense kernels run; a site at full width runs
// exactly as dense. The scratch buffers are allocated here, not per token.
func (s *State) SetProfile(p *Profile) error {
	if p == nil {
		s.keep, s.prof = nil, nil
		return nil
	}
	sp := &s.m.Spec
	if err := p.Validate(sp); err != nil {
		return err
	}
	s.prof = p.Clone()
	s.keep = s.prof.Keep
	width := 0
	for site := AttnIn; site < NumSites; site++ {
		width = max(width, sp.SiteDim(site))
	}
	s.colNorms = nil // a State reused for a magnitude profile must not keep weighted scoring
	if s.prof.Scoring == ScoreWeighted {
		if s.colNorms = s.m.ColumnNorms(); s.colNorms == nil {
			return fmt.Errorf("model %s: weighted scoring: the model is closed", sp.Name)
		}
	}
	threads := 1
	if s.m.pool != nil {
		threads = s.m.pool.Threads()
	}
	s.maskWorkers = min(threads, s.batch)
	if len(s.masked) < s.batch*width {
		s.masked = make([]float32, s.batch*width)
	}
	if s.m.SiteLayout() == LayoutTernaryQ8 && len(s.ternIdx) < s.batch*width {
		s.ternIdx = make([]int32, s.batch*width)
	}
	if len(s.topIdx) < s.maskWorkers*width {
		s.topIdx = make([]int32, s.maskWorkers*width)
	}
	if len(s.scoreBuf) < s.maskWorkers*width {
		s.scoreBuf = make([]float32, s.maskWorkers*width)
	}
	s.maskFn = s.maskWorker
	return nil
}

// Profile returns a copy of the State's sparsity profile, nil when dense.
func (s *State) Profile() *Profile { return s.prof.Clone() }

// mask writes in ([n][dim]) with all but the k highest-scoring channels of each row zeroed
// into s.masked and returns that [n][dim] view. Rows are split over the pool's threads; every
// row's result depends only on the row, so not on the thread count.
func (s *State) mask(in []float32, n, dim, k int) []float32 {
	return s.maskSite(in, n, dim, k, nil, 0, -1)
}

// maskSite is mask with the column norms of the site (nil: magnitude scoring), at site of
// layer (layer < 0: an anonymous call, which selHook does not see).
func (s *State) maskSite(in []float32, n, dim, k int, norms []float32, site Site, layer int) []float32 {
	s.maskArgs = maskJob{in: in[:n*dim], out: s.masked[:n*dim], norms: norms, dim: dim, k: k, n: n,
		site: site, layer: layer, items: max(1, min(n, s.maskWorkers))}
	if s.maskArgs.items == 1 {
		s.maskWorker(0)
	} else {
		s.m.pool.Run(s.maskArgs.items, s.maskFn)
	}
	out := s.maskArgs.out
	s.maskArgs = maskJob{}
	return out
}

// maskWorker masks rows w, w+maskItems, ... of the current mask call, with its own index buffer.
func (s *State) maskWorker(w int) {
	dim, k := s.maskArgs.dim, s.maskArgs.k
	idx := s.topIdx[w*dim : w*dim : (w+1)*dim]
	scratch := s.scoreBuf[w*dim : (w+1)*dim]
	var blk *Block
	rescale := false
	if s.prof != nil {
		blk, rescale = s.prof.Block, s.prof.Rescale
	}
	for t := w; t < s.maskArgs.n; t += s.maskArgs.items {
		row := s.maskArgs.in[t*dim : (t+1)*dim]
		idx = s.selectTop(idx, row, k, s.maskArgs.norms, blk, scratch)
		use := idx // idx stays this worker's storage for the next row
		if s.selHook != nil && s.maskArgs.layer >= 0 {
			use = s.selHook(s.maskArgs.site, s.maskArgs.layer, row, idx)
		}
		out := s.maskArgs.out[t*dim : (t+1)*dim]
		sparse.Mask(out, row, use)
		if rescale {
			rescaleKept(out, row, use)
		}
	}
}

// selectTop returns the kept channels of one token's input x (ascending): the k best by
// |x_i| (norms nil) or |x_i|·norms[i], or N:M blocks when blk is set.
func (s *State) selectTop(idx []int32, x []float32, k int, norms []float32, blk *Block, scratch []float32) []int32 {
	switch {
	case blk != nil && norms != nil:
		sc := scratch[:len(x)]
		for i, v := range x {
			sc[i] = float32(math.Abs(float64(v))) * norms[i]
		}
		return sparse.BlockTopN(idx, sc, blk.N, blk.M)
	case blk != nil:
		return sparse.BlockTopN(idx, x, blk.N, blk.M)
	case norms != nil:
		return sparse.TopKWeighted(idx, x, norms, k, scratch)
	}
	return sparse.TopK(idx, x, k)
}

// rescaleKept multiplies the kept values out[idx] by ‖x‖₂/‖x[idx]‖₂ (see rescaleFactor).
func rescaleKept(out, x []float32, idx []int32) {
	f, ok := rescaleFactor(x, idx)
	if !ok {
		return
	}
	for _, c := range idx {
		out[c] *= f
	}
}

// rescaleFactor returns ‖x‖₂/‖x[idx]‖₂ (sums in float64), ok false when the kept norm is 0.
func rescaleFactor(x []float32, idx []int32) (float32, bool) {
	var all, kept float64
	for _, v := range x {
		all += float64(v) * float64(v)
	}
	for _, c := range idx {
		kept += float64(x[c]) * float64(x[c])
	}
	if kept == 0 {
		return 0, false
	}
	return float32(math.Sqrt(all / kept)), true
}
