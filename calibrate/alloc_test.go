package calibrate

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randomUnits returns n units with convex costs on grids of 9 choices.
func randomUnits(rng *rand.Rand, n int) []unit {
	units := make([]unit, n)
	for i := range units {
		d := 8
		w := float64(1 + rng.IntN(4))
		a := rng.Float64() + 0.01
		u := unit{}
		for k := 0; k <= d; k++ {
			r := 1 - float64(k)/float64(d)
			u.keep = append(u.keep, k)
			u.saved = append(u.saved, w*r)
			u.cost = append(u.cost, a*r*r*w)
		}
		units[i] = u
	}
	return units
}

// bruteForce returns the least total cost of any choice saving at least target.
func bruteForce(units []unit, target float64) float64 {
	best := math.Inf(1)
	js := make([]int, len(units))
	var rec func(i int, s, c float64)
	rec = func(i int, s, c float64) {
		if i == len(units) {
			if s >= target && c < best {
				best = c
			}
			return
		}
		for j := range units[i].keep {
			js[i] = j
			rec(i+1, s+units[i].saved[j], c+units[i].cost[j])
		}
	}
	rec(0, 0, 0)
	return best
}

func TestLagrangeNearOptimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 20 {
		units := randomUnits(rng, 4)
		var all float64
		for _, u := range units {
			all += u.saved[0]
		}
		target := all * (0.2 + 0.6*rng.Float64())
		js := lagrange(units, target)
		if s := total(units, js); s < target {
			t.Fatalf("trial %d: saved %g < target %g", trial, s, target)
		}
		var c float64
		for i, j := range js {
			c += units[i].cost[j]
		}
		opt := bruteForce(units, target)
		// convex costs: the Lagrangian plus one greedy step is within one step's cost of optimal
		if c > opt*1.25+1e-9 {
			t.Errorf("trial %d: cost %g, optimum %g", trial, c, opt)
		}
	}
}

func TestFitTarget(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	units := randomUnits(rng, 10)
	js := make([]int, len(units)) // all sparsest
	var all float64
	for _, u := range units {
		all += u.saved[0]
	}
	target := all / 2
	fitTarget(units, js, target)
	s := total(units, js)
	if s < target {
		t.Fatalf("saved %g < target %g", s, target)
	}
	// no single step back is possible without missing the target
	for i, j := range js {
		if j < units[i].full() && s-(units[i].saved[j]-units[i].saved[j+1]) >= target {
			t.Errorf("unit %d could step back and still meet the target", i)
		}
	}
	for i := range js {
		js[i] = units[i].full()
	}
	fitTarget(units, js, target)
	if total(units, js) < target {
		t.Fatal("fill from dense missed the target")
	}
}
