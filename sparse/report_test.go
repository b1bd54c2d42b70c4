package sparse

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// BenchmarkReport measures the kernel bars on a shared, noisy machine: the operations being
// compared run interleaved, 40 rounds, and the best (and median) time of each is logged; the
// median ratios are reported as metrics. It is a benchmark, not a test: it asserts nothing.
//
//	go test -run '^$' -bench BenchmarkReport -benchtime 1x -v -timeout 30m ./sparse
func BenchmarkReport(b *testing.B) {
	t := b
	rounds := 40 * b.N
	p := NewPool(2)
	defer p.Close()
	p1 := NewPool(1)
	defer p1.Close()
	r := rand.New(rand.NewPCG(9, 9))

	type op struct {
		name  string
		f     func()
		bytes float64 // weight bytes streamed per call
		times []time.Duration
	}
	run := func(ops []*op) {
		for i := 0; i < rounds; i++ {
			for _, o := range ops {
				t0 := time.Now()
				o.f()
				o.times = append(o.times, time.Since(t0))
			}
		}
		for _, o := range ops {
			slices.Sort(o.times)
		}
	}
	best := func(o *op) float64 { return o.times[0].Seconds() }
	med := func(o *op) float64 { return o.times[len(o.times)/2].Seconds() }
	show := func(o *op) {
		if o.bytes > 0 {
			t.Logf("%-40s best %9.1f us  median %9.1f us  best %6.1f GB/s  median %6.1f GB/s", o.name,
				best(o)*1e6, med(o)*1e6, o.bytes/best(o)/1e9, o.bytes/med(o)/1e9)
		} else {
			t.Logf("%-40s best %9.1f us  median %9.1f us", o.name, best(o)*1e6, med(o)*1e6)
		}
	}

	// read-bandwidth probe: dense float32 GEMV over 256 MiB, same pool, same moment
	const pr, pc = 8192, 8192
	pw := randF32(r, pr*pc)
	px := randF32(r, pc)
	py := make([]float32, pr)

	rows, cols := 4096, 11008
	h := randF16(r, rows*cols)
	pk, _ := PackF16Cols(h, rows, cols)
	x := randF32(r, cols)
	y := make([]float32, rows)
	idx50 := TopK(nil, x, KeepCount(cols, 0.5))
	tt := randTernary(r, rows*cols)
	tp, _ := PackTernary(tt, []float32{0.5}, rows, cols)
	tq, _ := PackTernaryQ8(tt, []float32{0.5}, rows, cols)

	r2, c2 := 4096, 4096
	pk2, _ := PackF16Cols(randF16(r, r2*c2), r2, c2)
	x2 := randF32(r, c2)
	y2 := make([]float32, r2)
	idx2 := TopK(nil, x2, KeepCount(c2, 0.5))
	sel := make([]int32, 0, c2)

	var warm []time.Duration
	ops := []*op{
		{name: "probe dense F32 GEMV 8192x8192", f: func() { p.GemvF32(py, pw, px, pr, pc) }, bytes: 4 * pr * pc},
		{name: "dense F16 GEMV 4096x11008", f: func() { p.GemvF16(y, h, x, rows, cols) }, bytes: 2 * float64(rows*cols)},
		{name: "sparse F16 GEMV 4096x11008 s50", f: func() { p.SparseGemvF16(y, pk, x, idx50) }, bytes: 2 * float64(len(idx50)*pk.Stride)},
		{name: "sparse F16 GEMV 4096x11008 s0", f: func() { p.SparseGemvF16(y, pk, x, TopK(sel[:0], x, cols)) }, bytes: 2 * float64(cols*pk.Stride)},
		{name: "sparse ternary 4096x11008 s50", f: func() { p.SparseGemvTernary(y, tp, x, idx50) }, bytes: float64(len(idx50) * padRows(rows) / 4)},
		{name: "sparse ternary 4096x11008 s50 1thr", f: func() { p1.SparseGemvTernary(y, tp, x, idx50) }, bytes: float64(len(idx50) * padRows(rows) / 4)},
		{name: "sparse ternary s50 warm (2nd call)", f: func() {
			p.SparseGemvTernary(y, tp, x, idx50)
			t0 := time.Now()
			p.SparseGemvTernary(y, tp, x, idx50)
			warm = append(warm, time.Since(t0))
		}},
		{name: "sparse F16 GEMV 4096x4096 s50", f: func() { p.SparseGemvF16(y2, pk2, x2, idx2) }, bytes: 2 * float64(len(idx2)*pk2.Stride)},
		{name: "TopK d4096 k2048", f: func() { TopK(sel, x2, 2048) }},
		{name: "sparse ternary Q8 4096x11008 s50", f: func() { p.SparseGemvTernaryQ8(y, tq, x, idx50) }, bytes: float64(len(idx50) * q8Strips(rows) * q8Strip / 4)},
		{name: "sparse ternary Q8 4096x11008 s50 1thr", f: func() { p1.SparseGemvTernaryQ8(y, tq, x, idx50) }, bytes: float64(len(idx50) * q8Strips(rows) * q8Strip / 4)},
		{name: "sparse ternary Q8 s50 warm (2nd call)", f: func() { p.SparseGemvTernaryQ8(y, tq, x, idx50) }, bytes: float64(len(idx50) * q8Strips(rows) * q8Strip / 4)},
	}
	run(ops)
	slices.Sort(warm)
	t.Logf("ternary warm second call: best %.1f us median %.1f us", warm[0].Seconds()*1e6, warm[len(warm)/2].Seconds()*1e6)
	for _, o := range ops {
		show(o)
	}
	dense, sp50, tern, sp4096, topk := ops[1], ops[2], ops[4], ops[7], ops[8]
	t.Logf("backend %s", Backend())
	t.Logf("sparse50/dense F16 time: best %.3f  median %.3f   (bar <= 0.55)", best(sp50)/best(dense), med(sp50)/med(dense))
	t.Logf("sparse50 F16 stream vs probe: best %.2f  median %.2f", (sp50.bytes/best(sp50))/(ops[0].bytes/best(ops[0])), (sp50.bytes/med(sp50))/(ops[0].bytes/med(ops[0])))
	t.Logf("topk(4096)/sparse50 4096x4096: best %.3f  median %.3f   (bar <= 0.05)", best(topk)/best(sp4096), med(topk)/med(sp4096))
	t.Logf("ternary/F16 weights per second at s50: best %.2f  median %.2f   (bar >= 2.5)", best(sp50)/best(tern), med(sp50)/med(tern))
	tq8 := ops[9]
	t.Logf("ternary Q8 (int8 activations)/F16 weights per second at s50: best %.2f  median %.2f   (bar >= 2.5)", best(sp50)/best(tq8), med(sp50)/med(tq8))
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(med(sp50)/med(dense), "sparse50/dense")
	b.ReportMetric(med(topk)/med(sp4096), "topk/sparse50")
	b.ReportMetric(med(sp50)/med(tern), "ternary-speedup")
	b.ReportMetric(med(sp50)/med(tq8), "ternaryQ8-speedup")
}
