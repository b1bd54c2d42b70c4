package model

import (
	"fmt"
	"slices"
)

// Canonical (GGUF) names of the model-level tensors.
const (
	NameTokEmbd    = "token_embd.weight"
	NameOutputNorm = "output_norm.weight"
	NameOutput     = "output.weight"
	NameRopeFreqs  = "rope_freqs.weight" // optional per-dimension RoPE frequency divisors (llama3 GGUFs)
)

// Per-layer tensor suffixes: the canonical name is "blk.N." + suffix.
const (
	AttnNorm   = "attn_norm.weight"
	AttnQ      = "attn_q.weight"
	AttnK      = "attn_k.weight"
	AttnV      = "attn_v.weight"
	AttnOutput = "attn_output.weight"
	FFNNorm    = "ffn_norm.weight"
	FFNGate    = "ffn_gate.weight"
	FFNUp      = "ffn_up.weight"
	FFNDown    = "ffn_down.weight"
	AttnQBias  = "attn_q.bias"
	AttnKBias  = "attn_k.bias"
	AttnVBias  = "attn_v.bias"
)

// LayerName returns the canonical name of a per-layer tensor, e.g. LayerName(3, FFNUp) =
// "blk.3.ffn_up.weight".
func LayerName(layer int, suffix string) string { return fmt.Sprintf("blk.%d.%s", layer, suffix) }

// TensorSpec is one tensor the forward pass needs, with its expected shape (outermost first).
type TensorSpec struct {
	Name   string
	Shape  []int
	Matrix bool // a weight matrix (converted to the compute dtype); false: norm or bias (F32)
}

// Tensors lists every tensor the model needs under canonical names, with expected shapes.
func (s *Spec) Tensors() []TensorSpec {
	d, q, kv, f := s.Dim, s.QDim(), s.KVDim(), s.FFNDim
	ts := []TensorSpec{
		{NameTokEmbd, []int{s.Vocab, d}, true},
		{NameOutputNorm, []int{d}, false},
	}
	if !s.TiedEmbeddings {
		ts = append(ts, TensorSpec{NameOutput, []int{s.Vocab, d}, true})
	}
	for l := 0; l < s.NLayers; l++ {
		ts = append(ts,
			TensorSpec{LayerName(l, AttnNorm), []int{d}, false},
			TensorSpec{LayerName(l, AttnQ), []int{q, d}, true},
			TensorSpec{LayerName(l, AttnK), []int{kv, d}, true},
			TensorSpec{LayerName(l, AttnV), []int{kv, d}, true},
			TensorSpec{LayerName(l, AttnOutput), []int{d, q}, true},
			TensorSpec{LayerName(l, FFNNorm), []int{d}, false},
			TensorSpec{LayerName(l, FFNGate), []int{f, d}, true},
			TensorSpec{LayerName(l, FFNUp), []int{f, d}, true},
			TensorSpec{LayerName(l, FFNDown), []int{d, f}, true},
		)
		if s.QKVBias {
			ts = append(ts,
				TensorSpec{LayerName(l, AttnQBias), []int{q}, false},
				TensorSpec{LayerName(l, AttnKBias), []int{kv}, false},
				TensorSpec{LayerName(l, AttnVBias), []int{kv}, false},
			)
		}
	}
	return ts
}

// checkTensors verifies eagerly that every needed tensor is present with the right shape.
// shapeOf returns a tensor's shape (outermost first) and whether it exists.
func (s *Spec) checkTensors(shapeOf func(name string) ([]int, bool)) error {
	for _, t := range s.Tensors() {
		sh, ok := shapeOf(t.Name)
		if !ok {
			return errorf(ErrMissingTensor, "model %s: tensor %s missing (the checkpoint is incomplete or not a %s model)", s.Name, t.Name, s.Arch)
		}
		if !slices.Equal(sh, t.Shape) {
			return errorf(ErrTensorShape, "model %s: tensor %s has shape %v, want %v", s.Name, t.Name, sh, t.Shape)
		}
	}
	return nil
}

// Site names one of the four activation-sparsity sites of a layer.
type Site int

// The four sparsity sites of each layer, in forward order.
const (
	AttnIn  Site = iota // input of q, k and v (after attn_norm)
	AttnOut             // input of o_proj (attention output)
	MLPIn               // input of gate and up (after ffn_norm)
	MLPDown             // input of down_proj (SiLU(gate)*up)
	NumSites
)

// String returns the site's name: attn_in, attn_out, mlp_in, mlp_down.
func (s Site) String() string {
	switch s {
	case AttnIn:
		return "attn_in"
	case AttnOut:
		return "attn_out"
	case MLPIn:
		return "mlp_in"
	case MLPDown:
		return "mlp_down"
	}
	return fmt.Sprintf("Site(%d)", int(s))
}

// SiteDim returns the width of a site's input: Dim for AttnIn and MLPIn, QDim for AttnOut,
// FFNDim for MLPDown.
func (s *Spec) SiteDim(site Site) int {
	switch site {
	case AttnOut:
		return s.QDim()
	case MLPDown:
		return s.FFNDim
	}
	return s.Dim
}

// siteMat is one matrix that reads a site's input: its tensor suffix and where a Layer keeps
// it and its bias (nil: none).
type siteMat struct {
	suffix string
	w      func(*Layer) *Matrix
	bias   func(*Layer) []float32
}

// siteTable lists, per site, the matrices that read its input, in stacking order (the row
// order of Layer.QKV and Layer.GateUp). It is the one site → matrices mapping: SiteTensors,
// Layer.siteMatrices, the loader and the forward pass read it.
var siteTable = [NumSites][]siteMat{
	AttnIn: {
		{AttnQ, func(L *Layer) *Matrix { return L.Q }, func(L *Layer) []float32 { return L.QBias }},
		{AttnK, func(L *Layer) *Matrix { return L.K }, func(L *Layer) []float32 { return L.KBias }},
		{AttnV, func(L *Layer) *Matrix { return L.V }, func(L *Layer) []float32 { return L.VBias }},
	},
	AttnOut: {{AttnOutput, func(L *Layer) *Matrix { return L.O }, nil}},
	MLPIn: {
		{FFNGate, func(L *Layer) *Matrix { return L.Gate }, nil},
		{FFNUp, func(L *Layer) *Matrix { return L.Up }, nil},
	},
	MLPDown: {{FFNDown, func(L *Layer) *Matrix { return L.Down }, nil}},
}

// SiteTensors returns the per-layer tensor suffixes of the matrices that read a site's input.
func SiteTensors(site Site) []string {
	if site < 0 || site >= NumSites {
		return nil
	}
	out := make([]string, len(siteTable[site]))
	for i, m := range siteTable[site] {
		out[i] = m.suffix
	}
	return out
}

// ParseSite is the inverse of Site.String.
func ParseSite(name string) (Site, error) {
	for s := AttnIn; s < NumSites; s++ {
		if s.String() == name {
			return s, nil
		}
	}
	return 0, errorf(ErrBadProfile, "unknown sparsity site %q (want attn_in, attn_out, mlp_in or mlp_down)", name)
}
