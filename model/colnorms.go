package model

import (
	"math"

	"github.com/qsparse/qsparse/sparse"
)

// ColumnNorms returns, for every layer and site, ‖W[:, i]‖₂ of each input channel i of the
// site's matrices stacked (q/k/v at attn_in, gate/up at mlp_in): the channel weights of
// ScoreWeighted (WINA). Computed once per model (one pass over the weights, float64 sums) and
// shared by its States; nil after Close.
func (m *Model) ColumnNorms() [][NumSites][]float32 {
	if m.pool == nil {
		return nil
	}
	m.normsOnce.Do(func() {
		sp := &m.Spec
		norms := make([][NumSites][]float32, sp.NLayers)
		m.pool.Run(sp.NLayers, func(l int) {
			L := &m.W.Layers[l]
			for site := AttnIn; site < NumSites; site++ {
				sum := make([]float64, sp.SiteDim(site))
				for _, w := range L.siteMatrices(site) {
					w.addColumnSquares(sum)
				}
				out := make([]float32, len(sum))
				for i, v := range sum {
					out[i] = float32(math.Sqrt(v))
				}
				norms[l][site] = out
			}
		})
		m.norms = norms
	})
	return m.norms
}

// siteMatrices returns the matrices that read a site's input, in SiteTensors order.
func (L *Layer) siteMatrices(site Site) []*Matrix {
	out := make([]*Matrix, len(siteTable[site]))
	for i, m := range siteTable[site] {
		out[i] = m.w(L)
	}
	return out
}

// siteFused returns the site's matrices stacked in one (Layer.QKV, Layer.GateUp), or nil.
func (L *Layer) siteFused(site Site) *Matrix {
	switch site {
	case AttnIn:
		return L.QKV
	case MLPIn:
		return L.GateUp
	}
	return nil
}

// nonZeroTrits[b] counts the 2-bit codes of byte b that are not 1 (t ≠ 0).
var nonZeroTrits = func() (n [256]uint8) {
	for b := range n {
		for k := 0; k < 8; k += 2 {
			if b>>k&3 != 1 {
				n[b]++
			}
		}
	}
	return n
}()

// addColumnSquares adds Σ_r W[r][c]² to sum[c] for every column c.
func (w *Matrix) addColumnSquares(sum []float64) {
	if p := w.Tern; p != nil { // Σ_r (t·scale)² = (non-zero trits) · scale²
		cb := p.ColBytes()
		for c := range w.Cols {
			nz := 0
			for _, b := range p.Codes[c*cb : (c+1)*cb] { // padding rows hold code 1 (t = 0)
				nz += int(nonZeroTrits[b])
			}
			s := float64(w.ternScale(c))
			sum[c] += float64(nz) * s * s
		}
		return
	}
	if p := w.Pack; p != nil { // column-major: each column is one run
		col := make([]float32, w.Rows)
		for c := range w.Cols {
			sparse.F16ToF32Slice(col, p.Data[c*p.Stride+w.PackRow:c*p.Stride+w.PackRow+w.Rows])
			for _, v := range col {
				sum[c] += float64(v) * float64(v)
			}
		}
		return
	}
	row := make([]float32, w.Cols)
	for r := range w.Rows {
		w.row(r, row)
		for c, v := range row {
			sum[c] += float64(v) * float64(v)
		}
	}
}
