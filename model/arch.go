package model

import (
	"slices"
	"strings"

	"github.com/qsparse/qsparse/safetensors"
)

// archInfo is everything qsparse knows about one supported architecture: its names in GGUF and
// in Hugging Face configs, how its checkpoints differ, and the transformers config-class
// defaults for the config.json fields that may be absent.
type archInfo struct {
	name      string // GGUF general.architecture and Spec.Arch: "llama", "mistral", "qwen2"
	hfClass   string // config.json architectures entry, e.g. "LlamaForCausalLM"
	permuted  bool   // llama.cpp's converter stores the q/k rows of its GGUF permuted
	qkvBias   bool   // q, k and v always have biases (qwen2); o_proj never does
	hfWindow  string // sliding-window rule: "mistral" (used when positive), "qwen2" (use_sliding_window), "" (used when positive)
	maxPos    int    // max_position_embeddings default
	eps       float64
	bos, eos  int // default token ids (-1: none)
	window    int // sliding_window default (0: none)
	winLayers int // max_window_layers default
}

// archs lists the supported architectures.
var archs = []archInfo{
	{name: "llama", hfClass: "LlamaForCausalLM", permuted: true, maxPos: 2048, eps: 1e-6, bos: 1, eos: 2},
	{name: "mistral", hfClass: "MistralForCausalLM", permuted: true, hfWindow: "mistral", maxPos: 4096 * 32, eps: 1e-6, bos: 1, eos: 2, window: 4096},
	{name: "qwen2", hfClass: "Qwen2ForCausalLM", qkvBias: true, hfWindow: "qwen2", maxPos: 32768, eps: 1e-6, bos: -1, eos: -1, window: 4096, winLayers: 28},
}

func archNames(f func(a *archInfo) string) string {
	var s []string
	for i := range archs {
		s = append(s, f(&archs[i]))
	}
	return strings.Join(s, ", ")
}

// ggufArch returns the architecture of a GGUF general.architecture value.
func ggufArch(name string) (*archInfo, error) {
	for i := range archs {
		if archs[i].name == name {
			return &archs[i], nil
		}
	}
	return nil, errorf(ErrUnsupportedArch, "architecture %q is not supported (supported: %s)", name,
		archNames(func(a *archInfo) string { return a.name }))
}

// hfArch picks the supported architecture of a config.json: the first supported entry of
// architectures, else model_type when architectures is empty.
func hfArch(c *safetensors.Config) (*archInfo, error) {
	for _, a := range c.Architectures {
		for i := range archs {
			if archs[i].hfClass == a {
				return &archs[i], nil
			}
		}
	}
	supported := archNames(func(a *archInfo) string { return a.hfClass })
	if len(c.Architectures) > 0 {
		return nil, errorf(ErrUnsupportedArch, "architecture %s is not supported (supported: %s)",
			strings.Join(c.Architectures, ", "), supported)
	}
	for i := range archs {
		if archs[i].name == c.ModelType {
			return &archs[i], nil
		}
	}
	return nil, errorf(ErrUnsupportedArch, "no architectures and model_type %q is not supported (supported: %s)",
		c.ModelType, supported)
}

// hfConfig returns c with the architecture's defaults filled in for the fields config.json
// leaves out, and the architecture's fixed properties applied.
func (a *archInfo) hfConfig(c *safetensors.Config) (safetensors.Config, error) {
	r := *c
	r.EOSTokenIDs = slices.Clone(c.EOSTokenIDs)
	if r.ModelType == "" {
		r.ModelType = a.name
	}
	if !c.Present("max_position_embeddings") {
		r.MaxPositionEmbeddings = a.maxPos
	}
	if !c.Present("rms_norm_eps") {
		r.RMSNormEps = a.eps
	}
	if !c.Written("bos_token_id") {
		r.BOSTokenID = a.bos
	}
	if !c.Written("eos_token_id") && a.eos >= 0 {
		r.EOSTokenIDs = []int{a.eos}
	}
	if a.qkvBias {
		r.AttentionBias = true
	}
	switch a.hfWindow {
	case "mistral":
		if !c.Written("sliding_window") {
			r.SlidingWindow = a.window
		}
		r.UseSlidingWindow = r.SlidingWindow > 0
	case "qwen2":
		if !c.Present("sliding_window") {
			r.SlidingWindow = a.window
		}
		if !c.Present("max_window_layers") {
			r.MaxWindowLayers = a.winLayers
		}
		if r.UseSlidingWindow && r.SlidingWindow <= 0 {
			return r, errorf(ErrBadSpec, "use_sliding_window is true but sliding_window is %d", r.SlidingWindow)
		}
	default:
		r.UseSlidingWindow = r.SlidingWindow > 0
	}
	return r, nil
}
