package safetensors

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Sanity limits on config dimensions, so that a hostile config cannot make a loader allocate
// by an unchecked field. They are far above any model this toolkit targets.
const (
	maxHidden    = 1 << 18
	maxFFN       = 1 << 20
	maxLayers    = 1 << 10
	maxHeads     = 1 << 12
	maxHeadDim   = 1 << 12
	maxVocab     = 1 << 22
	maxPositions = 1 << 26
)

// Config is the part of a Hugging Face config.json that a decoder-only Llama-family model needs,
// as written. ParseConfig does not decide which architectures are supported, nor fill the
// defaults that depend on the architecture (max_position_embeddings, rms_norm_eps, token ids,
// sliding window): such a field is zero (token ids -1, lists empty) when absent, and Written /
// Present tell absent from null. The model package makes those decisions.
type Config struct {
	Architectures []string // as written (may be empty when model_type names the architecture)
	ModelType     string   // model_type as written, e.g. "llama"; may be empty

	HiddenSize            int
	IntermediateSize      int
	NumHiddenLayers       int
	NumAttentionHeads     int
	NumKeyValueHeads      int // default NumAttentionHeads
	HeadDim               int // default HiddenSize/NumAttentionHeads
	VocabSize             int
	MaxPositionEmbeddings int // 0 when absent

	RMSNormEps  float64      // 0 when absent
	RopeTheta   float64      // default 10000
	RopeScaling *RopeScaling // nil when rope_scaling is null or of type "default"

	TieWordEmbeddings bool // default false
	// AttentionBias: attention_bias as written (Llama/Mistral: q, k, v and o have biases).
	AttentionBias bool
	MLPBias       bool // Llama mlp_bias: gate/up/down have biases

	BOSTokenID  int   // -1 when absent or null
	EOSTokenIDs []int // eos_token_id (int or list); empty when absent or null
	PadTokenID  int   // -1 when absent or null

	HiddenAct  string // default "silu"
	TorchDType string // torch_dtype (or dtype), e.g. "bfloat16"; may be empty

	// Sliding-window attention as written: sliding_window (0 when absent or null),
	// use_sliding_window (false when absent) and max_window_layers (0 when absent). Whether a
	// model uses the window depends on its architecture (see the model package).
	SlidingWindow    int
	UseSlidingWindow bool
	MaxWindowLayers  int

	// Raw holds every top-level field of config.json, for anything not decoded above.
	Raw map[string]json.RawMessage
}

// RopeScaling is config.json's rope_scaling (or the scaling part of rope_parameters).
type RopeScaling struct {
	Type                          string // "linear", "dynamic", "llama3", "yarn", "longrope"
	Factor                        float64
	LowFreqFactor                 float64 // llama3
	HighFreqFactor                float64 // llama3
	OriginalMaxPositionEmbeddings int     // llama3, yarn, longrope (0 when absent)
	Raw                           json.RawMessage
}

var knownRopeTypes = []string{"linear", "dynamic", "llama3", "yarn", "longrope"}

// Written reports whether config.json has key at the top level (possibly null).
func (c *Config) Written(key string) bool { _, ok := c.Raw[key]; return ok }

// Present reports whether config.json sets key to something other than null.
func (c *Config) Present(key string) bool { return rawObj(c.Raw).present(key) }

// ParseConfig parses config.json and validates the fields it reads. Errors wrap ErrConfig.
func ParseConfig(b []byte) (*Config, error) {
	c, err := parseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	return c, nil
}

type cfgErr struct{ msg string }

func (e *cfgErr) Error() string { return e.msg }
func (e *cfgErr) Unwrap() error { return ErrConfig }

func cerr(format string, args ...any) error { return &cfgErr{fmt.Sprintf(format, args...)} }

type rawObj map[string]json.RawMessage

func isNull(r json.RawMessage) bool { return len(r) == 0 || string(bytes.TrimSpace(r)) == "null" }

// present reports whether key is set to something other than null.
func (o rawObj) present(key string) bool { r, ok := o[key]; return ok && !isNull(r) }

// int reads key as an integer (an integral JSON number), or def when absent or null.
func (o rawObj) int(key string, def int) (int, error) {
	if !o.present(key) {
		return def, nil
	}
	return parseJSONInt(key, o[key])
}

func parseJSONInt(key string, r json.RawMessage) (int, error) {
	var n json.Number
	if err := json.Unmarshal(r, &n); err != nil || !isNumberToken(r) {
		return 0, cerr("%s: want an integer, got %s", key, clip(r))
	}
	if v, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		if int64(int(v)) != v {
			return 0, cerr("%s: %d out of range", key, v)
		}
		return int(v), nil
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, cerr("%s: want an integer, got %s", key, clip(r))
	}
	return int(f), nil
}

func isNumberToken(r json.RawMessage) bool {
	s := bytes.TrimSpace(r)
	return len(s) > 0 && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))
}

func (o rawObj) float(key string, def float64) (float64, error) {
	if !o.present(key) {
		return def, nil
	}
	var f float64
	if err := json.Unmarshal(o[key], &f); err != nil {
		return 0, cerr("%s: want a number, got %s", key, clip(o[key]))
	}
	return f, nil
}

func (o rawObj) bool(key string, def bool) (bool, error) {
	if !o.present(key) {
		return def, nil
	}
	var v bool
	if err := json.Unmarshal(o[key], &v); err != nil {
		return false, cerr("%s: want true or false, got %s", key, clip(o[key]))
	}
	return v, nil
}

func (o rawObj) str(key, def string) (string, error) {
	if !o.present(key) {
		return def, nil
	}
	var v string
	if err := json.Unmarshal(o[key], &v); err != nil {
		return "", cerr("%s: want a string, got %s", key, clip(o[key]))
	}
	return v, nil
}

func parseConfig(b []byte) (*Config, error) {
	var o rawObj
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, cerr("not a JSON object: %v", err)
	}
	if o == nil {
		return nil, cerr("not a JSON object (null)")
	}
	c := &Config{Raw: o, BOSTokenID: -1, PadTokenID: -1}
	var err error
	if o.present("architectures") {
		if err := json.Unmarshal(o["architectures"], &c.Architectures); err != nil {
			return nil, cerr("architectures: want a list of strings, got %s", clip(o["architectures"]))
		}
	}
	if c.ModelType, err = o.str("model_type", ""); err != nil {
		return nil, err
	}
	// Required dimensions.
	for _, f := range []struct {
		key string
		dst *int
		max int
	}{
		{"hidden_size", &c.HiddenSize, maxHidden},
		{"intermediate_size", &c.IntermediateSize, maxFFN},
		{"num_hidden_layers", &c.NumHiddenLayers, maxLayers},
		{"num_attention_heads", &c.NumAttentionHeads, maxHeads},
		{"vocab_size", &c.VocabSize, maxVocab},
	} {
		if !o.present(f.key) {
			return nil, cerr("%s is missing", f.key)
		}
		if *f.dst, err = o.int(f.key, 0); err != nil {
			return nil, err
		}
		if err := checkDim(f.key, *f.dst, f.max); err != nil {
			return nil, err
		}
	}
	if c.NumKeyValueHeads, err = o.int("num_key_value_heads", c.NumAttentionHeads); err != nil {
		return nil, err
	}
	if err := checkDim("num_key_value_heads", c.NumKeyValueHeads, maxHeads); err != nil {
		return nil, err
	}
	if c.NumAttentionHeads%c.NumKeyValueHeads != 0 {
		return nil, cerr("num_attention_heads %d is not a multiple of num_key_value_heads %d",
			c.NumAttentionHeads, c.NumKeyValueHeads)
	}
	if o.present("head_dim") {
		if c.HeadDim, err = o.int("head_dim", 0); err != nil {
			return nil, err
		}
	} else {
		if c.HiddenSize%c.NumAttentionHeads != 0 {
			return nil, cerr("hidden_size %d is not a multiple of num_attention_heads %d (and no head_dim)",
				c.HiddenSize, c.NumAttentionHeads)
		}
		c.HeadDim = c.HiddenSize / c.NumAttentionHeads
	}
	if err := checkDim("head_dim", c.HeadDim, maxHeadDim); err != nil {
		return nil, err
	}
	if c.HeadDim%2 != 0 {
		return nil, cerr("head_dim %d is odd; rotary embeddings need an even head size", c.HeadDim)
	}
	if o.present("max_position_embeddings") {
		if c.MaxPositionEmbeddings, err = o.int("max_position_embeddings", 0); err != nil {
			return nil, err
		}
		if err := checkDim("max_position_embeddings", c.MaxPositionEmbeddings, maxPositions); err != nil {
			return nil, err
		}
	}

	if o.present("rms_norm_eps") {
		if c.RMSNormEps, err = o.float("rms_norm_eps", 0); err != nil {
			return nil, err
		}
		if !(c.RMSNormEps > 0 && c.RMSNormEps < 1) {
			return nil, cerr("rms_norm_eps %g: want a small positive number", c.RMSNormEps)
		}
	}
	if err := parseRope(o, c); err != nil {
		return nil, err
	}

	if c.TieWordEmbeddings, err = o.bool("tie_word_embeddings", false); err != nil {
		return nil, err
	}
	if c.AttentionBias, err = o.bool("attention_bias", false); err != nil {
		return nil, err
	}
	if c.MLPBias, err = o.bool("mlp_bias", false); err != nil {
		return nil, err
	}

	if c.BOSTokenID, err = o.int("bos_token_id", -1); err != nil {
		return nil, err
	}
	if c.PadTokenID, err = o.int("pad_token_id", -1); err != nil {
		return nil, err
	}
	if o.present("eos_token_id") {
		r := bytes.TrimSpace(o["eos_token_id"])
		if len(r) > 0 && r[0] == '[' {
			var items []json.RawMessage
			if err := json.Unmarshal(r, &items); err != nil {
				return nil, cerr("eos_token_id: want an integer or a list of integers, got %s", clip(r))
			}
			if len(items) > 1024 {
				return nil, cerr("eos_token_id: %d ids is too many", len(items))
			}
			for _, it := range items {
				id, err := parseJSONInt("eos_token_id", it)
				if err != nil {
					return nil, err
				}
				c.EOSTokenIDs = append(c.EOSTokenIDs, id)
			}
		} else {
			id, err := parseJSONInt("eos_token_id", r)
			if err != nil {
				return nil, err
			}
			c.EOSTokenIDs = []int{id}
		}
	}
	for _, id := range append([]int{c.BOSTokenID, c.PadTokenID}, c.EOSTokenIDs...) {
		if id < -1 {
			return nil, cerr("token id %d is negative", id)
		}
	}
	for _, id := range c.EOSTokenIDs {
		if id < 0 {
			return nil, cerr("eos_token_id %d is negative", id)
		}
	}

	if c.HiddenAct, err = o.str("hidden_act", "silu"); err != nil {
		return nil, err
	}
	if c.TorchDType, err = o.str("torch_dtype", ""); err != nil {
		return nil, err
	}
	if c.TorchDType == "" {
		if c.TorchDType, err = o.str("dtype", ""); err != nil {
			return nil, err
		}
	}

	if c.SlidingWindow, err = o.int("sliding_window", 0); err != nil {
		return nil, err
	}
	if c.UseSlidingWindow, err = o.bool("use_sliding_window", false); err != nil {
		return nil, err
	}
	if c.MaxWindowLayers, err = o.int("max_window_layers", 0); err != nil {
		return nil, err
	}
	if c.MaxWindowLayers < 0 {
		return nil, cerr("max_window_layers %d is negative", c.MaxWindowLayers)
	}
	if c.SlidingWindow < 0 {
		return nil, cerr("sliding_window %d is negative", c.SlidingWindow)
	}
	return c, nil
}

func checkDim(key string, v, max int) error {
	if v <= 0 {
		return cerr("%s is %d, want a positive number", key, v)
	}
	if v > max {
		return cerr("%s %d exceeds the sanity limit %d", key, v, max)
	}
	return nil
}

// parseRope reads rope_theta and rope_scaling, or the newer rope_parameters.
func parseRope(o rawObj, c *Config) error {
	var params rawObj
	if o.present("rope_parameters") {
		if err := json.Unmarshal(o["rope_parameters"], &params); err != nil {
			return cerr("rope_parameters: want an object, got %s", clip(o["rope_parameters"]))
		}
	}
	var err error
	if c.RopeTheta, err = o.float("rope_theta", 10000); err != nil {
		return err
	}
	if !o.present("rope_theta") && params.present("rope_theta") {
		if c.RopeTheta, err = params.float("rope_theta", 10000); err != nil {
			return fmt.Errorf("rope_parameters: %w", err)
		}
	}
	if !(c.RopeTheta > 0) || math.IsInf(c.RopeTheta, 0) {
		return cerr("rope_theta %g: want a positive number", c.RopeTheta)
	}
	raw := o["rope_scaling"]
	var rs rawObj
	if o.present("rope_scaling") {
		if err := json.Unmarshal(raw, &rs); err != nil {
			return cerr("rope_scaling: want null or an object, got %s", clip(raw))
		}
	} else if params != nil {
		rs, raw = params, o["rope_parameters"]
	} else {
		return nil
	}
	typ, err := rs.str("rope_type", "")
	if err != nil {
		return fmt.Errorf("rope_scaling: %w", err)
	}
	if typ == "" {
		if typ, err = rs.str("type", ""); err != nil {
			return fmt.Errorf("rope_scaling: %w", err)
		}
	}
	if typ == "su" {
		typ = "longrope"
	}
	if typ == "default" || (typ == "" && params != nil && !o.present("rope_scaling")) {
		return nil
	}
	if !slices.Contains(knownRopeTypes, typ) {
		return cerr("rope_scaling type %q is not supported (known: %s)", typ, strings.Join(knownRopeTypes, ", "))
	}
	s := &RopeScaling{Type: typ, Raw: raw}
	if s.Factor, err = rs.float("factor", 0); err != nil {
		return fmt.Errorf("rope_scaling: %w", err)
	}
	if s.LowFreqFactor, err = rs.float("low_freq_factor", 0); err != nil {
		return fmt.Errorf("rope_scaling: %w", err)
	}
	if s.HighFreqFactor, err = rs.float("high_freq_factor", 0); err != nil {
		return fmt.Errorf("rope_scaling: %w", err)
	}
	if s.OriginalMaxPositionEmbeddings, err = rs.int("original_max_position_embeddings", 0); err != nil {
		return fmt.Errorf("rope_scaling: %w", err)
	}
	if s.OriginalMaxPositionEmbeddings < 0 || s.OriginalMaxPositionEmbeddings > maxPositions {
		return cerr("rope_scaling original_max_position_embeddings %d out of range", s.OriginalMaxPositionEmbeddings)
	}
	finitePos := func(v float64) bool { return v > 0 && !math.IsInf(v, 0) }
	if typ != "longrope" && !finitePos(s.Factor) {
		return cerr("rope_scaling %s: factor %g, want a positive number", typ, s.Factor)
	}
	if typ == "llama3" {
		if !finitePos(s.LowFreqFactor) || !finitePos(s.HighFreqFactor) || !(s.HighFreqFactor > s.LowFreqFactor) {
			return cerr("rope_scaling llama3: low_freq_factor %g and high_freq_factor %g: want 0 < low < high",
				s.LowFreqFactor, s.HighFreqFactor)
		}
		if s.OriginalMaxPositionEmbeddings <= 0 {
			return cerr("rope_scaling llama3: original_max_position_embeddings is missing")
		}
	}
	c.RopeScaling = s
	return nil
}
