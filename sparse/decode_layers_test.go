package sparse

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// BenchmarkDecodeLayers runs the site projections of one decoded SmolLM2-135M token (30 layers
// of q/k/v 960x576, o 576x576, gate/up 3072x576, down 576x1536; 212 MB of fp16 weights, more
// than any L3) in alternating rounds: dense GEMV on row-major copies, the sparse kernel on the
// column-major packs with every channel active, and at 50 % (top half of a random input per
// site). It reports each one's median time per token, the weight bytes per second it streams
// and the ratio dense/sparse-50 (the site part of the decode speedup; 2 would be ideal).
func BenchmarkDecodeLayers(b *testing.B) {
	p := NewPool(benchThreads)
	defer p.Close()
	type site struct {
		rows, cols int
		w          []uint16
		pk         *F16Cols
		x, y       []float32
		half, all  []int32
	}
	shapes := [][2]int{{960, 576}, {576, 576}, {3072, 576}, {576, 1536}}
	r := rand.New(rand.NewPCG(3, 4))
	var sites []*site
	var bytes int64
	for range 30 {
		for _, sh := range shapes {
			s := &site{rows: sh[0], cols: sh[1]}
			s.w = randF16(r, s.rows*s.cols)
			var err error
			if s.pk, err = PackF16Cols(s.w, s.rows, s.cols); err != nil {
				b.Fatal(err)
			}
			s.x, s.y = randF32(r, s.cols), make([]float32, s.rows)
			s.half = TopK(nil, s.x, s.cols/2)
			s.all = make([]int32, s.cols)
			for i := range s.all {
				s.all[i] = int32(i)
			}
			sites = append(sites, s)
			bytes += int64(s.rows * s.cols * 2)
		}
	}
	runs := []struct {
		name  string
		frac  float64
		token func()
		ms    []float64
	}{
		{"dense-rows", 1, func() {
			for _, s := range sites {
				p.GemvF16(s.y, s.w, s.x, s.rows, s.cols)
			}
		}, nil},
		{"cols-all", 1, func() {
			for _, s := range sites {
				p.SparseGemvF16(s.y, s.pk, s.x, s.all)
			}
		}, nil},
		{"cols-s50", 0.5, func() {
			for _, s := range sites {
				p.SparseGemvF16(s.y, s.pk, s.x, s.half)
			}
		}, nil},
	}
	for b.Loop() {
		for i := range runs {
			const n = 8
			start := time.Now()
			for range n {
				runs[i].token()
			}
			runs[i].ms = append(runs[i].ms, float64(time.Since(start).Microseconds())/1000/n)
		}
	}
	med := func(v []float64) float64 {
		s := slices.Clone(v)
		slices.Sort(s)
		return s[len(s)/2]
	}
	for _, run := range runs {
		m := med(run.ms)
		b.ReportMetric(m, run.name+"-ms")
		b.ReportMetric(float64(bytes)*run.frac/m/1e6, run.name+"-GB/s")
	}
	b.ReportMetric(med(runs[0].ms)/med(runs[2].ms), "rows/s50")
}
