package model

import (
	"encoding/binary"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qsparse/qsparse/gguf"
	"github.com/qsparse/qsparse/internal/testenv"
)

// exactlySparseStories writes stories260K (dim 64, 8 heads of 8, 4 KV heads, ffn 172) with its
// weights zeroed so that every site's input has at most keep[site] nonzero channels per token:
// the residual stream lives in channels 0..15 (embedding columns, o_proj and down_proj rows
// outside them are zero), v has only rows 0 and 1 of every KV head (so the attention output,
// the o_proj input, is nonzero in 2 of every head's 8 channels) and up_proj only rows 0..39 (so
// silu(gate)·up, the down_proj input, is nonzero in at most 40 of 172).
func exactlySparseStories(t *testing.T) (path string, keep [NumSites]int) {
	t.Helper()
	f, err := gguf.Open(testenv.Path(t, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const resid, vRows, upRows = 16, 2, 40
	var tensors []gguf.WriteTensor
	for _, ti := range f.Tensors {
		w := make([]float32, ti.NumElements())
		if err := ti.Dequantize(w); err != nil {
			t.Fatal(err)
		}
		cols := int(ti.Shape[0])
		rows := len(w) / cols
		zero := func(keep func(r, c int) bool) {
			for r := range rows {
				for c := range cols {
					if !keep(r, c) {
						w[r*cols+c] = 0
					}
				}
			}
		}
		switch {
		case ti.Name == NameTokEmbd:
			zero(func(r, c int) bool { return c < resid })
		case strings.HasSuffix(ti.Name, "."+AttnV):
			zero(func(r, c int) bool { return r%8 < vRows })
		case strings.HasSuffix(ti.Name, "."+AttnOutput), strings.HasSuffix(ti.Name, "."+FFNDown):
			zero(func(r, c int) bool { return r < resid })
		case strings.HasSuffix(ti.Name, "."+FFNUp):
			zero(func(r, c int) bool { return r < upRows })
		}
		b := make([]byte, 4*len(w))
		for i, v := range w {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		tensors = append(tensors, gguf.WriteTensor{Name: ti.Name, Type: gguf.F32, Shape: ti.Shape, Data: b})
	}
	path = filepath.Join(t.TempDir(), "sparse-stories.gguf")
	if err := gguf.WriteFile(path, f.KV, tensors, 0); err != nil {
		t.Fatal(err)
	}
	keep[AttnIn], keep[AttnOut], keep[MLPIn], keep[MLPDown] = resid, 8*vRows, resid, upRows
	return path, keep
}

// TestMaskExactlySparseIsDense: with K below every site's width but at least its number of
// nonzero inputs, the top-K mask drops only exact zeros, so the masked path gives logits bit for
// bit equal to the dense pass. (TestSparsityZeroIsDense only covers K = width, which skips the
// mask.) A K smaller than the nonzero count must change the logits: the mask really ran.
func TestMaskExactlySparseIsDense(t *testing.T) {
	path, keep := exactlySparseStories(t)
	m, err := Load(path, LoadOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	sp := &m.Spec
	for site := AttnIn; site < NumSites; site++ {
		if keep[site] >= sp.SiteDim(site) {
			t.Fatalf("%s: K %d is not below the width %d", site, keep[site], sp.SiteDim(site))
		}
	}
	toks := m.Tok.Encode(textPrefix(t, "tinystories_valid_first1000.txt", 400), true, false)[:40]
	V := sp.Vocab
	run := func(p *Profile, check bool) []float32 {
		st := m.NewState(64)
		if err := st.SetProfile(p); err != nil {
			t.Fatal(err)
		}
		maxNZ := [NumSites]int{}
		if check {
			st.SetHook(func(site Site, layer int, in []float32, n int) {
				d := sp.SiteDim(site)
				for tk := range n {
					nz := 0
					for _, v := range in[tk*d : (tk+1)*d] {
						if v != 0 {
							nz++
						}
					}
					maxNZ[site] = max(maxNZ[site], nz)
				}
			})
		}
		out := make([]float32, len(toks)*V)
		if err := st.Forward(toks, 0, out); err != nil {
			t.Fatal(err)
		}
		for site := AttnIn; check && site < NumSites; site++ {
			if maxNZ[site] == 0 || maxNZ[site] > keep[site] {
				t.Fatalf("%s: up to %d nonzero inputs per token, want 1..%d", site, maxNZ[site], keep[site])
			}
		}
		return out
	}
	uniform := func(k [NumSites]int) *Profile {
		p := &Profile{Keep: make([][NumSites]int, sp.NLayers)}
		for l := range p.Keep {
			p.Keep[l] = k
		}
		return p
	}
	dense := run(nil, true)
	masked := run(uniform(keep), false)
	for i := range dense {
		if math.Float32bits(dense[i]) != math.Float32bits(masked[i]) {
			t.Fatalf("logit %d (token %d): dense %v, masked with K %v %v", i, i/V, dense[i], keep, masked[i])
		}
	}
	tight := keep
	tight[MLPDown] -= 8
	cut := run(uniform(tight), false)
	same := true
	for i := range dense {
		same = same && math.Float32bits(dense[i]) == math.Float32bits(cut[i])
	}
	if same {
		t.Fatalf("K %v (below the nonzero count at mlp_down) left the logits unchanged: the mask did not run", tight)
	}
}
