package model

import (
	"errors"
	"slices"
	"testing"

	"github.com/qsparse/qsparse/safetensors"
)

const archTestDims = `"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100`

func resolveHF(t *testing.T, js string) (*archInfo, safetensors.Config, error) {
	t.Helper()
	c, err := safetensors.ParseConfig([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	a, err := hfArch(c)
	if err != nil {
		return nil, safetensors.Config{}, err
	}
	r, err := a.hfConfig(c)
	return a, r, err
}

// TestHFArchDefaults: the transformers config-class defaults per architecture, filled by model
// (safetensors leaves absent fields at zero).
func TestHFArchDefaults(t *testing.T) {
	a, c, err := resolveHF(t, `{"model_type":"llama",`+archTestDims+`,"bos_token_id":null}`)
	if err != nil || a.name != "llama" || c.ModelType != "llama" || c.RMSNormEps != 1e-6 || c.MaxPositionEmbeddings != 2048 ||
		c.BOSTokenID != -1 || !slices.Equal(c.EOSTokenIDs, []int{2}) || c.AttentionBias || c.UseSlidingWindow {
		t.Errorf("llama defaults: %v %+v", err, c)
	}
	a, c, err = resolveHF(t, `{"architectures":["Foo","Qwen2ForCausalLM"],`+archTestDims+`,"max_window_layers":21,"sliding_window":32768}`)
	if err != nil || a.name != "qwen2" || c.ModelType != "qwen2" || !c.AttentionBias || c.UseSlidingWindow ||
		c.SlidingWindow != 32768 || c.MaxWindowLayers != 21 || c.MaxPositionEmbeddings != 32768 || c.BOSTokenID != -1 ||
		len(c.EOSTokenIDs) != 0 {
		t.Errorf("qwen2: %v %+v", err, c)
	}
	_, c, err = resolveHF(t, `{"model_type":"qwen2",`+archTestDims+`}`)
	if err != nil || c.SlidingWindow != 4096 || c.MaxWindowLayers != 28 || c.UseSlidingWindow {
		t.Errorf("qwen2 defaults: %v %+v", err, c)
	}
	_, c, err = resolveHF(t, `{"architectures":["MistralForCausalLM"],`+archTestDims+`}`)
	if err != nil || !c.UseSlidingWindow || c.SlidingWindow != 4096 || c.MaxPositionEmbeddings != 4096*32 ||
		c.BOSTokenID != 1 || !slices.Equal(c.EOSTokenIDs, []int{2}) {
		t.Errorf("mistral defaults: %v %+v", err, c)
	}
	_, c, err = resolveHF(t, `{"architectures":["MistralForCausalLM"],`+archTestDims+`,"sliding_window":null,"max_position_embeddings":512,"rms_norm_eps":1e-5}`)
	if err != nil || c.UseSlidingWindow || c.SlidingWindow != 0 || c.MaxPositionEmbeddings != 512 || c.RMSNormEps != 1e-5 {
		t.Errorf("mistral without window: %v %+v", err, c)
	}
	for _, js := range []string{
		`{"architectures":["GPT2LMHeadModel"],` + archTestDims + `}`,
		`{"model_type":"gpt2",` + archTestDims + `}`,
		`{` + archTestDims + `}`,
	} {
		if _, _, err := resolveHF(t, js); !errors.Is(err, ErrUnsupportedArch) {
			t.Errorf("%s: %v, want ErrUnsupportedArch", js, err)
		}
	}
	if _, _, err := resolveHF(t, `{"model_type":"qwen2",`+archTestDims+`,"use_sliding_window":true,"sliding_window":0}`); !errors.Is(err, ErrBadSpec) {
		t.Errorf("qwen2 window 0: %v, want ErrBadSpec", err)
	}
	if _, err := ggufArch("gpt2"); !errors.Is(err, ErrUnsupportedArch) {
		t.Errorf("ggufArch(gpt2) = %v", err)
	}
}
