package model

// BytesPerToken returns the weight bytes one decoded token reads under the sparsity profile p
// (nil: dense, DenseBytesPerToken): at every layer and site, the matrices that read the site's
// input (SiteTensors) are read only at the K kept columns of SiteDim, so
// DenseBytesPerToken − Σ (1 − K/SiteDim)·bytes(site matrices). p must fit the model
// (Profile.Validate).
func (m *Model) BytesPerToken(p *Profile) int64 {
	n := m.DenseBytesPerToken()
	if p == nil {
		return n
	}
	var skipped float64
	for l, ks := range p.Keep {
		if l >= len(m.W.Layers) {
			break
		}
		for site, k := range ks {
			d := m.Spec.SiteDim(Site(site))
			if d <= 0 || k >= d {
				continue
			}
			var b int64
			for _, suffix := range SiteTensors(Site(site)) {
				if w := m.W.Matrix(LayerName(l, suffix)); w != nil {
					b += w.Bytes()
				}
			}
			skipped += float64(b) * (1 - float64(k)/float64(d))
		}
	}
	return n - int64(skipped+0.5)
}
