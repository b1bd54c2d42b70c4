package model

import (
	"fmt"
	"maps"
	"math"
	"slices"
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

// Tolerances of the kernel-vs-masked comparisons (see checkKernelVsMasked). Float32 rounds to
// u = 2⁻²⁴ ≈ 6e-8; reordering a dot product of n terms moves it by about √n·u of the terms'
// scale (n ≤ 1536 here: ~2.4e-6 of a site's largest output), and the lockstep runs carry 2 such
// differences per layer in the residual stream. Measured (stories260K, SmolLM2, 16-24 steps,
// default, avx512f=off and purego backends): site outputs ≤ 1.0e-6, site inputs ≤ 4.9e-6,
// logits ≤ 1.8e-6.
const (
	// siteTol bounds one site's sparse-kernel output against the masked path's from the same
	// input and index set, max |diff| over max |output|: the two sum the same products in a
	// different order (the kernel over the kept channels, the dense GEMV over all, with zeros).
	siteTol = 1e-5
	// inputTol bounds a sparse site's input on the kernel path against the masked path's in
	// lockstep (both on the same index sets), max |diff| over max |input|: the summation-order
	// differences of every earlier site, carried through the residual stream and RMSNorm.
	inputTol = 5e-5
	// logitTol bounds every decode step's logits, max |diff| over max(max |logit|, 1): the final
	// residual's difference (as inputTol) through one more GEMV.
	logitTol = 5e-5
	// tieTol bounds, relative to the K-th largest score of the masked path's input, how far from
	// that boundary the score of a channel selected by one path only may be. The two inputs
	// differ by absolute amounts set by the row's scale, not by the boundary channel's own
	// value, which on SmolLM2 is up to 1e4 times smaller than the row's largest score (heavy
	// outlier channels): the measured difference of channels within 10% of the boundary
	// reached 7.6e-5 of the K-th score (SmolLM2, sparsity 0.25), so a genuine swap can sit up to
	// ~1.5e-4 away. A wrong selection is still caught: the median gap between the K-th and
	// (K+1)-th score is 1.7e-2..3.6e-2 of the K-th on stories260K, 2.4e-3..4.2e-3 on SmolLM2.
	// Independently, every such channel must be within twice the site's largest score
	// difference between the two inputs (the most two exact top-K selections of those inputs
	// can disagree by).
	tieTol = 5e-4
)

// kernelStats counts what a lockstep run saw.
type kernelStats struct {
	sites, swapSites, swapped int     // sparse site evaluations; of them with differing sets; channels differing
	siteWorst, inWorst        float64 // max relative site-output, site-input difference
	gapWorst, logitWorst      float64 // max relative tie gap (channels differing), logit difference
	unforced                  int     // greedy tokens equal in the free-running comparison
}

// lockstep is the bookkeeping of one kernel-vs-masked lockstep run: the kernel path's index
// set and input at every site of the current step, recorded by its selHook and read by the
// masked path's. All buffers are allocated once.
type lockstep struct {
	blk    *Block
	norms  [][NumSites][]float32 // weighted scoring; nil: magnitude
	step   int
	kIdx   [][NumSites][]int32   // kernel path's selection at the current step
	kX     [][NumSites][]float32 // its site input
	kStep  [][NumSites]int       // the step kIdx was recorded at
	scores []float32             // [max site dim] scratch
	kSites int                   // sparse sites the kernel path ran this step
	mSites int                   // and the masked path
	st     kernelStats
	fail   string // first failure
}

func newLockstep(m *Model, p *Profile) *lockstep {
	sp := &m.Spec
	ls := &lockstep{blk: p.Block, kIdx: make([][NumSites][]int32, sp.NLayers), kX: make([][NumSites][]float32, sp.NLayers),
		kStep: make([][NumSites]int, sp.NLayers)}
	if p.Scoring == ScoreWeighted {
		ls.norms = m.ColumnNorms()
	}
	width := 0
	for l := range sp.NLayers {
		for site := AttnIn; site < NumSites; site++ {
			d := sp.SiteDim(site)
			width = max(width, d)
			ls.kIdx[l][site] = make([]int32, 0, d)
			ls.kX[l][site] = make([]float32, d)
			ls.kStep[l][site] = -1
		}
	}
	ls.scores = make([]float32, width)
	return ls
}

func (ls *lockstep) failf(format string, args ...any) {
	if ls.fail == "" {
		ls.fail = fmt.Sprintf(format, args...)
	}
}

// kernelHook records the kernel path's selection and input and keeps the selection.
func (ls *lockstep) kernelHook(site Site, layer int, x []float32, own []int32) []int32 {
	ls.kIdx[layer][site] = append(ls.kIdx[layer][site][:0], own...)
	copy(ls.kX[layer][site], x)
	ls.kStep[layer][site] = ls.step
	ls.kSites++
	return own
}

// maskedHook compares the masked path's own selection with the kernel path's at the same site
// and step, checks that they differ only in near-ties, and returns the kernel path's set.
func (ls *lockstep) maskedHook(site Site, layer int, x []float32, own []int32) []int32 {
	ls.mSites++
	ls.st.sites++
	if ls.kStep[layer][site] != ls.step {
		ls.failf("step %d: the masked path ran sparse site %s of layer %d, the kernel path did not", ls.step, site, layer)
		return own
	}
	ka, kx := ls.kIdx[layer][site], ls.kX[layer][site]
	if len(ka) != len(own) {
		ls.failf("step %d %s layer %d: kernel path kept %d channels, masked path %d", ls.step, site, layer, len(ka), len(own))
		return own
	}
	if d := maxRelDiff(kx, x); d > ls.st.inWorst {
		ls.st.inWorst = d
		if d > inputTol {
			ls.failf("step %d %s layer %d: site inputs differ by %.3g (relative), want <= %g", ls.step, site, layer, d, inputTol)
		}
	}
	if slices.Equal(ka, own) {
		return ka
	}
	ls.st.swapSites++
	// the scores selectTop ranks, in the same float32 arithmetic, of the masked path's input
	// (sc) and the kernel path's (ks), and their largest difference delta
	score := func(x []float32, i int) float32 {
		v := float32(math.Abs(float64(x[i])))
		if ls.norms != nil {
			v *= ls.norms[layer][site][i]
		}
		return v
	}
	sc := ls.scores[:len(x)]
	delta := 0.0
	for i := range x {
		sc[i] = score(x, i)
		delta = max(delta, math.Abs(float64(score(kx, i))-float64(sc[i])))
	}
	// boundary: the smallest kept score (the K-th largest) of the masked path's own selection,
	// within c's block of an N:M profile
	boundary := func(c int32) float64 {
		lo, hi := int32(0), int32(len(x))
		if ls.blk != nil {
			lo = c / int32(ls.blk.M) * int32(ls.blk.M)
			hi = min(lo+int32(ls.blk.M), hi)
		}
		b := math.Inf(1)
		for _, o := range own {
			if o >= lo && o < hi {
				b = min(b, float64(sc[o]))
			}
		}
		return b
	}
	for i, j := 0, 0; i < len(ka) || j < len(own); {
		var c int32
		switch {
		case j == len(own) || (i < len(ka) && ka[i] < own[j]):
			c, i = ka[i], i+1
		case i == len(ka) || own[j] < ka[i]:
			c, j = own[j], j+1
		default:
			i, j = i+1, j+1
			continue
		}
		ls.st.swapped++
		b := boundary(c)
		gap := math.Abs(float64(sc[c]) - b)
		ls.st.gapWorst = max(ls.st.gapWorst, gap/b)
		// c in one set only, say the kernel's: s_m(c) <= K-th_m, s_k(c) >= K-th_k and the K-th
		// scores differ by at most delta, so s_m(c) >= K-th_m - 2·delta (the masked path's own
		// set likewise)
		if gap > tieTol*b || gap > 2*delta {
			ls.failf("step %d %s layer %d: channel %d is kept by one path only with score %.9g, K-th score %.9g: %.3g from the boundary, not a near-tie (want <= %g of the K-th score and <= twice the largest score difference of the two inputs, %.3g)",
				ls.step, site, layer, c, sc[c], b, gap, tieTol, 2*delta)
		}
	}
	return ka
}

// checkKernelVsMasked compares the sparse-kernel decode (column-major packs) with its masked
// twin (State.maskedDecode) under profile p, greedy from prompt for steps tokens.
//
// The two States run in lockstep, token by token. At every sparse site the kernel path records
// its index set and input (selHook); the masked path computes its own top-K of its own input,
// which must equal the kernel path's up to near-ties (every channel in one set only scores
// within tieTol of the K-th score, and within twice the two inputs' largest score difference),
// and then uses the kernel path's set, so that a last-bit
// summation-order difference cannot swap the K-th and (K+1)-th channel and part the runs. So
// forced, the site inputs must agree within inputTol, every step's logits within logitTol and
// the greedy tokens exactly. Site by site (twinHook), the kernel output must equal the masked
// path's from the same input within siteTol. Free-running (nothing forced), the masked path
// may part from the kernel path at a near-tie: how many greedy tokens it keeps is only logged.
func checkKernelVsMasked(t *testing.T, m *Model, name string, p *Profile, prompt []int, steps int) kernelStats {
	t.Helper()
	V := m.Spec.Vocab
	newState := func(masked bool) *State {
		st := m.NewState(len(prompt) + steps + 1)
		if err := st.SetProfile(p); err != nil {
			t.Fatal(err)
		}
		st.maskedDecode = masked
		return st
	}
	ks, ms := newState(false), newState(true)
	ls := newLockstep(m, p)
	kl, ml := make([]float32, V), make([]float32, V)
	// prefill: both States run the same masked batch path
	if err := ks.Forward(prompt, 0, kl); err != nil {
		t.Fatal(err)
	}
	if err := ms.Forward(prompt, 0, ml); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(kl, ml) {
		t.Fatalf("%s: prefill logits differ between two States of the same path", name)
	}
	ks.twinHook = func(site Site, layer int, kernel, ref []float32) {
		ls.st.siteWorst = max(ls.st.siteWorst, maxRelDiff(kernel, ref))
	}
	ks.selHook, ms.selHook = ls.kernelHook, ls.maskedHook
	var toks []int
	for i := range steps {
		tok := Argmax(kl)
		if mt := Argmax(ml); mt != tok {
			t.Fatalf("%s: step %d: greedy token kernel %d (logit %v), masked %d (logit %v; kernel's %v)", name, i, tok, kl[tok], mt, ml[mt], ml[tok])
		}
		toks = append(toks, tok)
		ls.step, ls.kSites, ls.mSites = i, 0, 0
		if err := ks.Forward([]int{tok}, len(prompt)+i, kl); err != nil {
			t.Fatal(err)
		}
		if err := ms.Forward([]int{tok}, len(prompt)+i, ml); err != nil {
			t.Fatal(err)
		}
		if ls.kSites == 0 || ls.kSites != ls.mSites {
			ls.failf("step %d: %d sparse sites on the kernel path, %d on the masked path", i, ls.kSites, ls.mSites)
		}
		if ls.fail != "" {
			t.Fatalf("%s: %s", name, ls.fail)
		}
		d := maxRelDiff(kl, ml)
		ls.st.logitWorst = max(ls.st.logitWorst, d)
		if d > logitTol {
			t.Fatalf("%s: step %d: kernel and masked logits differ by %.3g (relative), want <= %g", name, i, d, logitTol)
		}
	}
	if kt, mt := Argmax(kl), Argmax(ml); kt != mt {
		t.Fatalf("%s: after step %d: greedy token kernel %d, masked %d", name, steps-1, kt, mt)
	}
	if ls.st.siteWorst > siteTol {
		t.Errorf("%s: kernel vs masked site outputs differ by %.3g (relative), want <= %g", name, ls.st.siteWorst, siteTol)
	}
	// free-running masked twin: how far its own greedy choices follow the kernel path's
	free, _ := decodeRun(t, newState(true), prompt, steps, nil)
	for ls.st.unforced < steps && free[ls.st.unforced] == toks[ls.st.unforced] {
		ls.st.unforced++
	}
	st := ls.st
	t.Logf("%s: %d steps, %d sparse sites: %d with near-tie swaps (%d channels, worst gap %.2g of the K-th score); max relative difference: site output %.2g, site input %.2g, logits %.2g; free-running: first %d greedy tokens equal",
		name, steps, st.sites, st.swapSites, st.swapped, st.gapWorst, st.siteWorst, st.inWorst, st.logitWorst, st.unforced)
	return st
}

// sparseModes returns the profiles checked at sparsity ratio (0.25, 0.5 or 0.7): top-K and the
// N:M block profile closest to it (3:4, 2:4, 1:4), each with magnitude and weighted scoring;
// at 0.5 also the rescaled and a per-site profile.
func sparseModes(t *testing.T, sp *Spec, ratio float64) map[string]*Profile {
	t.Helper()
	u, err := UniformProfile(sp, ratio)
	if err != nil {
		t.Fatal(err)
	}
	w := u.Clone()
	w.Scoring = ScoreWeighted
	out := map[string]*Profile{fmt.Sprintf("uniform %.2f", ratio): u, fmt.Sprintf("weighted %.2f", ratio): w}
	n := map[float64]int{0.25: 3, 0.5: 2, 0.7: 1}[ratio]
	if n > 0 {
		b, err := BlockProfile(sp, n, 4)
		if err != nil {
			t.Fatal(err)
		}
		out[fmt.Sprintf("block %d:4", n)] = b
		bw := b.Clone()
		bw.Scoring = ScoreWeighted
		out[fmt.Sprintf("block %d:4 weighted", n)] = bw
	}
	if ratio == 0.5 {
		r := u.Clone()
		r.Rescale = true
		out["rescale 0.50"] = r
		// one site dense, one sparse (per-site profile)
		ps := u.Clone()
		for l := range ps.Keep {
			ps.Keep[l][AttnIn] = sp.SiteDim(AttnIn)
		}
		out["per-site"] = ps
	}
	return out
}

// TestSparseKernelMatchesMaskedStories: on stories260K, 24 greedy steps of the sparse kernels
// against the masked path in lockstep (checkKernelVsMasked) at sparsity 0.25, 0.5 and 0.7, for
// top-K and N:M blocks, magnitude and weighted scoring, rescaled and per-site.
func TestSparseKernelMatchesMaskedStories(t *testing.T) {
	m := loadStories(t, LoadOptions{Layout: LoadCols, Threads: 2})
	prompt := m.Tok.Encode("Once upon a time, there was a", true, false)
	for _, ratio := range []float64{0.25, 0.5, 0.7} {
		modes := sparseModes(t, &m.Spec, ratio)
		for _, name := range slices.Sorted(maps.Keys(modes)) {
			checkKernelVsMasked(t, m, name, modes[name], prompt, 24)
		}
	}
}

// TestSparseKernelMatchesMaskedSmolLM2: the same on SmolLM2-135M (uniform top-K, 16 greedy
// steps from a 5-token prompt), where near-tie swaps do occur.
func TestSparseKernelMatchesMaskedSmolLM2(t *testing.T) {
	m, err := Load(testenv.SmolLM2Path(t), LoadOptions{Layout: LoadCols, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	prompt := m.Tok.Encode("The capital of France is", true, false)
	t.Logf("prompt: %d tokens", len(prompt))
	for _, ratio := range []float64{0.25, 0.5, 0.7} {
		u, err := UniformProfile(&m.Spec, ratio)
		if err != nil {
			t.Fatal(err)
		}
		checkKernelVsMasked(t, m, fmt.Sprintf("uniform %.2f", ratio), u, prompt, 16)
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
