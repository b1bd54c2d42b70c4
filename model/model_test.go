package model

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestPermuteRoundTrip(t *testing.T) {
	for _, hd := range []int{2, 8, 64} {
		for r := 0; r < 3*hd; r++ {
			if got := hfRowToGGUF(ggufRowToHF(r, hd), hd); got != r {
				t.Fatalf("hd %d: hfRowToGGUF(ggufRowToHF(%d)) = %d", hd, r, got)
			}
		}
		rows, cols := 3*hd, 5
		w := make([]float32, rows*cols)
		for i := range w {
			w[i] = float32(i)
		}
		if p := permuteRows(w, cols, hd); !slices.Equal(unpermuteRows(p, cols, hd), w) {
			t.Fatalf("hd %d: unpermute(permute(w)) != w", hd)
		}
		if p := unpermuteRows(w, cols, hd); !slices.Equal(permuteRows(p, cols, hd), w) {
			t.Fatalf("hd %d: permute(unpermute(w)) != w", hd)
		}
	}
}

// TestPermuteMatchesConverter checks permuteRows against llama.cpp's numpy expression
// w.reshape(n_head, 2, hd/2, cols).swapaxes(1, 2).reshape(rows, cols), written out literally.
func TestPermuteMatchesConverter(t *testing.T) {
	nHead, hd, cols := 3, 8, 2
	w := make([]int, nHead*hd*cols)
	for i := range w {
		w[i] = i
	}
	want := make([]int, len(w))
	// out[h][i][j][c] = in[h][j][i][c] with in shaped (nHead, 2, hd/2, cols).
	o := 0
	for h := range nHead {
		for i := range hd / 2 {
			for j := range 2 {
				for c := range cols {
					want[o] = w[((h*2+j)*(hd/2)+i)*cols+c]
					o++
				}
			}
		}
	}
	if got := permuteRows(w, cols, hd); !slices.Equal(got, want) {
		t.Fatalf("permuteRows = %v\nwant %v", got, want)
	}
}

func TestHFNames(t *testing.T) {
	cases := map[string]string{
		"model.embed_tokens.weight":                      "token_embd.weight",
		"model.norm.weight":                              "output_norm.weight",
		"lm_head.weight":                                 "output.weight",
		"model.layers.0.input_layernorm.weight":          "blk.0.attn_norm.weight",
		"model.layers.3.self_attn.q_proj.weight":         "blk.3.attn_q.weight",
		"model.layers.12.self_attn.k_proj.bias":          "blk.12.attn_k.bias",
		"model.layers.29.self_attn.o_proj.weight":        "blk.29.attn_output.weight",
		"model.layers.1.post_attention_layernorm.weight": "blk.1.ffn_norm.weight",
		"model.layers.1.mlp.gate_proj.weight":            "blk.1.ffn_gate.weight",
		"model.layers.1.mlp.up_proj.weight":              "blk.1.ffn_up.weight",
		"model.layers.1.mlp.down_proj.weight":            "blk.1.ffn_down.weight",
	}
	for hf, canon := range cases {
		if got, ok := HFToCanonical(hf); !ok || got != canon {
			t.Errorf("HFToCanonical(%q) = %q, %v; want %q", hf, got, ok, canon)
		}
		if got, ok := CanonicalToHF(canon); !ok || got != hf {
			t.Errorf("CanonicalToHF(%q) = %q, %v; want %q", canon, got, ok, hf)
		}
	}
	for _, bad := range []string{"model.layers.x.mlp.up_proj.weight", "model.layers.01.mlp.up_proj.weight",
		"model.rotary_emb.inv_freq", "model.layers.1.self_attn.rotary_emb.inv_freq"} {
		if got, ok := HFToCanonical(bad); ok {
			t.Errorf("HFToCanonical(%q) = %q, want no mapping", bad, got)
		}
	}
}

func TestSite(t *testing.T) {
	want := []string{"attn_in", "attn_out", "mlp_in", "mlp_down"}
	for s := AttnIn; s < NumSites; s++ {
		if s.String() != want[s] {
			t.Errorf("Site(%d) = %q, want %q", s, s, want[s])
		}
		if p, err := ParseSite(want[s]); err != nil || p != s {
			t.Errorf("ParseSite(%q) = %v, %v", want[s], p, err)
		}
	}
	if _, err := ParseSite("lm_head"); !errors.Is(err, ErrBadProfile) {
		t.Error("ParseSite(lm_head) succeeded")
	}
}

func TestCheckTensors(t *testing.T) {
	sp := Spec{Name: "tiny", Arch: "llama", Dim: 8, NLayers: 2, NHeads: 2, NKVHeads: 1, HeadDim: 4, FFNDim: 12, Vocab: 10,
		RopeTheta: 10000, NormEps: 1e-5, TiedEmbeddings: true}
	shapes := map[string][]int{}
	for _, ts := range sp.Tensors() {
		shapes[ts.Name] = ts.Shape
	}
	look := func(n string) ([]int, bool) { s, ok := shapes[n]; return s, ok }
	if err := sp.checkTensors(look); err != nil {
		t.Fatal(err)
	}
	shapes["blk.1.ffn_up.weight"] = []int{8, 12}
	if err := sp.checkTensors(look); !errors.Is(err, ErrTensorShape) || err.Error() != "model tiny: tensor blk.1.ffn_up.weight has shape [8 12], want [12 8]" {
		t.Fatalf("bad shape: err = %v", err)
	}
	delete(shapes, "blk.1.ffn_up.weight")
	if err := sp.checkTensors(look); !errors.Is(err, ErrMissingTensor) || err.Error() != "model tiny: tensor blk.1.ffn_up.weight missing (the checkpoint is incomplete or not a llama model)" {
		t.Fatalf("missing: err = %v", err)
	}
}

func TestRopeRotateHalf(t *testing.T) {
	sp := Spec{HeadDim: 8, RopeTheta: 10000}
	inv, err := ropeInvFreq(&sp, nil)
	if err != nil {
		t.Fatal(err)
	}
	cos, sin := make([]float32, 4), make([]float32, 4)
	pos := 7
	ropeTable(cos, sin, inv, pos)
	x := []float32{1, 2, 3, 4, 5, 6, 7, 8}
	ropeRotateHalf(x, 1, 8, cos, sin)
	// HF: q*cos + rotate_half(q)*sin with rotate_half(q) = [-q2, q1], in float64.
	in := []float64{1, 2, 3, 4, 5, 6, 7, 8}
	for i := range 4 {
		th := float64(pos) / math.Pow(10000, float64(2*i)/8)
		w0 := in[i]*math.Cos(th) - in[i+4]*math.Sin(th)
		w1 := in[i+4]*math.Cos(th) + in[i]*math.Sin(th)
		if math.Abs(float64(x[i])-w0) > 1e-5 || math.Abs(float64(x[i+4])-w1) > 1e-5 {
			t.Fatalf("pair %d: got %v %v want %v %v", i, x[i], x[i+4], w0, w1)
		}
	}
	// llama3 scaling leaves high frequencies alone and divides low ones by factor.
	sp = Spec{HeadDim: 128, RopeTheta: 500000, RopeScaling: RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OrigCtxLen: 8192}}
	scaled, _ := ropeInvFreq(&sp, nil)
	sp.RopeScaling = RopeScaling{}
	plain, _ := ropeInvFreq(&sp, nil)
	if scaled[0] != plain[0] || math.Abs(scaled[63]-plain[63]/8) > 1e-15 {
		t.Fatalf("llama3 scaling: %g/%g, %g/%g", scaled[0], plain[0], scaled[63], plain[63])
	}
}

func TestSelectTopK(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		n := 1 + r.IntN(300)
		probs := make([]float32, n)
		for i := range probs {
			probs[i] = float32(r.IntN(20)) // many ties
		}
		k := 1 + r.IntN(n)
		ids := make([]int32, n)
		for i := range ids {
			ids[i] = int32(i)
		}
		got := slices.Clone(selectTopK(ids, probs, k))
		slices.Sort(got)
		all := make([]int32, n)
		for i := range all {
			all[i] = int32(i)
		}
		slices.SortStableFunc(all, func(a, b int32) int {
			switch {
			case probs[a] > probs[b]:
				return -1
			case probs[a] < probs[b]:
				return 1
			}
			return 0
		})
		want := slices.Clone(all[:k])
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d n %d k %d: got %v want %v", trial, n, k, got, want)
		}
	}
}

func TestSampler(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	logits := make([]float32, 1000)
	for i := range logits {
		logits[i] = float32(r.NormFloat64() * 3)
	}
	if got, want := NewSampler(1000, SamplerOptions{}).Sample(logits), Argmax(logits); got != want {
		t.Fatalf("greedy = %d, want %d", got, want)
	}
	for _, o := range []SamplerOptions{
		{Temperature: 0.8, Seed: 7},
		{Temperature: 1, TopK: 40, Seed: 7},
		{Temperature: 1, TopP: 0.9, Seed: 7},
		{Temperature: 0.7, TopK: 50, TopP: 0.95, Seed: 42},
	} {
		a, b := NewSampler(1000, o), NewSampler(1000, o)
		seqA, seqB := make([]int, 50), make([]int, 50)
		for i := range seqA {
			seqA[i], seqB[i] = a.Sample(logits), b.Sample(logits)
		}
		if !slices.Equal(seqA, seqB) {
			t.Fatalf("%+v: not deterministic", o)
		}
		if o.TopK > 0 {
			top := slices.Clone(logits)
			slices.Sort(top)
			kth := top[len(top)-o.TopK]
			for _, id := range seqA {
				if logits[id] < kth {
					t.Fatalf("%+v: sampled id %d outside the top %d", o, id, o.TopK)
				}
			}
		}
		if allocs := testing.AllocsPerRun(20, func() { a.Sample(logits) }); allocs != 0 {
			t.Errorf("%+v: %v allocations per Sample", o, allocs)
		}
	}
}

func TestSiteHook(t *testing.T) {
	m := loadStories(t, LoadOptions{})
	st := m.NewState(32)
	type call struct {
		site     Site
		layer, n int
	}
	var calls []call
	st.SetHook(func(site Site, layer int, in []float32, n int) {
		if len(in) != n*m.Spec.SiteDim(site) {
			t.Errorf("%v layer %d: %d values for %d tokens", site, layer, len(in), n)
		}
		calls = append(calls, call{site, layer, n})
	})
	if err := st.Forward([]int{1, 2, 3}, 0, make([]float32, m.Spec.Vocab)); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 4*m.Spec.NLayers || calls[5] != (call{AttnOut, 1, 3}) {
		t.Fatalf("calls %v", calls)
	}
}
