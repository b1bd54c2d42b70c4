package convert

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/qsparse/qsparse/gguf"
	"github.com/qsparse/qsparse/internal/tinyhf"
	"github.com/qsparse/qsparse/model"
)

// tinyHF writes a small HF folder with SmolLM2's tokenizer and deterministic pseudo-random F32
// weights: arch "LlamaForCausalLM" (untied LM head) or "Qwen2ForCausalLM" (tied, q/k/v biases).
func tinyHF(t *testing.T, arch string) string {
	t.Helper()
	sp := model.Spec{Dim: 32, NLayers: 2, NHeads: 2, NKVHeads: 1, HeadDim: 16, FFNDim: 96, Vocab: 49152,
		TiedEmbeddings: arch != "LlamaForCausalLM", QKVBias: arch == "Qwen2ForCausalLM"}
	cfg := map[string]any{
		"architectures": []string{arch}, "hidden_size": sp.Dim, "intermediate_size": sp.FFNDim,
		"num_hidden_layers": sp.NLayers, "num_attention_heads": sp.NHeads, "num_key_value_heads": sp.NKVHeads,
		"vocab_size": sp.Vocab, "rms_norm_eps": 1e-5, "tie_word_embeddings": sp.TiedEmbeddings,
		"use_sliding_window": false, "max_position_embeddings": 2048,
	}
	var ts []tinyhf.Tensor
	seed := uint32(1)
	for _, s := range sp.Tensors() {
		name, _ := model.CanonicalToHF(s.Name)
		ts = append(ts, tinyhf.Tensor{Name: name, Shape: s.Shape, Value: func(int) float32 {
			seed = seed*1664525 + 1013904223 // values in file order, as written
			v := (float32(seed>>8)/(1<<24) - 0.5) * 0.2
			if !s.Matrix {
				v += 1
			}
			return v
		}})
	}
	return tinyhf.Write(t, cfg, ts)
}

// refWrite converts path to format the way convert did before it streamed: the whole model
// loaded (f32 for gguf-f32, gguf-q8_0 and ternary, else f16), ternarized in memory, and written
// from the loaded weights.
func refWrite(t *testing.T, path, format, out string) *ternaryResult {
	t.Helper()
	wt := "f16"
	switch format {
	case FormatGGUFF32, FormatGGUFQ8_0, FormatTernary:
		wt = "f32"
	}
	m := load(t, path, wt)
	general, tok, err := sourceMeta(path, &m.Spec, m.ChatTemplate)
	if err != nil {
		t.Fatal(err)
	}
	var kv []gguf.KV
	var tensors []gguf.StreamTensor
	var align uint64
	var tern *ternaryResult
	switch format {
	case FormatFP16, FormatTernary:
		if format == FormatTernary {
			if tern, err = ternarize(context.Background(), m, false, sampleText); err != nil {
				t.Fatal(err)
			}
		}
		if kv, err = packKV(&m.Spec, general, tok, nil, Options{}, tern); err != nil {
			t.Fatal(err)
		}
		tensors, err = packTensors(modelSource{m}, &m.Spec, tern)
		align = PackAlignment
	default:
		kv, tensors, err = exportFile(modelSource{m}, &m.Spec, general, tok, format)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := gguf.WriteFileParallel(context.Background(), out, kv, tensors, align, gguf.ParallelOptions{}); err != nil {
		t.Fatal(err)
	}
	return tern
}

// sourceTensorBytes is the data of the tensors a conversion reads (the Spec's, and rope_freqs).
func sourceTensorBytes(t *testing.T, path string) int64 {
	t.Helper()
	info, err := model.Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{model.NameRopeFreqs: true}
	for _, ts := range info.Spec.Tensors() {
		want[ts.Name] = true
	}
	var n int64
	for _, d := range info.Tensors {
		name := d.Name
		if c, ok := model.HFToCanonical(name); ok {
			name = c
		}
		if want[name] && !(name == model.NameOutput && info.Spec.TiedEmbeddings) {
			n += d.Bytes
		}
	}
	return n
}

// TestStreamMatchesReference: converting from the source tensor by tensor (Run) writes exactly
// the bytes the load-everything path writes, for every format, from a llama.cpp GGUF (q/k rows
// permuted) and HF folders (untied llama; qwen2 with biases), and reads every source byte once
// (ternary: the same packs, and perplexities within float rounding).
func TestStreamMatchesReference(t *testing.T) {
	srcs := map[string]string{"gguf": stories(t), "hf-llama": tinyHF(t, "LlamaForCausalLM"), "hf-qwen2": tinyHF(t, "Qwen2ForCausalLM")}
	for kind, src := range srcs {
		total := sourceTensorBytes(t, src)
		for _, format := range Formats {
			t.Run(kind+"/"+format, func(t *testing.T) {
				dir := t.TempDir()
				got, want := filepath.Join(dir, "stream.gguf"), filepath.Join(dir, "ref.gguf")
				res := run(t, Options{Model: src, Format: format, Out: got, Threads: 2})
				tern := refWrite(t, src, format, want)
				if format != FormatTernary {
					a, _ := os.ReadFile(got)
					b, _ := os.ReadFile(want)
					if string(a) != string(b) {
						t.Fatalf("the streamed file (%d bytes) differs from the reference (%d bytes)", len(a), len(b))
					}
					if res.SourceBytes != total {
						t.Errorf("read %d source tensor bytes, want %d (each once)", res.SourceBytes, total)
					}
					return
				}
				fa, fb := openGGUF(t, got), openGGUF(t, want)
				if len(fa.Tensors) != len(fb.Tensors) {
					t.Fatalf("%d tensors, reference %d", len(fa.Tensors), len(fb.Tensors))
				}
				for i, ta := range fa.Tensors {
					tb := fb.Tensors[i]
					if ta.Name != tb.Name || ta.Type != tb.Type || !slices.Equal(ta.Shape, tb.Shape) || string(ta.Data) != string(tb.Data) {
						t.Fatalf("tensor %s differs from the reference's %s", ta.Name, tb.Name)
					}
				}
				if math.Abs(res.SourcePPL-tern.sourcePPL) > 1e-5*tern.sourcePPL || math.Abs(res.TernaryPPL-tern.ternaryPPL) > 1e-5*tern.ternaryPPL ||
					res.Exact != tern.exact || res.Matrices != len(tern.packs) {
					t.Errorf("streamed PPL %v -> %v, exact %d/%d; reference %v -> %v, %d/%d", res.SourcePPL, res.TernaryPPL, res.Exact, res.Matrices,
						tern.sourcePPL, tern.ternaryPPL, tern.exact, len(tern.packs))
				}
				t.Logf("check-text PPL %.6g -> %.6g (reference %.6g -> %.6g)", res.SourcePPL, res.TernaryPPL, tern.sourcePPL, tern.ternaryPPL)
			})
		}
	}
}

// TestConvertPack: a qsparse pack converts too (its site matrices are read column-major): to
// gguf-f16 as its own source does, and back to fp16 as the same pack.
func TestConvertPack(t *testing.T) {
	src := stories(t)
	dir := t.TempDir()
	pack := filepath.Join(dir, "p.gguf")
	run(t, Options{Model: src, Format: FormatFP16, Out: pack})
	for _, c := range []struct{ format, want string }{{FormatGGUFF16, ""}, {FormatFP16, pack}} {
		want := c.want
		if want == "" {
			want = filepath.Join(dir, "direct.gguf")
			run(t, Options{Model: src, Format: c.format, Out: want})
		}
		got := filepath.Join(dir, "from-pack-"+c.format+".gguf")
		run(t, Options{Model: pack, Format: c.format, Out: got})
		fa, fb := openGGUF(t, got), openGGUF(t, want)
		if len(fa.Tensors) != len(fb.Tensors) {
			t.Fatalf("%s: %d tensors, want %d", c.format, len(fa.Tensors), len(fb.Tensors))
		}
		for _, tb := range fb.Tensors {
			ta, ok := fa.Tensor(tb.Name)
			if !ok || ta.Type != tb.Type || !slices.Equal(ta.Shape, tb.Shape) || string(ta.Data) != string(tb.Data) {
				t.Errorf("%s from the pack: tensor %s differs", c.format, tb.Name)
			}
		}
	}
}
