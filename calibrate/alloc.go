package calibrate

import "math"

// unit is one independently chosen K (a layer's site, or a site type across layers): its grid
// of K values (ascending), the weight bytes each choice does not read (in weights, descending)
// and its modelled cost (ascending as K falls; cost at the full width is 0).
type unit struct {
	keep  []int
	saved []float64
	cost  []float64
	// lo is the lowest grid index allowed (the sparsest choice, from MaxRatio).
	lo int
}

// full returns the index of the full width (dense) choice.
func (u *unit) full() int { return len(u.keep) - 1 }

// total returns the saved bytes of the choice js.
func total(units []unit, js []int) float64 {
	var s float64
	for i := range units {
		s += units[i].saved[js[i]]
	}
	return s
}

// lagrange returns, for each unit, the grid index that minimises the total cost subject to
// saving at least target: the choice of the Lagrangian relaxation at the largest multiplier
// that saves less than target, then the cheapest steps per byte until target is met. Every
// tie goes to the denser choice and the lower unit index: the result is deterministic.
func lagrange(units []unit, target float64) []int {
	js := make([]int, len(units))
	pick := func(lambda float64) float64 {
		var s float64
		for i := range units {
			u := &units[i]
			best, bv := u.full(), 0.0
			for j := u.full() - 1; j >= u.lo; j-- {
				if v := u.cost[j] - lambda*u.saved[j]; v < bv {
					best, bv = j, v
				}
			}
			js[i] = best
			s += u.saved[best]
		}
		return s
	}
	lo, hi := 0.0, 1e-12
	for pick(hi) < target && hi < 1e30 {
		lo, hi = hi, hi*4
	}
	for range 200 {
		mid := (lo + hi) / 2
		if lo > 0 {
			mid = math.Sqrt(lo * hi)
		}
		if mid <= lo || mid >= hi {
			break
		}
		if pick(mid) < target {
			lo = mid
		} else {
			hi = mid
		}
	}
	pick(lo)
	fill(units, js, target, false)
	return js
}

// fill moves the units of js to sparser choices until target is saved: at each step the move
// with the smallest cost increase per byte (single grid steps when single, else any sparser
// choice of a unit, i.e. the next corner of its lower convex hull), ties to the lower unit.
func fill(units []unit, js []int, target float64, single bool) {
	s := total(units, js)
	for s < target {
		bi, bj, br := -1, 0, math.Inf(1)
		for i := range units {
			u := &units[i]
			j := js[i]
			lim := u.lo
			if single {
				lim = max(u.lo, j-1)
			}
			for k := j - 1; k >= lim; k-- {
				ds := u.saved[k] - u.saved[j]
				if ds <= 0 {
					continue
				}
				if r := (u.cost[k] - u.cost[j]) / ds; r < br {
					bi, bj, br = i, k, r
				}
			}
		}
		if bi < 0 {
			return // nothing left to sparsify
		}
		s += units[bi].saved[bj] - units[bi].saved[js[bi]]
		js[bi] = bj
	}
}

// trim moves units of js back to denser choices, one grid step at a time, while target stays
// met: at each step the step that saves the most cost per byte given up.
func trim(units []unit, js []int, target float64) {
	s := total(units, js)
	for {
		bi, br := -1, -1.0
		for i := range units {
			u := &units[i]
			j := js[i]
			if j >= u.full() {
				continue
			}
			ds := u.saved[j] - u.saved[j+1]
			if s-ds < target || ds <= 0 {
				continue
			}
			if r := (u.cost[j] - u.cost[j+1]) / ds; r > br {
				bi, br = i, r
			}
		}
		if bi < 0 {
			return
		}
		s -= units[bi].saved[js[bi]] - units[bi].saved[js[bi]+1]
		js[bi]++
	}
}

// fitTarget makes js save at least target, and not more than needed (see fill and trim).
func fitTarget(units []unit, js []int, target float64) {
	fill(units, js, target, false)
	trim(units, js, target)
}

// nearest returns the grid index of u closest to keep (ties to the denser).
func nearest(u *unit, keep float64) int {
	best, bd := u.full(), math.Inf(1)
	for j := u.full(); j >= u.lo; j-- {
		if d := math.Abs(float64(u.keep[j]) - keep); d < bd {
			best, bd = j, d
		}
	}
	return best
}
