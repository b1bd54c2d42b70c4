package model

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/qsparse/qsparse/gguf"
	"github.com/qsparse/qsparse/internal/testenv"
	"github.com/qsparse/qsparse/safetensors"
)

func TestSmolLM2Inspect(t *testing.T) {
	info, err := Inspect(testenv.SmolLM2Path(t))
	if err != nil {
		t.Fatal(err)
	}
	s := info.Spec
	if s.Arch != "llama" || s.NLayers != 30 || s.Dim != 576 || s.NHeads != 9 || s.NKVHeads != 3 || s.HeadDim != 64 ||
		s.FFNDim != 1536 || s.Vocab != 49152 || !s.TiedEmbeddings || s.QKVBias || s.RopeTheta != 100000 || s.NormEps != 1e-5 {
		t.Errorf("spec %+v", s)
	}
	if info.Tokenizer != "gpt2" || info.VocabSize != 49152 || !info.HasChatTemplate {
		t.Errorf("tokenizer %q, vocab %d, chat template %v", info.Tokenizer, info.VocabSize, info.HasChatTemplate)
	}
	if info.Params < 130e6 || info.Params > 140e6 {
		t.Errorf("params %d, want ~135M", info.Params)
	}
	// F16 compute: 30 layers × (q 576² + k,v 2×192×576 + o 576² + 3×1536×576) + tied head 49152×576, ×2 bytes
	// plus F32 norms.
	mat := int64(30*(576*576+2*192*576+576*576+3*1536*576) + 49152*576)
	norms := int64(30*2*576 + 576)
	if want := mat*2 + norms*4; info.DenseBytesPerToken != want {
		t.Errorf("DenseBytesPerToken %d, want %d", info.DenseBytesPerToken, want)
	}
	t.Logf("%s: %s, %d params, %d tensors, dense bytes/token %d", info.Path, info.FileType, info.Params, len(info.Tensors), info.DenseBytesPerToken)
}

func TestSmolLM2Greedy(t *testing.T) {
	m, err := Load(testenv.SmolLM2Path(t), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.WeightType != "f16" {
		t.Errorf("auto weight type of a Q4_1 GGUF = %s, want f16", m.WeightType)
	}
	if info, err := Inspect(m.Path); err != nil || info.DenseBytesPerToken != m.DenseBytesPerToken() {
		t.Errorf("Inspect DenseBytesPerToken %d, loaded model %d (%v)", info.DenseBytesPerToken, m.DenseBytesPerToken(), err)
	}
	if m.ChatTemplate == "" || !strings.Contains(m.ChatTemplate, "<|im_start|>") {
		t.Errorf("chat template %q", m.ChatTemplate)
	}
	prompt := m.Tok.Encode("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n", false, true)
	// Batched prefill (GEMM) against token-by-token decode (GEMV).
	V := m.Spec.Vocab
	batched := make([]float32, len(prompt)*V)
	if err := m.NewState(64).Forward(prompt, 0, batched); err != nil {
		t.Fatal(err)
	}
	st, one := m.NewState(64), make([]float32, V)
	for i, tok := range prompt {
		if err := st.Forward([]int{tok}, i, one); err != nil {
			t.Fatal(err)
		}
		compareLogits(t, batched[i*V:(i+1)*V], one, 1e-4, i)
	}
	ids := greedy(t, m, prompt, 16)
	text := m.Tok.Decode(ids[len(prompt):])
	t.Logf("greedy: %q", text)
	if !strings.Contains(text, "Paris") {
		t.Errorf("SmolLM2 does not know the capital of France: %q", text)
	}
}

// hfTensors dequantizes the GGUF's weights into HF names and the HF (rotate-half) q/k row layout,
// F32, as a Hugging Face checkpoint of the same model would hold them.
func hfTensors(t testing.TB, path string, sp *Spec) []safetensors.Tensor {
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []safetensors.Tensor
	for _, ts := range sp.Tensors() {
		ti, ok := f.Tensor(ts.Name)
		if !ok {
			t.Fatalf("%s missing", ts.Name)
		}
		w := make([]float32, ti.NumElements())
		if err := ti.Dequantize(w); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(ts.Name, AttnQ) || strings.HasSuffix(ts.Name, AttnK) {
			w = unpermuteRows(w, ts.Shape[1], sp.HeadDim)
		}
		name, ok := CanonicalToHF(ts.Name)
		if !ok {
			t.Fatalf("no HF name for %s", ts.Name)
		}
		b := make([]byte, 4*len(w))
		for i, v := range w {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		out = append(out, safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: slices.Clone(ts.Shape), Data: b})
	}
	return out
}

// memTempDir returns a temporary folder in /dev/shm when there is one (fsync of the big test
// checkpoints on a disk costs tens of seconds), else t.TempDir().
func memTempDir(t testing.TB) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "qsparse-model-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

func hfFolder(t testing.TB) string {
	dir := memTempDir(t)
	for _, name := range []string{"config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"} {
		b, err := os.ReadFile(testenv.Path(t, filepath.Join("smollm2-hf", name)))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestSmolLM2HF writes the GGUF's weights as an HF folder (one file, and 3 shards) and checks
// that both load to the same Spec, identical float32 weights and identical logits.
func TestSmolLM2HF(t *testing.T) {
	if testing.Short() {
		t.Skip("writes two 540 MB checkpoints")
	}
	path := testenv.SmolLM2Path(t)
	ref, err := Load(path, LoadOptions{WeightType: "f32"})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	tensors := hfTensors(t, path, &ref.Spec)

	single := hfFolder(t)
	if err := safetensors.WriteFile(filepath.Join(single, "model.safetensors"), tensors, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	sharded := hfFolder(t)
	var total int64
	for _, ts := range tensors {
		total += int64(len(ts.Data))
	}
	if err := safetensors.WriteSharded(sharded, tensors, total/3+1); err != nil {
		t.Fatal(err)
	}
	shards, _ := filepath.Glob(filepath.Join(sharded, "model-*.safetensors"))
	if len(shards) < 2 {
		t.Fatalf("%d shards written", len(shards))
	}
	tensors = nil

	toks := ref.Tok.Encode("The year 2026 had 365 days. Hello, world!", true, false)
	refLogits := make([]float32, len(toks)*ref.Spec.Vocab)
	if err := ref.NewState(64).Forward(toks, 0, refLogits); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{single, sharded} {
		info, err := Inspect(dir)
		if err != nil {
			t.Fatal(err)
		}
		if info.Format != "safetensors" || info.Tokenizer != "gpt2" || info.VocabSize != 49152 || !info.HasChatTemplate {
			t.Errorf("%s: info %+v", dir, info)
		}
		m, err := Load(dir, LoadOptions{WeightType: "f32"})
		if err != nil {
			t.Fatal(err)
		}
		a, b := ref.Spec, m.Spec
		a.Name, b.Name = "", ""
		if a != b {
			t.Errorf("%s: spec\n%+v\nwant\n%+v", dir, b, a)
		}
		if m.ChatTemplate != ref.ChatTemplate {
			t.Errorf("%s: chat template differs", dir)
		}
		for _, ts := range ref.Spec.Tensors() {
			if ts.Matrix {
				if !slices.Equal(m.W.Matrix(ts.Name).F32, ref.W.Matrix(ts.Name).F32) {
					t.Fatalf("%s: %s differs", dir, ts.Name)
				}
			}
		}
		for l := range ref.W.Layers {
			if !slices.Equal(m.W.Layers[l].AttnNorm, ref.W.Layers[l].AttnNorm) || !slices.Equal(m.W.Layers[l].FFNNorm, ref.W.Layers[l].FFNNorm) {
				t.Fatalf("%s: layer %d norms differ", dir, l)
			}
		}
		if got := m.Tok.Encode("The year 2026 had 365 days. Hello, world!", true, false); !slices.Equal(got, toks) {
			t.Errorf("%s: HF tokenizer gives %v, GGUF tokenizer %v", dir, got, toks)
		}
		logits := make([]float32, len(refLogits))
		if err := m.NewState(64).Forward(toks, 0, logits); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(logits, refLogits) {
			t.Errorf("%s: logits differ from the GGUF's", dir)
		}
		m.Close()
	}
}

func BenchmarkLoadSmolLM2(b *testing.B) {
	path := testenv.SmolLM2Path(b)
	for b.Loop() {
		m, err := Load(path, LoadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}

func BenchmarkDecodeSmolLM2(b *testing.B) {
	for _, wt := range []string{"f16", "f32"} {
		b.Run(wt, func(b *testing.B) {
			m, err := Load(testenv.SmolLM2Path(b), LoadOptions{WeightType: wt})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			st := m.NewState(256)
			logits := make([]float32, m.Spec.Vocab)
			tok, pos := 1, 0
			start := time.Now()
			for b.Loop() {
				if pos == 256 {
					pos = 0
				}
				if err := st.Forward([]int{tok}, pos, logits); err != nil {
					b.Fatal(err)
				}
				tok = Argmax(logits)
				pos++
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tok/s")
			b.SetBytes(m.DenseBytesPerToken())
		})
	}
}

func BenchmarkPrefillSmolLM2(b *testing.B) {
	m, err := Load(testenv.SmolLM2Path(b), LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	st := m.NewState(256)
	toks := make([]int, 256)
	for i := range toks {
		toks[i] = 100 + i
	}
	logits := make([]float32, m.Spec.Vocab)
	start := time.Now()
	for b.Loop() {
		if err := st.Forward(toks, 0, logits); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(toks))/time.Since(start).Seconds(), "tok/s")
}
