package model

import (
	"fmt"
	"math"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
)

// Tests of the sparse-kernel decode on column-major packs (LoadOptions.Layout "cols") against
// its slow twins: the masked dense path on the same packs (State.maskedDecode) and the
// row-major layout. They run on whatever backend the build and GODEBUG select (CI runs them
// with -tags purego -short and GODEBUG=cpu.avx512f=off -short too).

// decodeRun prefills prompt, then decodes steps tokens, feeding each step the next token of
// feed when given (else its own greedy choice); it returns the tokens fed and every decode
// step's logits.
func decodeRun(t testing.TB, st *State, prompt []int, steps int, feed []int) ([]int, [][]float32) {
	t.Helper()
	V := st.m.Spec.Vocab
	logits := make([]float32, V)
	if err := st.Forward(prompt, 0, logits); err != nil {
		t.Fatal(err)
	}
	var toks []int
	var outs [][]float32
	for i := range steps {
		tok := Argmax(logits)
		if feed != nil {
			tok = feed[i]
		}
		toks = append(toks, tok)
		if err := st.Forward([]int{tok}, len(prompt)+i, logits); err != nil {
			t.Fatal(err)
		}
		outs = append(outs, append([]float32(nil), logits...))
	}
	return toks, outs
}

// maxRelDiff returns max |a-b| over max |b| (at least 1).
func maxRelDiff(a, b []float32) float64 {
	var d, s float64
	for i := range b {
		d = max(d, math.Abs(float64(a[i]-b[i])))
		s = max(s, math.Abs(float64(b[i])))
	}
	return d / max(s, 1)
}

// checkKernelVsMasked decodes with the sparse kernels and with the masked twin under profile
// p and compares the greedy tokens and, fed the same tokens, every step's logits.
//
// Site by site (twinHook), the kernel output must equal the masked path's from the same input
// within float32 summation-order tolerance (relative 1e-5). End to end the two paths can part:
// a rounding difference can swap the K-th and (K+1)-th channel of a later site's selection
// (TopK is discontinuous), which on SmolLM2 happens within a few tokens. With strict, the
// whole run's logits (within tol) and greedy tokens must agree too; otherwise the end-to-end
// difference is only logged.
func checkKernelVsMasked(t *testing.T, m *Model, name string, p *Profile, prompt []int, steps int, strict bool, tol float64) {
	t.Helper()
	const siteTol = 1e-5
	sites, siteWorst := 0, 0.0
	run := func(masked bool, feed []int) ([]int, [][]float32) {
		st := m.NewState(len(prompt) + steps + 1)
		if err := st.SetProfile(p); err != nil {
			t.Fatal(err)
		}
		st.maskedDecode = masked
		if !masked && feed == nil {
			st.twinHook = func(site Site, layer int, kernel, ref []float32) {
				sites++
				siteWorst = max(siteWorst, maxRelDiff(kernel, ref))
			}
		}
		return decodeRun(t, st, prompt, steps, feed)
	}
	kt, kl := run(false, nil)
	t.Logf("%s: %d sparse-kernel site outputs, max relative difference to the masked path %.2g", name, sites, siteWorst)
	if sites == 0 || siteWorst > siteTol {
		t.Errorf("%s: %d site outputs, kernel vs masked differ by %.3g (relative), want <= %g", name, sites, siteWorst, siteTol)
	}
	mt, _ := run(true, nil)
	_, ml := run(true, kt) // the twin fed the kernel path's tokens
	worst, same := 0.0, 0
	for i := range kl {
		worst = max(worst, maxRelDiff(kl[i], ml[i]))
	}
	for same < len(kt) && kt[same] == mt[same] {
		same++
	}
	t.Logf("%s: end to end over %d steps: max relative logit difference %.2g, first %d greedy tokens equal", name, steps, worst, same)
	if !strict {
		return
	}
	if worst > tol {
		t.Errorf("%s: kernel and masked logits differ by %.3g (relative), want <= %g", name, worst, tol)
	}
	if same < len(kt) {
		t.Errorf("%s: greedy token %d: kernel %v, masked %v", name, same, kt, mt)
	}
}

func sparseModes(t *testing.T, sp *Spec, ratio float64) map[string]*Profile {
	t.Helper()
	u, err := UniformProfile(sp, ratio)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*Profile{fmt.Sprintf("uniform %.2f", ratio): u}
	if ratio == 0.5 {
		w := u.Clone()
		w.Scoring = ScoreWeighted
		out["weighted 0.50"] = w
		r := u.Clone()
		r.Rescale = true
		out["rescale 0.50"] = r
		b, err := BlockProfile(sp, 2, 4)
		if err != nil {
			t.Fatal(err)
		}
		out["block 2:4"] = b
		// one site dense, one sparse (per-site profile)
		ps := u.Clone()
		for l := range ps.Keep {
			ps.Keep[l][AttnIn] = sp.SiteDim(AttnIn)
		}
		out["per-site"] = ps
	}
	return out
}

func TestSparseKernelMatchesMaskedStories(t *testing.T) {
	m := loadStories(t, LoadOptions{Layout: LoadCols, Threads: 2})
	prompt := m.Tok.Encode("Once upon a time, there was a", true, false)
	for _, ratio := range []float64{0.25, 0.5, 0.7} {
		for name, p := range sparseModes(t, &m.Spec, ratio) {
			checkKernelVsMasked(t, m, name, p, prompt, 24, true, 1e-4)
		}
	}
}

func TestSparseKernelMatchesMaskedSmolLM2(t *testing.T) {
	m, err := Load(testenv.SmolLM2Path(t), LoadOptions{Layout: LoadCols, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	prompt := m.Tok.Encode("The capital of France is", true, false)
	steps := 8
	if testing.Short() {
		steps = 3
	}
	for _, ratio := range []float64{0.25, 0.5, 0.7} {
		u, err := UniformProfile(&m.Spec, ratio)
		if err != nil {
			t.Fatal(err)
		}
		checkKernelVsMasked(t, m, fmt.Sprintf("uniform %.2f", ratio), u, prompt, steps, false, 1e-4)
	}
}

// TestColsLayoutDense: on the column-major layout, sparsity 0 is the dense path bit for bit;
// prefill equals the row-major layout bit for bit (the pack GEMM computes the same dot
// products) and decode within float32 summation-order tolerance, with the same greedy tokens.
func TestColsLayoutDense(t *testing.T) {
	rows := loadStories(t, LoadOptions{WeightType: "f16", Threads: 2})
	cols := loadStories(t, LoadOptions{Layout: LoadCols, Threads: 2})
	if cols.Layout != LoadCols || cols.W.Layers[0].QKV.Layout() != LayoutF16Cols || cols.W.Output.Layout() != LayoutF16 {
		t.Fatalf("layout cols: model %s, qkv %s, output %s", cols.Layout, cols.W.Layers[0].QKV.Layout(), cols.W.Output.Layout())
	}
	// the packs hold the same weights
	for _, name := range []string{LayerName(0, AttnQ), LayerName(1, AttnV), LayerName(2, FFNUp), LayerName(3, FFNDown)} {
		a, b := rows.W.Matrix(name), cols.W.Matrix(name)
		for r := 0; r < a.Rows; r += 7 {
			for c := 0; c < a.Cols; c += 5 {
				if a.At(r, c) != b.At(r, c) {
					t.Fatalf("%s[%d][%d]: rows %v, cols %v", name, r, c, a.At(r, c), b.At(r, c))
				}
			}
		}
	}
	toks := cols.Tok.Encode(textPrefix(t, "tinystories_valid_first1000.txt", 400), true, false)[:40]
	V := cols.Spec.Vocab
	pre := func(m *Model, sparsity0 bool) ([]float32, *State) {
		st := m.NewState(128)
		if sparsity0 {
			if err := st.SetSparsity(0); err != nil {
				t.Fatal(err)
			}
		}
		out := make([]float32, len(toks)*V)
		if err := st.Forward(toks, 0, out); err != nil {
			t.Fatal(err)
		}
		return out, st
	}
	pr, str := pre(rows, false)
	pc, stc := pre(cols, false)
	p0, st0 := pre(cols, true)
	for i := range pr {
		if math.Float32bits(pr[i]) != math.Float32bits(pc[i]) || math.Float32bits(pc[i]) != math.Float32bits(p0[i]) {
			t.Fatalf("prefill logit %d: rows %v, cols %v, cols at sparsity 0 %v", i, pr[i], pc[i], p0[i])
		}
	}
	// decode continues the prefilled states greedily
	step := func(st *State, tok, pos int) []float32 {
		l := make([]float32, V)
		if err := st.Forward([]int{tok}, pos, l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	tr, tc, t0 := Argmax(pr[(len(toks)-1)*V:]), Argmax(pc[(len(toks)-1)*V:]), Argmax(p0[(len(toks)-1)*V:])
	for i := range 24 {
		pos := len(toks) + i
		a, b, c := step(str, tr, pos), step(stc, tc, pos), step(st0, t0, pos)
		for j := range b {
			if math.Float32bits(b[j]) != math.Float32bits(c[j]) {
				t.Fatalf("decode step %d logit %d: cols %v, cols at sparsity 0 %v", i, j, b[j], c[j])
			}
		}
		if d := maxRelDiff(b, a); d > 1e-4 {
			t.Fatalf("decode step %d: cols and rows logits differ by %.3g (relative)", i, d)
		}
		tr, tc, t0 = Argmax(a), Argmax(b), Argmax(c)
		if tr != tc {
			t.Fatalf("decode step %d: greedy token rows %d, cols %d", i, tr, tc)
		}
	}
}

// TestSparseDecodeNoAlloc: the sparse-kernel decode (and prefill on packs) allocates nothing
// and gives the same logits on 1 and 3 threads.
func TestSparseDecodeNoAlloc(t *testing.T) {
	toks := []int{1, 400, 300, 200, 100, 50, 25, 12, 6, 3}
	var outs [2][]float32
	for i, th := range []int{1, 3} {
		m := loadStories(t, LoadOptions{Layout: LoadCols, Threads: th})
		V := m.Spec.Vocab
		st := m.NewState(64)
		p, err := UniformProfile(&m.Spec, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		p.Rescale = true
		if err := st.SetProfile(p); err != nil {
			t.Fatal(err)
		}
		all := make([]float32, len(toks)*V)
		one := make([]float32, V)
		f := func() {
			if err := st.Forward(toks, 0, all); err != nil {
				t.Fatal(err)
			}
			for j := range 4 {
				if err := st.Forward(toks[j:j+1], len(toks)+j, one); err != nil {
					t.Fatal(err)
				}
			}
		}
		f()
		outs[i] = append(append([]float32(nil), all...), one...)
		if a := testing.AllocsPerRun(5, f); a != 0 {
			t.Errorf("%d threads: sparse-kernel forward made %v allocations", th, a)
		}
	}
	for i := range outs[0] {
		if outs[0][i] != outs[1][i] {
			t.Fatalf("logit %d: 1 thread %v, 3 threads %v", i, outs[0][i], outs[1][i])
		}
	}
}

// TestColumnNormsLayouts: the WINA column norms are the same on both layouts.
func TestColumnNormsLayouts(t *testing.T) {
	a := loadStories(t, LoadOptions{WeightType: "f16"}).ColumnNorms()
	b := loadStories(t, LoadOptions{Layout: LoadCols}).ColumnNorms()
	for l := range a {
		for site := range a[l] {
			for i, v := range a[l][site] {
				if b[l][site][i] != v {
					t.Fatalf("layer %d %s channel %d: rows %v, cols %v", l, Site(site), i, v, b[l][site][i])
				}
			}
		}
	}
}
