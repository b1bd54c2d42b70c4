package calibrate

import (
	"math"
	"slices"
	"sync"

	"github.com/qsparse/qsparse/model"
)

// statBlock is the number of tokens whose statistics are summed together before the block sums
// are added in token order: the result does not depend on how many goroutines did the work.
const statBlock = 32

// grid is the K values a site may take: multiples of unit, plus the full width.
type grid struct {
	dim  int
	keep []int // ascending, keep[0] == 0, last == dim
}

func newGrid(dim, unit int) grid {
	g := grid{dim: dim}
	for k := 0; k < dim; k += unit {
		g.keep = append(g.keep, k)
	}
	return grid{dim: dim, keep: append(g.keep, dim)}
}

// gridUnit is the K step of a site of width d: 16 channels when d is a multiple of 16 and wide
// enough for 16 steps (kernel friendly), else 1.
func gridUnit(d int) int {
	if d%16 == 0 && d >= 256 {
		return 16
	}
	return 1
}

// siteStats accumulates, for one layer and site, the proxy error of keeping K channels: the sum
// over tokens of Σ_{i dropped} (x_i·‖W[:,i]‖₂)², the diagonal part of ‖W·(x - mask(x))‖², where
// the dropped channels are those the forward pass drops (lowest |x_i|, or lowest
// |x_i|·‖W[:,i]‖₂ with weighted scoring; ties keep the lower index).
type siteStats struct {
	dropped []float64 // [len(grid.keep)]
}

// collector gathers siteStats of every layer and site through the forward pass's hook.
type collector struct {
	sp       *model.Spec
	grids    [model.NumSites]grid
	norms    [][model.NumSites][]float32
	weighted bool
	stats    [][model.NumSites]siteStats
	tokens   [][model.NumSites]int
	workers  int
	stride   int // statistics of every stride-th token of a call

	bufs    [][]uint64 // per worker: packed (key, index)
	partial []float64  // [blocks][len(grid.keep)] sums of the current hook call
}

func newCollector(sp *model.Spec, norms [][model.NumSites][]float32, weighted bool, workers, stride int) *collector {
	c := &collector{sp: sp, norms: norms, weighted: weighted, workers: max(1, workers), stride: max(1, stride)}
	width := 0
	for s := model.AttnIn; s < model.NumSites; s++ {
		d := sp.SiteDim(s)
		c.grids[s] = newGrid(d, gridUnit(d))
		width = max(width, d)
	}
	c.stats = make([][model.NumSites]siteStats, sp.NLayers)
	c.tokens = make([][model.NumSites]int, sp.NLayers)
	for l := range c.stats {
		for s := range c.stats[l] {
			c.stats[l][s].dropped = make([]float64, len(c.grids[s].keep))
		}
	}
	c.bufs = make([][]uint64, c.workers)
	for w := range c.bufs {
		c.bufs[w] = make([]uint64, width)
	}
	return c
}

// hook is installed with State.SetHook.
func (c *collector) hook(site model.Site, layer int, in []float32, n int) {
	d := c.sp.SiteDim(site)
	g := c.grids[site]
	norms := c.norms[layer][site]
	nb := (n + statBlock - 1) / statBlock
	if need := nb * len(g.keep); len(c.partial) < need {
		c.partial = make([]float64, need)
	}
	part := c.partial[:nb*len(g.keep)]
	clear(part)
	var wg sync.WaitGroup
	for w := range min(c.workers, nb) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := c.bufs[w][:d]
			for b := w; b < nb; b += c.workers {
				acc := part[b*len(g.keep) : (b+1)*len(g.keep)]
				for t := b * statBlock; t < min(n, (b+1)*statBlock); t += c.stride {
					c.token(in[t*d:(t+1)*d], norms, g, buf, acc)
				}
			}
		}()
	}
	wg.Wait()
	dst := c.stats[layer][site].dropped
	for b := range nb {
		for j, v := range part[b*len(g.keep) : (b+1)*len(g.keep)] {
			dst[j] += v
		}
	}
	c.tokens[layer][site] += (n + c.stride - 1) / c.stride
}

// token adds one token's dropped energy at every grid K to acc.
func (c *collector) token(x, norms []float32, g grid, buf []uint64, acc []float64) {
	var total float64
	for i, v := range x {
		a := float32(math.Abs(float64(v)))
		key := a
		if c.weighted {
			key = a * norms[i]
		}
		// Ascending order of packed = ascending key, then descending index: walking it from
		// the end visits the channels in the order TopK keeps them (ties to the lower index).
		buf[i] = uint64(math.Float32bits(key))<<32 | uint64(^uint32(i))
		e := float64(a) * float64(norms[i])
		total += e * e
	}
	slices.Sort(buf)
	// kept energy after the first K of the keep order; acc[j] += total - kept(g.keep[j])
	var kept float64
	j, k := 0, 0
	for p := len(buf) - 1; ; p-- {
		for j < len(g.keep) && g.keep[j] == k {
			if k < len(x) {
				acc[j] += max(total-kept, 0)
			}
			j++
		}
		if p < 0 || j == len(g.keep) {
			break
		}
		i := int(^uint32(buf[p]))
		e := math.Abs(float64(x[i])) * float64(norms[i])
		kept += e * e
		k++
	}
}
