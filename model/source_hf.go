package model

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/qsparse/qsparse/safetensors"
	"github.com/qsparse/qsparse/tokenizer"
)

// hfGlobal maps the model-level Hugging Face tensor names to canonical (GGUF) names.
var hfGlobal = map[string]string{
	"model.embed_tokens.weight": NameTokEmbd,
	"model.norm.weight":         NameOutputNorm,
	"lm_head.weight":            NameOutput,
}

// hfLayer maps the per-layer suffix of "model.layers.N.<suffix>" to the canonical
// "blk.N.<suffix>".
var hfLayer = map[string]string{
	"input_layernorm.weight":          AttnNorm,
	"self_attn.q_proj.weight":         AttnQ,
	"self_attn.k_proj.weight":         AttnK,
	"self_attn.v_proj.weight":         AttnV,
	"self_attn.o_proj.weight":         AttnOutput,
	"self_attn.q_proj.bias":           AttnQBias,
	"self_attn.k_proj.bias":           AttnKBias,
	"self_attn.v_proj.bias":           AttnVBias,
	"post_attention_layernorm.weight": FFNNorm,
	"mlp.gate_proj.weight":            FFNGate,
	"mlp.up_proj.weight":              FFNUp,
	"mlp.down_proj.weight":            FFNDown,
}

// invert returns the inverse of a one-to-one map.
func invert(m map[string]string) map[string]string {
	inv := make(map[string]string, len(m))
	for k, v := range m {
		inv[v] = k
	}
	return inv
}

var canonGlobal, canonLayer = invert(hfGlobal), invert(hfLayer)

// HFToCanonical maps a Hugging Face tensor name (model.layers.3.mlp.up_proj.weight) to its
// canonical GGUF name (blk.3.ffn_up.weight). ok is false for names outside the table.
func HFToCanonical(name string) (canon string, ok bool) {
	return renameTensor(name, hfGlobal, "model.layers.", hfLayer, "blk.")
}

// CanonicalToHF is the inverse of HFToCanonical.
func CanonicalToHF(canon string) (name string, ok bool) {
	return renameTensor(canon, canonGlobal, "blk.", canonLayer, "model.layers.")
}

// renameTensor maps name through global, or, for "<from>N.<suffix>" (N a layer number written
// without leading zeros), to "<to>N.<layer[suffix]>".
func renameTensor(name string, global map[string]string, from string, layer map[string]string, to string) (string, bool) {
	if c, ok := global[name]; ok {
		return c, true
	}
	rest, found := strings.CutPrefix(name, from)
	if !found {
		return "", false
	}
	num, suffix, found := strings.Cut(rest, ".")
	if !found {
		return "", false
	}
	l, err := strconv.Atoi(num)
	if err != nil || l < 0 || strconv.Itoa(l) != num {
		return "", false
	}
	s, ok := layer[suffix]
	if !ok {
		return "", false
	}
	return to + num + "." + s, true
}

// hfSource is an opened Hugging Face folder (config.json + safetensors weights).
type hfSource struct {
	d      *safetensors.Dir
	sp     Spec
	byName map[string]safetensors.Tensor // canonical name → tensor
}

func openHF(dir string) (*hfSource, error) {
	d, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	s := &hfSource{d: d, byName: map[string]safetensors.Tensor{}}
	if err := s.readSpec(); err != nil {
		d.Close()
		return nil, err
	}
	return s, nil
}

func (s *hfSource) readSpec() error {
	name := filepath.Base(filepath.Clean(s.d.Path))
	a, err := hfArch(s.d.Config)
	if err != nil {
		return fmt.Errorf("model %s: %w", name, err)
	}
	cfg, err := a.hfConfig(s.d.Config)
	if err != nil {
		return fmt.Errorf("model %s: %w", name, err)
	}
	c, arch := &cfg, a.name
	if c.HiddenAct != "silu" {
		return errorf(ErrUnsupported, "model %s: hidden_act %q is not supported (only silu)", name, c.HiddenAct)
	}
	if c.AttentionBias && !a.qkvBias {
		return errorf(ErrUnsupported, "model %s: attention_bias (o_proj bias) is not supported for %s", name, arch)
	}
	if c.MLPBias {
		return errorf(ErrUnsupported, "model %s: mlp_bias is not supported", name)
	}
	for _, t := range s.d.Tensors {
		if canon, ok := HFToCanonical(t.Name); ok {
			s.byName[canon] = t
		}
	}
	_, hasHead := s.byName[NameOutput]
	s.sp = Spec{
		Arch: arch, Name: name,
		Dim: c.HiddenSize, NLayers: c.NumHiddenLayers, NHeads: c.NumAttentionHeads,
		NKVHeads: c.NumKeyValueHeads, HeadDim: c.HeadDim, FFNDim: c.IntermediateSize,
		Vocab: c.VocabSize, CtxLen: c.MaxPositionEmbeddings,
		RopeTheta: c.RopeTheta, NormEps: c.RMSNormEps,
		TiedEmbeddings: c.TieWordEmbeddings || !hasHead,
		QKVBias:        c.AttentionBias,
	}
	if r := c.RopeScaling; r != nil {
		s.sp.RopeScaling = RopeScaling{Type: r.Type, Factor: r.Factor, LowFreqFactor: r.LowFreqFactor,
			HighFreqFactor: r.HighFreqFactor, OrigCtxLen: r.OriginalMaxPositionEmbeddings}
	}
	if s.sp.TiedEmbeddings {
		delete(s.byName, NameOutput) // a tied checkpoint may still carry a copy of lm_head
	}
	return s.sp.Validate()
}

func (s *hfSource) spec() *Spec      { return &s.sp }
func (s *hfSource) permutedQK() bool { return false }
func (s *hfSource) close() error     { return s.d.Close() }

func (s *hfSource) shape(name string) ([]int, bool) {
	t, ok := s.byName[name]
	if !ok {
		return nil, false
	}
	return slices.Clone(t.Shape), true
}

func (s *hfSource) isF32(name string) bool { return s.byName[name].DType == safetensors.F32 }

func (s *hfSource) f16Rows(name string, r0, n int) ([]byte, bool) {
	t, ok := s.byName[name]
	if !ok || t.DType != safetensors.F16 || len(t.Shape) == 0 || t.Shape[0] == 0 {
		return nil, false
	}
	rb := t.NumElements() / t.Shape[0] * 2
	if r0 < 0 || n < 0 || (r0+n)*rb > len(t.Data) {
		return nil, false
	}
	return t.Data[r0*rb : (r0+n)*rb], true
}

func (s *hfSource) release(name string, r0, n int) int {
	t, ok := s.byName[name]
	if !ok {
		return 0
	}
	rows := 1
	if len(t.Shape) >= 2 {
		rows = t.Shape[0]
	}
	b := rowRange(t.Data, rows, r0, n)
	s.d.Release(b)
	return len(b)
}

// rowRange returns the bytes of rows [r0, r0+n) of a tensor of rows equal-sized rows held in data
// (nil when out of range).
func rowRange(data []byte, rows, r0, n int) []byte {
	if rows <= 0 || len(data)%rows != 0 || r0 < 0 || n < 0 || r0+n > rows {
		return nil
	}
	rb := len(data) / rows
	return data[r0*rb : (r0+n)*rb]
}

func (s *hfSource) rows(name string, dst []float32, r0, n int) error {
	t, ok := s.byName[name]
	if !ok {
		return errorf(ErrMissingTensor, "tensor %s missing", name)
	}
	cols := t.NumElements()
	if len(t.Shape) >= 2 && t.Shape[0] > 0 {
		cols /= t.Shape[0]
	}
	es := t.DType.Size()
	a, b := r0*cols*es, (r0+n)*cols*es
	if es == 0 || r0 < 0 || n < 0 || b > len(t.Data) || len(dst) != n*cols {
		return errorf(ErrTensorShape, "tensor %s (%s): rows %d..%d out of range", t.Name, t.DType, r0, r0+n-1)
	}
	sub := safetensors.Tensor{Name: t.Name, DType: t.DType, Shape: []int{n, cols}, Data: t.Data[a:b]}
	if err := sub.Float32(dst); err != nil {
		return fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	return nil
}

func (s *hfSource) vocab() (*tokenizer.Vocab, string, error) { return hfVocab(s.d.Path, s.sp.Name) }

// describe fills the HF parts of Info.
func (s *hfSource) describe(info *Info) error {
	types := map[string]bool{}
	for _, t := range s.d.Tensors {
		info.Tensors = append(info.Tensors, TensorDesc{Name: t.Name, Shape: slices.Clone(t.Shape), Type: string(t.DType), Bytes: int64(len(t.Data))})
		info.Params += int64(t.NumElements())
		types[string(t.DType)] = true
	}
	info.FileType = dominantType(info.Tensors)
	v, tmpl, err := s.vocab()
	if err != nil {
		return err
	}
	info.Tokenizer, info.VocabSize, info.HasChatTemplate = v.Model, len(v.Tokens), tmpl != ""
	return nil
}
