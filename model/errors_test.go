package model

import (
	"errors"
	"testing"

	"github.com/qsparse/qsparse/internal/tinyhf"
)

// tinyHF writes a 2-layer Llama HF folder (dim 8, ffn 12, SmolLM2's tokenizer) with config.json
// passed through edit, tensors built for tensorSpec, and the tensor named drop left out.
func tinyHF(t *testing.T, edit func(c map[string]any), tensorSpec Spec, drop string) string {
	t.Helper()
	cfg := map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "hidden_size": tensorSpec.Dim,
		"intermediate_size": tensorSpec.FFNDim, "num_hidden_layers": tensorSpec.NLayers,
		"num_attention_heads": tensorSpec.NHeads, "num_key_value_heads": tensorSpec.NKVHeads,
		"vocab_size": tensorSpec.Vocab, "rms_norm_eps": 1e-5, "tie_word_embeddings": true,
	}
	if edit != nil {
		edit(cfg)
	}
	var tensors []tinyhf.Tensor
	for _, ts := range tensorSpec.Tensors() {
		name, ok := CanonicalToHF(ts.Name)
		if !ok {
			t.Fatalf("no HF name for %s", ts.Name)
		}
		if name != drop {
			tensors = append(tensors, tinyhf.Tensor{Name: name, Shape: ts.Shape, Value: func(i int) float32 { return float32(i%7) / 7 }})
		}
	}
	return tinyhf.Write(t, cfg, tensors)
}

// TestHFLoadErrors: each way an HF folder can be wrong is reported with its sentinel.
func TestHFLoadErrors(t *testing.T) {
	good := Spec{Arch: "llama", Dim: 8, NLayers: 2, NHeads: 2, NKVHeads: 1, HeadDim: 4, FFNDim: 12, Vocab: 49152,
		TiedEmbeddings: true}
	m, err := Load(tinyHF(t, nil, good, ""), LoadOptions{})
	if err != nil {
		t.Fatalf("the good folder: %v", err)
	}
	m.Close()
	small := good
	small.Vocab = 100
	for _, c := range []struct {
		name string
		edit func(c map[string]any)
		sp   Spec
		drop string
		want error
	}{
		{"arch", func(c map[string]any) { c["architectures"] = []string{"GPT2LMHeadModel"} }, good, "", ErrUnsupportedArch},
		{"model_type", func(c map[string]any) { delete(c, "architectures"); c["model_type"] = "gpt2" }, good, "", ErrUnsupportedArch},
		{"hidden_act", func(c map[string]any) { c["hidden_act"] = "gelu" }, good, "", ErrUnsupported},
		{"mlp_bias", func(c map[string]any) { c["mlp_bias"] = true }, good, "", ErrUnsupported},
		{"missing tensor", nil, good, "model.layers.1.mlp.up_proj.weight", ErrMissingTensor},
		{"shape", func(c map[string]any) { c["intermediate_size"] = 16 }, good, "", ErrTensorShape},
		{"vocab", nil, small, "", ErrVocabMismatch},
	} {
		_, err := Load(tinyHF(t, c.edit, c.sp, c.drop), LoadOptions{})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: Load error %v, want one wrapping %v", c.name, err, c.want)
		}
	}
}
