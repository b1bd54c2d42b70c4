package sparse

import (
	"runtime"
	"sync/atomic"
	"testing"
)

// TestPoolRunCompletes checks that Run returns only after every item of its job ran exactly
// once, and that no item of a finished job runs after Run returned — also when workers are
// late (more threads than Ps, so they are descheduled between claiming and running). A
// worker one job late once claimed a spare item of the next job before it was published and
// counted it as finished, so Run returned while the real last item still ran (a CI panic in
// State.maskWorker).
func TestPoolRunCompletes(t *testing.T) {
	rounds := 100000
	if testing.Short() {
		rounds = 10000
	}
	for _, threads := range []int{2, 3, 5} {
		p := NewPool(threads)
		var live atomic.Int32 // 1 while a Run is in progress
		var stray atomic.Int64
		counts := make([]atomic.Int32, 64)
		for r := range rounds {
			n := 1 + (r*7)%len(counts) // job sizes grow and shrink
			if r%3 == 0 {
				n = 1 + r%3
			}
			live.Store(1)
			p.Run(n, func(i int) {
				if live.Load() != 1 || i >= n {
					stray.Add(1)
					return
				}
				counts[i].Add(1)
				if i%5 == 0 {
					runtime.Gosched()
				}
			})
			live.Store(0)
			for i := range n {
				if c := counts[i].Swap(0); c != 1 {
					t.Fatalf("threads %d round %d (n=%d): item %d ran %d times before Run returned", threads, r, n, i, c)
				}
			}
			if s := stray.Load(); s != 0 {
				t.Fatalf("threads %d round %d: %d items ran outside their job", threads, r, s)
			}
		}
		p.Close()
	}
}
