package model

import (
	"context"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
)

// layerVector returns a loaded model's 1-D tensor with a canonical name (nil if none).
func layerVector(m *Model, name string) []float32 {
	switch name {
	case NameOutputNorm:
		return m.W.OutputNorm
	case NameRopeFreqs:
		return m.W.RopeFreqs
	}
	for l := range m.W.Layers {
		L := &m.W.Layers[l]
		for suffix, v := range map[string][]float32{AttnNorm: L.AttnNorm, FFNNorm: L.FFNNorm,
			AttnQBias: L.QBias, AttnKBias: L.KBias, AttnVBias: L.VBias} {
			if name == LayerName(l, suffix) {
				return v
			}
		}
	}
	return nil
}

// f16Row returns row r of a matrix held as fp16 (row-major or a pack) as its bits.
func f16Row(w *Matrix, r int) []uint16 {
	if w.F16 != nil {
		return w.F16[r*w.Cols : (r+1)*w.Cols]
	}
	out := make([]uint16, w.Cols)
	for c := range out {
		out[c] = w.Pack.Data[c*w.Pack.Stride+w.PackRow+r]
	}
	return out
}

// streamSources are checkpoints of every kind: a llama.cpp GGUF (q/k permuted), pack files of
// both fp16 layouts and an HF folder.
func streamSources(t *testing.T) map[string]string {
	mem := loadStories(t, LoadOptions{Layout: LoadCols, Threads: 2})
	prof, err := UniformProfile(&mem.Spec, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	tiny := Spec{Arch: "llama", Dim: 8, NLayers: 2, NHeads: 2, NKVHeads: 1, HeadDim: 4, FFNDim: 12, Vocab: 49152, TiedEmbeddings: true}
	return map[string]string{
		"gguf":         testenv.Path(t, "stories260K.gguf"),
		"pack":         writeTestPack(t, mem, PackF16ColsStacked, prof, nil),
		"pack-f16cols": writeTestPack(t, mem, PackF16Cols, prof, nil),
		"hf":           tinyHF(t, nil, tiny, ""),
	}
}

// TestStreamMatchesLoad: every tensor read through a Stream, in odd-sized row chunks, equals
// what Load holds (f32 and f16), and a whole-tensor read of each counts each source byte once.
func TestStreamMatchesLoad(t *testing.T) {
	for kind, path := range streamSources(t) {
		t.Run(kind, func(t *testing.T) {
			ref32, err := Load(path, LoadOptions{WeightType: "f32", Threads: 2})
			if strings.HasPrefix(kind, "pack") {
				ref32, err = Load(path, LoadOptions{Threads: 2}) // packs hold fp16 only
			}
			if err != nil {
				t.Fatal(err)
			}
			defer ref32.Close()
			ref16, err := Load(path, LoadOptions{WeightType: "f16", Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer ref16.Close()
			s, err := OpenStream(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Spec != ref32.Spec || s.Format != ref32.Format || s.ChatTemplate != ref32.ChatTemplate || s.Tok.NVocab() != ref32.Tok.NVocab() {
				t.Fatalf("stream %+v %s, Load %+v %s", s.Spec, s.Format, ref32.Spec, ref32.Format)
			}
			names := s.Spec.Tensors()
			if s.Has(NameRopeFreqs) {
				names = append(names, TensorSpec{Name: NameRopeFreqs})
			}
			for _, ts := range names {
				if !ts.Matrix {
					v, err := s.Vector(ts.Name)
					if err != nil || !slices.Equal(v, layerVector(ref32, ts.Name)) {
						t.Fatalf("%s: vector differs (%v)", ts.Name, err)
					}
					continue
				}
				w32, w16 := ref32.W.Matrix(ts.Name), ref16.W.Matrix(ts.Name)
				const step = 5 // not a multiple of the head size: exercises the permuted blocks
				for r0 := 0; r0 < w32.Rows; r0 += step {
					n := min(step, w32.Rows-r0)
					got := make([]float32, n*w32.Cols)
					got16 := make([]uint16, n*w32.Cols)
					if err := s.Rows(ts.Name, got, r0, n); err != nil {
						t.Fatal(err)
					}
					if err := s.RowsF16(ts.Name, got16, r0, n); err != nil {
						t.Fatal(err)
					}
					// a pack's row-major tensors are F32 in the file, which Load turns to fp16
					_, _, site := s.Spec.siteMatrixRows(ts.Name)
					exact32 := !strings.HasPrefix(kind, "pack") || site
					for i := range n {
						if exact32 && !slices.Equal(got[i*w32.Cols:(i+1)*w32.Cols], w32.Row(r0+i)) {
							t.Fatalf("%s row %d: Rows differs from Load", ts.Name, r0+i)
						}
						if !slices.Equal(got16[i*w32.Cols:(i+1)*w32.Cols], f16Row(w16, r0+i)) {
							t.Fatalf("%s row %d: RowsF16 differs from Load f16", ts.Name, r0+i)
						}
					}
				}
			}
			if err := s.Rows(NameTokEmbd, make([]float32, 3), 0, 1); err == nil {
				t.Error("a short dst was accepted")
			}
			if err := s.Rows("blk.99.attn_q.weight", nil, 0, 0); err == nil {
				t.Error("a missing tensor was accepted")
			}
			if strings.HasPrefix(kind, "pack") {
				return
			}
			// Each tensor once, whole: BytesRead is the tensor data of the file.
			s2, err := OpenStream(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			info, err := Inspect(path)
			if err != nil {
				t.Fatal(err)
			}
			var want int64
			for _, ts := range names {
				name := ts.Name
				if kind == "hf" {
					name, _ = CanonicalToHF(name)
				}
				for _, d := range info.Tensors {
					if d.Name == name {
						want += d.Bytes
					}
				}
				if !ts.Matrix {
					s2.Vector(ts.Name)
					continue
				}
				if err := s2.Rows(ts.Name, make([]float32, ts.Shape[0]*ts.Shape[1]), 0, ts.Shape[0]); err != nil {
					t.Fatal(err)
				}
			}
			if got := s2.BytesRead(); got != want {
				t.Errorf("BytesRead %d after reading every tensor once, want %d", got, want)
			}
		})
	}
}

// refPerplexity is TextPerplexity's protocol on a loaded model: one State, batches of 64,
// every token after the first scored from the full logits.
func refPerplexity(t *testing.T, m *Model, toks []int) float64 {
	t.Helper()
	V := m.Spec.Vocab
	st := m.NewState(len(toks))
	logits := make([]float32, 64*V)
	var nll float64
	for p := 0; p < len(toks)-1; p += 64 {
		n := min(64, len(toks)-1-p)
		if err := st.Forward(toks[p:p+n], p, logits[:n*V]); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			row := logits[i*V : (i+1)*V]
			mx := math.Inf(-1)
			for _, v := range row {
				mx = max(mx, float64(v))
			}
			var s float64
			for _, v := range row {
				s += math.Exp(float64(v) - mx)
			}
			nll -= float64(row[toks[p+i+1]]) - mx - math.Log(s)
		}
	}
	return math.Exp(nll / float64(len(toks)-1))
}

// TestStreamPerplexity: the layer-at-a-time perplexity of a Stream matches a loaded f32 model's
// Forward, for the weights as read (variant 0) and for edited weights (variant 1: every down
// projection halved and the q rows of head 0 negated, applied to the loaded model too).
func TestStreamPerplexity(t *testing.T) {
	path := testenv.Path(t, "stories260K.gguf")
	m := loadStories(t, LoadOptions{WeightType: "f32", Threads: 2})
	toks := m.Tok.Encode(textPrefix(t, "tinystories_valid_first1000.txt", 1500), true, false)
	if len(toks) > 300 {
		toks = toks[:300]
	}
	s, err := OpenStream(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	edit := func(L *Layer) {
		for i := range L.Down.F32 {
			L.Down.F32[i] *= 0.5
		}
		for i := range L.Q.F32[:m.Spec.HeadDim*L.Q.Cols] {
			L.Q.F32[i] = -L.Q.F32[i]
		}
	}
	var seen sync.Map
	got, err := s.Perplexity(context.Background(), toks, 2, 2, func(l int, L *Layer, v int) error {
		seen.Store([2]int{l, v}, true)
		if v == 1 {
			edit(L)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want0 := refPerplexity(t, m, toks)
	for l := range m.W.Layers {
		edit(&m.W.Layers[l])
		for v := range 2 {
			if _, ok := seen.Load([2]int{l, v}); !ok {
				t.Errorf("edit not called for layer %d variant %d", l, v)
			}
		}
	}
	want1 := refPerplexity(t, m, toks)
	t.Logf("%d tokens: stream %v, loaded model %v %v", len(toks), got, want0, want1)
	for i, want := range []float64{want0, want1} {
		if math.Abs(got[i]-want) > 1e-5*want {
			t.Errorf("variant %d: perplexity %v, loaded model %v", i, got[i], want)
		}
	}
	if math.Abs(want0-want1) < 1e-3*want0 {
		t.Errorf("the edit changed nothing (%v, %v)", want0, want1)
	}
	if _, err := s.Perplexity(context.Background(), toks[:1], 1, 2, nil); err == nil {
		t.Error("one token was accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Perplexity(ctx, toks, 1, 2, nil); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("cancelled: %v", err)
	}
}

// releaseRecorder wraps a source and records the rows released per tensor.
type releaseRecorder struct {
	source
	mu  sync.Mutex
	got map[string][]bool
}

func (r *releaseRecorder) release(name string, r0, n int) int {
	r.mu.Lock()
	rows := r.got[name]
	if need := r0 + n; len(rows) < need {
		rows = append(rows, make([]bool, need-len(rows))...)
	}
	for i := r0; i < r0+n; i++ {
		rows[i] = true
	}
	r.got[name] = rows
	r.mu.Unlock()
	return r.source.release(name, r0, n)
}

// TestLoadReleasesSource: Load releases every row of every source tensor it converts, so a
// loaded model does not hold its source's pages besides its own copy.
func TestLoadReleasesSource(t *testing.T) {
	path := testenv.Path(t, "stories260K.gguf")
	for _, wt := range []string{"f32", "f16"} {
		src, err := openSource(path)
		if err != nil {
			t.Fatal(err)
		}
		rec := &releaseRecorder{source: src, got: map[string][]bool{}}
		m, err := load(rec, path, LoadOptions{WeightType: wt, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, ts := range m.Spec.Tensors() {
			rows := 1
			if ts.Matrix {
				rows = ts.Shape[0]
			}
			if got := rec.got[ts.Name]; len(got) != rows || slices.Contains(got, false) {
				t.Errorf("%s: %s: released rows %v of %d", wt, ts.Name, got, rows)
			}
		}
		m.Close()
	}
}
