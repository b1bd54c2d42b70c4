package model

import (
	"errors"
	"math"
	"slices"
	"testing"
)

func TestMaskHandChecked(t *testing.T) {
	m := loadStories(t, LoadOptions{Threads: 2})
	st := m.NewState(8)
	if err := st.SetSparsity(0.5); err != nil {
		t.Fatal(err)
	}
	in := []float32{
		3, -5, 1, 0.5, -2, 0, 4, -4, // k=3: -5, 4, -4 (tie of 4 and -4: both kept)
		1, 1, 1, 1, -1, -1, 2, 0, // k=3: 2 and the first two 1s (ties: lower index)
	}
	want := []float32{
		0, -5, 0, 0, 0, 0, 4, -4,
		1, 1, 0, 0, 0, 0, 2, 0,
	}
	got := slices.Clone(st.mask(in, 2, 8, 3))
	if !slices.Equal(got, want) {
		t.Fatalf("mask = %v, want %v", got, want)
	}
}

func TestSparsityZeroIsDense(t *testing.T) {
	m := loadStories(t, LoadOptions{Threads: 2})
	toks := m.Tok.Encode(textPrefix(t, "tinystories_valid_first1000.txt", 400), true, false)[:40]
	V := m.Spec.Vocab
	dense := make([]float32, (len(toks)+1)*V)
	sp0 := make([]float32, (len(toks)+1)*V)
	for i, out := range [][]float32{dense, sp0} {
		st := m.NewState(64)
		if i == 1 {
			if err := st.SetSparsity(0); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Forward(toks, 0, out[:len(toks)*V]); err != nil {
			t.Fatal(err)
		}
		if err := st.Forward([]int{7}, len(toks), out[len(toks)*V:]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range dense {
		if math.Float32bits(dense[i]) != math.Float32bits(sp0[i]) {
			t.Fatalf("logit %d: dense %v, sparsity 0 %v", i, dense[i], sp0[i])
		}
	}
}

// TestSparsityMaskedInput checks, through the forward pass, that every site's masked input has
// exactly K nonzeros per token, that they are the input's own values and the largest |x|.
func TestSparsityMaskedInput(t *testing.T) {
	m := loadStories(t, LoadOptions{Threads: 3})
	sp := &m.Spec
	st := m.NewState(64)
	const ratio = 0.4
	if err := st.SetSparsity(ratio); err != nil {
		t.Fatal(err)
	}
	var pre []float32
	seen := map[Site]int{}
	st.SetHook(func(site Site, layer int, in []float32, n int) { pre = append(pre[:0], in...) })
	st.maskHook = func(site Site, layer int, masked []float32, n int) {
		d := sp.SiteDim(site)
		k := int((1 - ratio) * float64(d))
		if len(masked) != n*d || len(pre) != n*d {
			t.Fatalf("%s layer %d: masked %d values, input %d, want %d", site, layer, len(masked), len(pre), n*d)
		}
		for tk := range n {
			row, orig := masked[tk*d:(tk+1)*d], pre[tk*d:(tk+1)*d]
			nz := 0
			minKept, maxDropped := math.Inf(1), 0.0
			for i, v := range row {
				a := math.Abs(float64(orig[i]))
				if v != 0 {
					nz++
					if v != orig[i] {
						t.Fatalf("%s layer %d token %d: kept value %v, input %v", site, layer, tk, v, orig[i])
					}
					minKept = min(minKept, a)
				} else {
					maxDropped = max(maxDropped, a)
				}
			}
			if nz != k || minKept < maxDropped {
				t.Fatalf("%s layer %d token %d: %d nonzeros (want %d), min kept |x| %g < max dropped %g",
					site, layer, tk, nz, k, minKept, maxDropped)
			}
		}
		seen[site] += n
	}
	toks := []int{1, 400, 300, 200, 100, 50, 25, 12, 6, 3}
	logits := make([]float32, sp.Vocab)
	if err := st.Forward(toks, 0, logits); err != nil {
		t.Fatal(err)
	}
	if err := st.Forward([]int{7}, len(toks), logits); err != nil {
		t.Fatal(err)
	}
	for site := AttnIn; site < NumSites; site++ {
		if want := sp.NLayers * (len(toks) + 1); seen[site] != want {
			t.Errorf("%s: %d masked token rows, want %d", site, seen[site], want)
		}
	}
}

func TestSparsityThreadsAndNoAlloc(t *testing.T) {
	toks := []int{1, 400, 300, 200, 100, 50, 25, 12, 6, 3}
	var outs [2][]float32
	for i, th := range []int{1, 3} {
		m := loadStories(t, LoadOptions{Threads: th})
		V := m.Spec.Vocab
		outs[i] = make([]float32, len(toks)*V+V)
		st := m.NewState(64)
		if err := st.SetSparsity(0.5); err != nil {
			t.Fatal(err)
		}
		if err := st.Forward(toks, 0, outs[i][:len(toks)*V]); err != nil {
			t.Fatal(err)
		}
		if err := st.Forward([]int{7}, len(toks), outs[i][len(toks)*V:]); err != nil {
			t.Fatal(err)
		}
		all := make([]float32, len(toks)*V)
		if a := testing.AllocsPerRun(5, func() {
			if err := st.Forward(toks, 0, all); err != nil {
				t.Fatal(err)
			}
			if err := st.Forward(toks[:1], 0, all[:V]); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("%d threads: sparse forward made %v allocations", th, a)
		}
	}
	for i := range outs[0] {
		if outs[0][i] != outs[1][i] {
			t.Fatalf("logit %d: 1 thread %v, 3 threads %v", i, outs[0][i], outs[1][i])
		}
	}
}

func TestSparsityPerplexity(t *testing.T) {
	m := loadStories(t, LoadOptions{})
	toks := m.Tok.Encode(textPrefix(t, "tinystories_valid_first1000.txt", 40000), true, false)
	var ppl []float64
	for _, r := range []float64{0, 0.25, 0.5, 0.75} {
		st := m.NewState(256)
		if err := st.SetSparsity(r); err != nil {
			t.Fatal(err)
		}
		p := perplexityOn(t, st, toks, 256, 10)
		t.Logf("sparsity %.2f: PPL %.4f", r, p)
		ppl = append(ppl, p)
	}
	if !(ppl[2] > ppl[0] && ppl[3] > ppl[2]) {
		t.Errorf("PPL at sparsity 0, 0.25, 0.5, 0.75 = %v: want 0.5 > dense and 0.75 > 0.5", ppl)
	}
}

func TestProfileValidate(t *testing.T) {
	m := loadStories(t, LoadOptions{})
	st := m.NewState(16)
	for _, r := range []float64{-0.1, 1.5, math.NaN()} {
		if err := st.SetSparsity(r); !errors.Is(err, ErrBadProfile) {
			t.Errorf("SetSparsity(%v): no error", r)
		}
	}
	p, err := UniformProfile(&m.Spec, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Keep[0]; got != [NumSites]int{32, 32, 32, 86} {
		t.Errorf("uniform 0.5 keeps %v of dims 64/64/64/172", got)
	}
	bad := &Profile{Keep: p.Keep[:1]}
	if err := st.SetProfile(bad); !errors.Is(err, ErrBadProfile) {
		t.Error("profile with 1 layer accepted")
	}
	p.Keep[2][MLPDown] = m.Spec.FFNDim + 1
	if err := st.SetProfile(p); !errors.Is(err, ErrBadProfile) {
		t.Error("K above the site width accepted")
	}
	if err := st.SetProfile(nil); err != nil || st.Profile() != nil {
		t.Errorf("SetProfile(nil): %v, profile %v", err, st.Profile())
	}
}
