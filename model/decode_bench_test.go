package model

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/qsparse/qsparse/internal/testenv"
)

// BenchmarkDecodeLongSmolLM2 decodes tokens after a 1536-token prompt (F16 weights, all
// threads), where attention over the KV cache is a sizeable part of each token.
func BenchmarkDecodeLongSmolLM2(b *testing.B) {
	m, err := Load(testenv.SmolLM2Path(b), LoadOptions{WeightType: "f16"})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	const prompt, span = 1536, 256
	st := m.NewState(prompt + span)
	toks := make([]int, prompt)
	for i := range toks {
		toks[i] = 100 + i%1000
	}
	logits := make([]float32, m.Spec.Vocab)
	if err := st.Forward(toks, 0, logits); err != nil {
		b.Fatal(err)
	}
	tok, pos := Argmax(logits), prompt
	start := time.Now()
	for b.Loop() {
		if pos == prompt+span {
			pos = prompt
		}
		if err := st.Forward([]int{tok}, pos, logits); err != nil {
			b.Fatal(err)
		}
		tok = Argmax(logits)
		pos++
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tok/s")
}

// loadSmolLM2Layouts loads SmolLM2 (2 threads) with F16 row-major and with column-major site
// weights; both are closed when the benchmark ends.
func loadSmolLM2Layouts(b *testing.B) (rows, cols *Model) {
	var ms [2]*Model
	for i, opts := range []LoadOptions{{WeightType: "f16", Threads: 2}, {Layout: LoadCols, Threads: 2}} {
		m, err := Load(testenv.SmolLM2Path(b), opts)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { m.Close() })
		ms[i] = m
	}
	return ms[0], ms[1]
}

// decodeCfg is one configuration of an alternating decode benchmark.
type decodeCfg struct {
	name string
	st   *State
	tps  []float64 // tokens/s of each round
}

// alternateDecode runs b.Loop rounds in which every configuration decodes a 32-token span
// (greedy from token 1 at position 0), and reports each one's median tokens/s; it returns
// the medians in cfgs order.
func alternateDecode(b *testing.B, cfgs []*decodeCfg, vocab int) []float64 {
	const span = 32
	logits := make([]float32, vocab)
	for b.Loop() {
		for _, c := range cfgs {
			tok := 1
			start := time.Now()
			for pos := range span {
				if err := c.st.Forward([]int{tok}, pos, logits); err != nil {
					b.Fatal(err)
				}
				tok = Argmax(logits)
			}
			c.tps = append(c.tps, span/time.Since(start).Seconds())
		}
	}
	med := make([]float64, len(cfgs))
	for i, c := range cfgs {
		s := slices.Clone(c.tps)
		slices.Sort(s)
		med[i] = s[len(s)/2]
		b.ReportMetric(med[i], c.name+"-tok/s")
	}
	return med
}

// BenchmarkDecodeSparseSmolLM2 decodes SmolLM2 (2 threads) in alternating rounds of 32 tokens:
// dense on the row-major layout, dense on the column-major packs, and 50% uniform sparsity
// through the sparse kernels on the packs. It reports each one's median tokens/s and the
// ratios sparse/dense (to the faster dense layout).
func BenchmarkDecodeSparseSmolLM2(b *testing.B) {
	rows, cols := loadSmolLM2Layouts(b)
	mk := func(m *Model, ratio float64) *State {
		st := m.NewState(256)
		if ratio > 0 {
			if err := st.SetSparsity(ratio); err != nil {
				b.Fatal(err)
			}
		}
		return st
	}
	cfgs := []*decodeCfg{{name: "dense-rows", st: mk(rows, 0)}, {name: "dense-cols", st: mk(cols, 0)}, {name: "s50-cols", st: mk(cols, 0.5)}}
	med := alternateDecode(b, cfgs, rows.Spec.Vocab)
	b.ReportMetric(med[2]/max(med[0], med[1]), "s50/dense")
}

// BenchmarkPrefillLayoutsSmolLM2: pp512 (one 512-token forward, 2 threads) on the row-major
// and the column-major layout in alternating rounds; medians in tokens/s.
func BenchmarkPrefillLayoutsSmolLM2(b *testing.B) {
	var sts [2]*State
	for i, lay := range []string{LoadRows, LoadCols} {
		m, err := Load(testenv.SmolLM2Path(b), LoadOptions{WeightType: "f16", Layout: lay, Threads: 2})
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		sts[i] = m.NewState(512)
	}
	toks := make([]int, 512)
	for i := range toks {
		toks[i] = 100 + i*7%5000
	}
	logits := make([]float32, sts[0].Model().Spec.Vocab)
	var tps [2][]float64
	for b.Loop() {
		for i, st := range sts {
			start := time.Now()
			if err := st.Forward(toks, 0, logits); err != nil {
				b.Fatal(err)
			}
			tps[i] = append(tps[i], float64(len(toks))/time.Since(start).Seconds())
		}
	}
	for i, name := range []string{"rows", "cols"} {
		s := slices.Clone(tps[i])
		slices.Sort(s)
		b.ReportMetric(s[len(s)/2], "pp512-"+name+"-tok/s")
	}
}

// BenchmarkDecodeCPUSmolLM2 is BenchmarkDecodeSparseSmolLM2 on one thread, timed by the
// thread's CPU time instead of the wall clock (alternating rounds of 32 tokens, medians):
// the work per token dense vs sparse, without the waits of a shared machine.
func BenchmarkDecodeCPUSmolLM2(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rows, err := Load(testenv.SmolLM2Path(b), LoadOptions{WeightType: "f16", Threads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	cols, err := Load(testenv.SmolLM2Path(b), LoadOptions{Layout: LoadCols, Threads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer cols.Close()
	mk := func(m *Model, ratio float64) *State {
		st := m.NewState(256)
		if err := st.SetSparsity(ratio); err != nil {
			b.Fatal(err)
		}
		return st
	}
	names := []string{"dense-rows", "dense-cols", "s50-cols"}
	sts := []*State{mk(rows, 0), mk(cols, 0), mk(cols, 0.5)}
	tps := make([][]float64, len(sts))
	logits := make([]float32, rows.Spec.Vocab)
	const span = 32
	for b.Loop() {
		for i, st := range sts {
			tok := 1
			c0 := threadCPU()
			for pos := range span {
				if err := st.Forward([]int{tok}, pos, logits); err != nil {
					b.Fatal(err)
				}
				tok = Argmax(logits)
			}
			tps[i] = append(tps[i], span/max((threadCPU()-c0).Seconds(), 1e-9))
		}
	}
	med := make([]float64, len(sts))
	for i := range sts {
		s := slices.Clone(tps[i])
		slices.Sort(s)
		med[i] = s[len(s)/2]
		b.ReportMetric(med[i], names[i]+"-tok/cpu-s")
	}
	b.ReportMetric(med[2]/max(med[0], med[1]), "s50/dense")
}

// BenchmarkDecodePacks decodes (2 threads, alternating rounds of 32 tokens, medians) SmolLM2
// dense on the row-major layout, then each pack file of $QSPARSE_BENCH_PACKS (comma-separated
// paths, e.g. written by qsparse convert from SmolLM2) dense and with its own profile, and the
// in-memory cols layout with that profile: the A/B of pack layouts and of a mapped pack against
// heap memory, in one process. Skipped when the variable is unset.
func BenchmarkDecodePacks(b *testing.B) {
	paths := os.Getenv("QSPARSE_BENCH_PACKS")
	if paths == "" {
		b.Skip("QSPARSE_BENCH_PACKS not set")
	}
	rows, cols := loadSmolLM2Layouts(b)
	cfgs := []*decodeCfg{{name: "dense-rows", st: rows.NewState(256)}}
	for i, p := range strings.Split(paths, ",") {
		m, err := Load(p, LoadOptions{Threads: 2})
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		st := m.NewState(256)
		if err := st.SetProfile(m.DefaultProfile); err != nil {
			b.Fatal(err)
		}
		mem := cols.NewState(256) // the same profile on the in-memory cols layout (heap, 2 MiB pages)
		if err := mem.SetProfile(m.DefaultProfile); err != nil {
			b.Fatal(err)
		}
		cfgs = append(cfgs, &decodeCfg{name: fmt.Sprintf("pack%d-dense", i), st: m.NewState(256)}, &decodeCfg{name: fmt.Sprintf("pack%d-profile", i), st: st},
			&decodeCfg{name: fmt.Sprintf("mem%d-profile", i), st: mem})
		b.Logf("pack%d %s: q/k/v stacked %v, 2 MiB pages %v", i, p, m.W.Layers[0].QKV != nil, m.HugePages)
	}
	alternateDecode(b, cfgs, rows.Spec.Vocab)
}
