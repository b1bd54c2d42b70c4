package safetensors

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
)

func TestParseConfigSmolLM2(t *testing.T) {
	b, err := os.ReadFile(testenv.Path(t, "smollm2-hf/config.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("ModelType", c.ModelType, "llama")
	check("HiddenSize", c.HiddenSize, 576)
	check("NumHiddenLayers", c.NumHiddenLayers, 30)
	check("NumAttentionHeads", c.NumAttentionHeads, 9)
	check("NumKeyValueHeads", c.NumKeyValueHeads, 3)
	check("HeadDim", c.HeadDim, 64)
	check("IntermediateSize", c.IntermediateSize, 1536)
	check("VocabSize", c.VocabSize, 49152)
	check("MaxPositionEmbeddings", c.MaxPositionEmbeddings, 8192)
	check("TieWordEmbeddings", c.TieWordEmbeddings, true)
	check("RopeTheta", c.RopeTheta, 100000.0)
	check("RMSNormEps", c.RMSNormEps, 1e-5)
	check("RopeScaling nil", c.RopeScaling == nil, true)
	check("AttentionBias", c.AttentionBias, false)
	check("MLPBias", c.MLPBias, false)
	check("BOSTokenID", c.BOSTokenID, 1)
	check("EOSTokenIDs", slices.Equal(c.EOSTokenIDs, []int{2}), true)
	check("PadTokenID", c.PadTokenID, 2)
	check("HiddenAct", c.HiddenAct, "silu")
	check("TorchDType", c.TorchDType, "bfloat16")
	check("UseSlidingWindow", c.UseSlidingWindow, false)
	if _, ok := c.Raw["rope_interleaved"]; !ok {
		t.Error("Raw misses rope_interleaved")
	}
}

// Qwen2.5-0.5B-Instruct's config.json.
const qwen2Config = `{
  "architectures": ["Qwen2ForCausalLM"],
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151645,
  "hidden_act": "silu",
  "hidden_size": 896,
  "initializer_range": 0.02,
  "intermediate_size": 4864,
  "max_position_embeddings": 32768,
  "max_window_layers": 21,
  "model_type": "qwen2",
  "num_attention_heads": 14,
  "num_hidden_layers": 24,
  "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06,
  "rope_theta": 1000000.0,
  "sliding_window": 32768,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.43.1",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
}`

// Llama-3.2-1B-Instruct's config.json.
const llama32Config = `{
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": [128001, 128008, 128009],
  "head_dim": 64,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 8192,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 16,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 32.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.45.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
}`

// Mistral-7B-Instruct-v0.1's config.json.
const mistralConfig = `{
  "architectures": ["MistralForCausalLM"],
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 32768,
  "model_type": "mistral",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05,
  "rope_theta": 10000.0,
  "sliding_window": 4096,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.34.0.dev0",
  "use_cache": true,
  "vocab_size": 32000
}`

func TestParseConfigQwen2(t *testing.T) {
	c, err := ParseConfig([]byte(qwen2Config))
	if err != nil {
		t.Fatal(err)
	}
	if c.HiddenSize != 896 || c.HeadDim != 64 || c.NumKeyValueHeads != 2 ||
		c.NumAttentionHeads != 14 || c.VocabSize != 151936 || c.RopeTheta != 1e6 || c.RMSNormEps != 1e-6 ||
		c.AttentionBias || !c.TieWordEmbeddings || c.UseSlidingWindow || c.SlidingWindow != 32768 ||
		c.MaxWindowLayers != 21 || c.BOSTokenID != 151643 || !slices.Equal(c.EOSTokenIDs, []int{151645}) ||
		c.RopeScaling != nil {
		t.Errorf("Qwen2 config parsed as %+v", c)
	}
}

func TestParseConfigLlama3RopeScaling(t *testing.T) {
	c, err := ParseConfig([]byte(llama32Config))
	if err != nil {
		t.Fatal(err)
	}
	rs := c.RopeScaling
	if rs == nil || rs.Type != "llama3" || rs.Factor != 32 || rs.LowFreqFactor != 1 || rs.HighFreqFactor != 4 ||
		rs.OriginalMaxPositionEmbeddings != 8192 {
		t.Errorf("rope_scaling parsed as %+v", rs)
	}
	if c.RopeTheta != 500000 || c.HeadDim != 64 || !slices.Equal(c.EOSTokenIDs, []int{128001, 128008, 128009}) ||
		c.BOSTokenID != 128000 || c.MaxPositionEmbeddings != 131072 || c.AttentionBias {
		t.Errorf("Llama 3.2 config parsed as %+v", c)
	}
	// Older spelling "type", and the newer rope_parameters form.
	old := strings.Replace(llama32Config, `"rope_type": "llama3"`, `"type": "llama3"`, 1)
	if c, err := ParseConfig([]byte(old)); err != nil || c.RopeScaling == nil || c.RopeScaling.Type != "llama3" {
		t.Errorf("rope_scaling with \"type\": %+v, %v", c, err)
	}
	v5 := `{"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,
"num_attention_heads":4,"vocab_size":100,"dtype":"float16","rope_parameters":{"rope_type":"linear","factor":2.0,"rope_theta":50000}}`
	c, err = ParseConfig([]byte(v5))
	if err != nil || c.RopeTheta != 50000 || c.RopeScaling == nil || c.RopeScaling.Type != "linear" ||
		c.RopeScaling.Factor != 2 || c.TorchDType != "float16" || c.NumKeyValueHeads != 4 || c.HeadDim != 16 {
		t.Errorf("rope_parameters config: %+v, %v", c, err)
	}
	v5def := strings.Replace(v5, `"rope_type":"linear","factor":2.0,`, `"rope_type":"default",`, 1)
	if c, err := ParseConfig([]byte(v5def)); err != nil || c.RopeScaling != nil || c.RopeTheta != 50000 {
		t.Errorf("rope_parameters default: %+v, %v", c, err)
	}
}

func TestParseConfigMistral(t *testing.T) {
	c, err := ParseConfig([]byte(mistralConfig))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Architectures, []string{"MistralForCausalLM"}) || c.UseSlidingWindow || c.SlidingWindow != 4096 || c.HeadDim != 128 ||
		c.TieWordEmbeddings || c.RopeTheta != 10000 {
		t.Errorf("Mistral config parsed as %+v", c)
	}
	noWin := strings.Replace(mistralConfig, `"sliding_window": 4096`, `"sliding_window": null`, 1)
	if c, err := ParseConfig([]byte(noWin)); err != nil || c.UseSlidingWindow || c.SlidingWindow != 0 {
		t.Errorf("sliding_window null: %+v, %v", c, err)
	}
}

// TestParseConfigAsWritten: ParseConfig fills only the defaults that do not depend on the
// architecture; the others stay zero (model fills them), and Written/Present tell absent from null.
func TestParseConfigAsWritten(t *testing.T) {
	c, err := ParseConfig([]byte(`{"model_type":"gpt2","hidden_size":64,"intermediate_size":128,
		"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100,"rope_theta":100000,"bos_token_id":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.ModelType != "gpt2" || c.NumKeyValueHeads != 4 || c.HeadDim != 16 || c.RopeTheta != 100000 ||
		c.RMSNormEps != 0 || c.TieWordEmbeddings || c.HiddenAct != "silu" || c.MaxPositionEmbeddings != 0 ||
		c.BOSTokenID != -1 || len(c.EOSTokenIDs) != 0 || c.PadTokenID != -1 || c.SlidingWindow != 0 {
		t.Errorf("as written: %+v", c)
	}
	if !c.Written("bos_token_id") || c.Present("bos_token_id") || c.Written("eos_token_id") || !c.Present("vocab_size") {
		t.Error("Written/Present")
	}
}

func TestParseConfigErrors(t *testing.T) {
	base := `"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100`
	cases := []struct {
		name, json, want string
	}{
		{"not json", `{`, "not a JSON object"},
		{"array", `[]`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"bad architectures", `{"architectures":"LlamaForCausalLM",` + base + `}`, "architectures: want a list of strings"},
		{"negative window layers", `{"max_window_layers":-1,` + base + `}`, "max_window_layers -1 is negative"},
		{"missing hidden", `{"architectures":["LlamaForCausalLM"],"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100}`, "hidden_size is missing"},
		{"zero layers", `{"architectures":["LlamaForCausalLM"],` + strings.Replace(base, `"num_hidden_layers":2`, `"num_hidden_layers":0`, 1) + `}`, "num_hidden_layers is 0"},
		{"negative vocab", `{"architectures":["LlamaForCausalLM"],` + strings.Replace(base, `"vocab_size":100`, `"vocab_size":-5`, 1) + `}`, "vocab_size is -5"},
		{"huge hidden", `{"architectures":["LlamaForCausalLM"],` + strings.Replace(base, `"hidden_size":64`, `"hidden_size":4611686018427387904`, 1) + `}`, "sanity limit"},
		{"string dim", `{"architectures":["LlamaForCausalLM"],` + strings.Replace(base, `"hidden_size":64`, `"hidden_size":"64"`, 1) + `}`, "hidden_size: want an integer"},
		{"fraction dim", `{"architectures":["LlamaForCausalLM"],` + strings.Replace(base, `"hidden_size":64`, `"hidden_size":64.5`, 1) + `}`, "hidden_size: want an integer"},
		{"kv not dividing", `{"architectures":["LlamaForCausalLM"],"num_key_value_heads":3,` + base + `}`, "not a multiple of num_key_value_heads 3"},
		{"hidden not dividing", `{"architectures":["LlamaForCausalLM"],` + strings.Replace(base, `"num_attention_heads":4`, `"num_attention_heads":6`, 1) + `}`, "hidden_size 64 is not a multiple of num_attention_heads 6"},
		{"bad eps", `{"architectures":["LlamaForCausalLM"],"rms_norm_eps":0,` + base + `}`, "rms_norm_eps"},
		{"bad theta", `{"architectures":["LlamaForCausalLM"],"rope_theta":-1,` + base + `}`, "rope_theta"},
		{"bad rope type", `{"architectures":["LlamaForCausalLM"],"rope_scaling":{"type":"weird","factor":2},` + base + `}`, `rope_scaling type "weird" is not supported`},
		{"bad llama3", `{"architectures":["LlamaForCausalLM"],"rope_scaling":{"rope_type":"llama3","factor":8,"low_freq_factor":4,"high_freq_factor":1,"original_max_position_embeddings":8192},` + base + `}`, "want 0 < low < high"},
		{"zero factor", `{"architectures":["LlamaForCausalLM"],"rope_scaling":{"rope_type":"linear","factor":0},` + base + `}`, "factor 0"},
		{"bad eos", `{"architectures":["LlamaForCausalLM"],"eos_token_id":"x",` + base + `}`, "eos_token_id"},
		{"negative eos", `{"architectures":["LlamaForCausalLM"],"eos_token_id":[1,-2],` + base + `}`, "negative"},
		{"bad tie", `{"architectures":["LlamaForCausalLM"],"tie_word_embeddings":"yes",` + base + `}`, "tie_word_embeddings"},
		{"odd head dim", `{"architectures":["LlamaForCausalLM"],"head_dim":15,` + base + `}`, "head_dim 15 is odd"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.json))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error %q does not wrap ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}
