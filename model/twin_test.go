package model

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/qsparse/qsparse/gguf"
	"github.com/qsparse/qsparse/internal/testenv"
	"github.com/qsparse/qsparse/safetensors"
)

// refLogits is the slow, obvious twin of the forward pass: float64 throughout, one token at a
// time, reading the raw tensors of a GGUF file. For arch llama the q/k rows stay in the file's
// permuted layout and RoPE rotates adjacent pairs (2i, 2i+1), as llama.cpp runs it; for qwen2
// RoPE rotates (i, i+hd/2). Agreement with Forward therefore also checks the un-permute.
func refLogits(t testing.TB, path string, toks []int) [][]float64 {
	t.Helper()
	info, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	sp := info.Spec
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	get := func(name string) []float64 {
		ti, ok := f.Tensor(name)
		if !ok {
			t.Fatalf("%s missing", name)
		}
		w := make([]float32, ti.NumElements())
		if err := ti.Dequantize(w); err != nil {
			t.Fatal(err)
		}
		out := make([]float64, len(w))
		for i, v := range w {
			out[i] = float64(v)
		}
		return out
	}
	matvec := func(w, x []float64) []float64 {
		y := make([]float64, len(w)/len(x))
		for r := range y {
			for c, xc := range x {
				y[r] += w[r*len(x)+c] * xc
			}
		}
		return y
	}
	norm := func(x, w []float64) []float64 {
		var ss float64
		for _, v := range x {
			ss += v * v
		}
		s := 1 / math.Sqrt(ss/float64(len(x))+sp.NormEps)
		y := make([]float64, len(x))
		for i := range x {
			y[i] = x[i] * s * w[i]
		}
		return y
	}
	hd, interleaved := sp.HeadDim, sp.Arch == "llama"
	rope := func(v []float64, pos int) {
		for h := 0; h < len(v)/hd; h++ {
			for i := 0; i < hd/2; i++ {
				th := float64(pos) * math.Pow(sp.RopeTheta, -float64(2*i)/float64(hd))
				a, b := h*hd+i, h*hd+i+hd/2
				if interleaved {
					a, b = h*hd+2*i, h*hd+2*i+1
				}
				x0, x1 := v[a], v[b]
				v[a] = x0*math.Cos(th) - x1*math.Sin(th)
				v[b] = x0*math.Sin(th) + x1*math.Cos(th)
			}
		}
	}
	embd := get(NameTokEmbd)
	head := embd
	if !sp.TiedEmbeddings {
		head = get(NameOutput)
	}
	type layer struct{ an, q, k, v, o, fn, g, u, d, bq, bk, bv []float64 }
	L := make([]layer, sp.NLayers)
	for l := range L {
		n := func(s string) []float64 { return get(LayerName(l, s)) }
		L[l] = layer{an: n(AttnNorm), q: n(AttnQ), k: n(AttnK), v: n(AttnV), o: n(AttnOutput), fn: n(FFNNorm),
			g: n(FFNGate), u: n(FFNUp), d: n(FFNDown)}
		if sp.QKVBias {
			L[l].bq, L[l].bk, L[l].bv = n(AttnQBias), n(AttnKBias), n(AttnVBias)
		}
	}
	outNorm := get(NameOutputNorm)
	kc := make([][][]float64, sp.NLayers) // [layer][pos][kvdim]
	vc := make([][][]float64, sp.NLayers)
	var out [][]float64
	for pos, tok := range toks {
		x := append([]float64(nil), embd[tok*sp.Dim:(tok+1)*sp.Dim]...)
		for l := range L {
			w := &L[l]
			xn := norm(x, w.an)
			q, k, v := matvec(w.q, xn), matvec(w.k, xn), matvec(w.v, xn)
			for i := range w.bq {
				q[i] += w.bq[i]
			}
			for i := range w.bk {
				k[i] += w.bk[i]
				v[i] += w.bv[i]
			}
			rope(q, pos)
			rope(k, pos)
			kc[l], vc[l] = append(kc[l], k), append(vc[l], v)
			att := make([]float64, sp.NHeads*hd)
			for h := range sp.NHeads {
				kh := h / (sp.NHeads / sp.NKVHeads)
				sc := make([]float64, pos+1)
				mx := math.Inf(-1)
				for j := range sc {
					for i := range hd {
						sc[j] += q[h*hd+i] * kc[l][j][kh*hd+i]
					}
					sc[j] /= math.Sqrt(float64(hd))
					mx = max(mx, sc[j])
				}
				var sum float64
				for j := range sc {
					sc[j] = math.Exp(sc[j] - mx)
					sum += sc[j]
				}
				for j := range sc {
					for i := range hd {
						att[h*hd+i] += sc[j] / sum * vc[l][j][kh*hd+i]
					}
				}
			}
			o := matvec(w.o, att)
			for i := range x {
				x[i] += o[i]
			}
			xn = norm(x, w.fn)
			g, u := matvec(w.g, xn), matvec(w.u, xn)
			for i := range g {
				g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
			}
			d := matvec(w.d, g)
			for i := range x {
				x[i] += d[i]
			}
		}
		out = append(out, matvec(head, norm(x, outNorm)))
	}
	return out
}

func checkAgainstTwin(t *testing.T, path string, toks []int) {
	t.Helper()
	m, err := Load(path, LoadOptions{WeightType: "f32"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	V := m.Spec.Vocab
	got := make([]float32, len(toks)*V)
	if err := m.NewState(64).Forward(toks, 0, got); err != nil {
		t.Fatal(err)
	}
	want := refLogits(t, path, toks)
	for p := range toks {
		w32 := make([]float32, V)
		for i, v := range want[p] {
			w32[i] = float32(v)
		}
		compareLogits(t, got[p*V:(p+1)*V], w32, 1e-4, p)
	}
}

func TestTwinStories(t *testing.T) {
	toks := []int{1, 403, 407, 261, 378, 350, 263, 289, 285, 311, 391, 260, 284, 430, 258, 283}
	checkAgainstTwin(t, testenv.Path(t, "stories260K.gguf"), toks)
}

// TestTwinQwen2 writes stories260K as a qwen2 GGUF (q/k rows in rotate-half layout, random
// q/k/v biases) and checks Load + Forward against the twin.
func TestTwinQwen2(t *testing.T) {
	src := testenv.Path(t, "stories260K.gguf")
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var kv []gguf.KV
	for _, e := range f.KV {
		switch {
		case e.Key == "general.architecture":
			kv = append(kv, gguf.String(e.Key, "qwen2"))
		case strings.HasPrefix(e.Key, "llama."):
			kv = append(kv, gguf.KV{Key: "qwen2." + strings.TrimPrefix(e.Key, "llama."), Value: e.Value})
		default:
			kv = append(kv, e)
		}
	}
	hd := 8
	r := rand.New(rand.NewPCG(5, 6))
	f32bytes := func(w []float32) []byte {
		b := make([]byte, 4*len(w))
		for i, v := range w {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		return b
	}
	var tensors []gguf.WriteTensor
	for _, ti := range f.Tensors {
		w := make([]float32, ti.NumElements())
		if err := ti.Dequantize(w); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(ti.Name, AttnQ) || strings.HasSuffix(ti.Name, AttnK) {
			w = unpermuteRows(w, int(ti.Shape[0]), hd)
		}
		tensors = append(tensors, gguf.WriteTensor{Name: ti.Name, Type: gguf.F32, Shape: ti.Shape, Data: f32bytes(w)})
		if suffix, ok := map[string]string{AttnQ: AttnQBias, AttnK: AttnKBias, AttnV: AttnVBias}[ti.Name[strings.Index(ti.Name[4:], ".")+5:]]; ok {
			b := make([]float32, ti.Shape[1])
			for i := range b {
				b[i] = float32(r.NormFloat64() * 0.3)
			}
			name := strings.TrimSuffix(ti.Name, ti.Name[strings.Index(ti.Name[4:], ".")+5:]) + suffix
			tensors = append(tensors, gguf.WriteTensor{Name: name, Type: gguf.F32, Shape: []uint64{ti.Shape[1]}, Data: f32bytes(b)})
		}
	}
	path := filepath.Join(t.TempDir(), "qwen2.gguf")
	if err := gguf.WriteFile(path, kv, tensors, 0); err != nil {
		t.Fatal(err)
	}
	info, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Spec.Arch != "qwen2" || !info.Spec.QKVBias {
		t.Fatalf("spec %+v", info.Spec)
	}
	checkAgainstTwin(t, path, []int{1, 403, 407, 261, 378, 350, 263, 289, 285, 311})
}

// rewriteStories writes stories260K.gguf with its KV passed through edit (return false to drop
// a key) and extra appended, to a temp file.
func rewriteStories(t *testing.T, edit func(e *gguf.KV) bool, extra ...gguf.KV) string {
	t.Helper()
	f, err := gguf.Open(testenv.Path(t, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var kv []gguf.KV
	for _, e := range f.KV {
		if edit(&e) {
			kv = append(kv, e)
		}
	}
	kv = append(kv, extra...)
	var tensors []gguf.WriteTensor
	for _, ti := range f.Tensors {
		tensors = append(tensors, gguf.WriteTensor{Name: ti.Name, Type: ti.Type, Shape: ti.Shape, Data: ti.Data})
	}
	path := filepath.Join(t.TempDir(), "edited.gguf")
	if err := gguf.WriteFile(path, kv, tensors, 0); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadErrors(t *testing.T) {
	keepAll := func(*gguf.KV) bool { return true }
	for _, c := range []struct {
		name string
		edit func(e *gguf.KV) bool
		want string
		is   error
	}{
		{"arch", func(e *gguf.KV) bool {
			if e.Key == "general.architecture" {
				*e = gguf.String(e.Key, "gpt2")
			}
			return true
		}, `architecture "gpt2" is not supported`, ErrUnsupportedArch},
		{"no tokenizer", func(e *gguf.KV) bool { return !strings.HasPrefix(e.Key, "tokenizer.") }, "no tokenizer metadata", ErrNoTokenizer},
		{"no layers key", func(e *gguf.KV) bool { return e.Key != "llama.block_count" }, "key llama.block_count missing", ErrBadSpec},
		{"wrong ffn", func(e *gguf.KV) bool {
			if e.Key == "llama.feed_forward_length" {
				*e = gguf.Uint32(e.Key, 200)
			}
			return true
		}, "tensor blk.0.ffn_gate.weight has shape [172 64], want [200 64]", ErrTensorShape},
		{"kv heads", func(e *gguf.KV) bool {
			if e.Key == "llama.attention.head_count_kv" {
				*e = gguf.Uint32(e.Key, 3)
			}
			return true
		}, "not a multiple of KV head count 3", ErrBadSpec},
		{"partial rope", func(e *gguf.KV) bool {
			if e.Key == "llama.rope.dimension_count" {
				*e = gguf.Uint32(e.Key, 4)
			}
			return true
		}, "partial RoPE", ErrUnsupported},
		{"rope scaling", keepAll, `rope scaling type "yarn" is not supported`, ErrUnsupported},
		{"vocab", func(e *gguf.KV) bool {
			switch e.Key {
			case "tokenizer.ggml.tokens":
				v, _ := e.Value.Strings()
				*e = gguf.Strings(e.Key, v[:400])
			case "tokenizer.ggml.scores":
				v, _ := e.Value.Float32s()
				*e = gguf.Float32Array(e.Key, v[:400])
			case "tokenizer.ggml.token_type":
				v, _ := e.Value.Int32s()
				*e = gguf.Int32Array(e.Key, v[:400])
			}
			return true
		}, "tensor token_embd.weight has shape [512 64], want [400 64]", ErrTensorShape},
	} {
		var extra []gguf.KV
		switch c.name {
		case "rope scaling":
			extra = append(extra, gguf.String("llama.rope.scaling.type", "yarn"), gguf.Float32("llama.rope.scaling.factor", 2))
		}
		path := rewriteStories(t, c.edit, extra...)
		_, err := Load(path, LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, c.is) {
			t.Errorf("%s: Load error %v, want %q wrapping %v", c.name, err, c.want, c.is)
		}
	}
}

// TestF16Source checks that an F16 GGUF loads (bits copied) to the same weights and logits as
// the F32 GGUF converted at load.
func TestF16Source(t *testing.T) {
	f, err := gguf.Open(testenv.Path(t, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var tensors []gguf.WriteTensor
	for _, ti := range f.Tensors {
		wt := gguf.WriteTensor{Name: ti.Name, Type: ti.Type, Shape: ti.Shape, Data: ti.Data}
		if len(ti.Shape) == 2 {
			w := make([]float32, ti.NumElements())
			if err := ti.Dequantize(w); err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 2*len(w))
			for i, v := range w {
				binary.LittleEndian.PutUint16(b[2*i:], gguf.F32ToF16(v))
			}
			wt.Type, wt.Data = gguf.F16, b
		}
		tensors = append(tensors, wt)
	}
	path := filepath.Join(t.TempDir(), "f16.gguf")
	if err := gguf.WriteFile(path, f.KV, tensors, 0); err != nil {
		t.Fatal(err)
	}
	a := loadStories(t, LoadOptions{WeightType: "f16"})
	b, err := Load(path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.WeightType != "f16" {
		t.Fatalf("auto weight type of an F16 GGUF = %s", b.WeightType)
	}
	for _, ts := range a.Spec.Tensors() {
		if ts.Matrix && !slices.Equal(a.W.Matrix(ts.Name).F16, b.W.Matrix(ts.Name).F16) {
			t.Fatalf("%s differs", ts.Name)
		}
	}
}

func TestHFSourceF16Rows(t *testing.T) {
	// 4 rows of 3 fp16 values 0..11: f16Rows and rows agree, and convert un-permutes both ways.
	data := make([]byte, 24)
	for i := range 12 {
		binary.LittleEndian.PutUint16(data[2*i:], gguf.F32ToF16(float32(i)))
	}
	src := &hfSource{byName: map[string]safetensors.Tensor{"w": {Name: "w", DType: safetensors.F16, Shape: []int{4, 3}, Data: data}}}
	raw, ok := src.f16Rows("w", 1, 2)
	if !ok || len(raw) != 12 || binary.LittleEndian.Uint16(raw) != gguf.F32ToF16(3) {
		t.Fatalf("f16Rows = %v, %v", raw, ok)
	}
	f32 := make([]float32, 6)
	if err := src.rows("w", f32, 1, 2); err != nil || f32[0] != 3 || f32[5] != 8 {
		t.Fatalf("rows = %v, %v", f32, err)
	}
	for _, perm := range []bool{false, true} {
		m16 := &Matrix{Rows: 4, Cols: 3, F16: make([]uint16, 12)}
		m32 := &Matrix{Rows: 4, Cols: 3, F32: make([]float32, 12)}
		buf := make([]float32, 12)
		for _, m := range []*Matrix{m16, m32} {
			if err := convert(src, &convJob{"w", m, 0, 4, perm}, buf, 4); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 12 {
			if gguf.F16ToF32(m16.F16[i]) != m32.F32[i] {
				t.Fatalf("permute %v: element %d: f16 %v f32 %v", perm, i, gguf.F16ToF32(m16.F16[i]), m32.F32[i])
			}
		}
		if perm && m32.F32[3] != 6 { // HF row 1 = GGUF row 2 (head dim 4)
			t.Fatalf("permuted: %v", m32.F32)
		}
	}
}
