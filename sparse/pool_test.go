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

// TestPoolRunThreads: RunThreads calls fn for every item once, with thread numbers in
// [0, Threads()) that never run two items at once.
func TestPoolRunThreads(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 5} {
		p := NewPool(threads)
		for round := range 50 {
			n := 1 + round*7%97
			busy := make([]atomic.Int32, threads)
			done := make([]atomic.Int32, n)
			var bad atomic.Int32
			p.RunThreads(n, func(i, th int) {
				if th < 0 || th >= threads || busy[th].Add(1) != 1 {
					bad.Add(1)
					return
				}
				done[i].Add(1)
				for range i % 5 * 10 {
					runtime.Gosched()
				}
				busy[th].Add(-1)
			})
			if bad.Load() != 0 {
				t.Fatalf("%d threads, %d items: a thread number out of range or in use twice", threads, n)
			}
			for i := range done {
				if done[i].Load() != 1 {
					t.Fatalf("%d threads, %d items: item %d ran %d times", threads, n, i, done[i].Load())
				}
			}
		}
		p.Close()
	}
}
