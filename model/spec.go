// Package model loads LLM checkpoints (a GGUF file or a Hugging Face folder) into one canonical
// in-memory form and runs the forward pass on the CPU.
//
// # Canonical layout
//
// Every weight is known by its GGUF name (token_embd.weight, output_norm.weight, output.weight,
// blk.N.attn_norm.weight, blk.N.attn_q.weight, blk.N.attn_k.weight, blk.N.attn_v.weight,
// blk.N.attn_output.weight, blk.N.ffn_norm.weight, blk.N.ffn_gate.weight, blk.N.ffn_up.weight,
// blk.N.ffn_down.weight and, for qwen2, blk.N.attn_{q,k,v}.bias). Hugging Face names map onto
// these through the table in hf.go.
//
// Matrices are row-major [rows = out_features][cols = in_features]: y = W x is
// y[r] = Σ_c W[r*cols+c] x[c]. That is the HF layout and the GGUF data layout (GGUF ne[0] = cols).
// Weights are converted once at load to the compute dtype (F32, or F16 stored as IEEE half bits
// in []uint16); norms and biases are always F32. The rows of q and k are in the HF rotate-half
// (NEOX) RoPE layout: GGUF files of arch "llama" store them permuted by llama.cpp's converter and
// are un-permuted once at load (permute.go). The forward pass uses rotate-half RoPE only.
//
// The KV cache is float32, [layer][pos][NKVHeads*HeadDim]. Attention and softmax are float32.
//
// # Sparsity sites
//
// Each layer has four sites where activation sparsity is applied (see Site): the attention
// input shared by q/k/v, the o_proj input, the MLP input shared by gate/up and the down_proj
// input. A Profile gives the channels kept per token at each site (UniformProfile: Q-Sparse's
// k = int((1-r)*dim)); State.SetProfile / SetSparsity set it. Every projection of the forward
// pass goes through State.project, the one place where the top-K mask is applied (masked
// input, dense kernels: the reference semantics) and where a sparse kernel is to be inserted.
package model

// RopeScaling describes RoPE frequency scaling. Type is "" or "none" (no scaling), "linear"
// (positions divided by Factor) or "llama3" (low/high frequency bands as in Llama 3.1).
type RopeScaling struct {
	Type           string
	Factor         float64
	LowFreqFactor  float64
	HighFreqFactor float64
	OrigCtxLen     int // original_max_position_embeddings
}

// Spec is the one description of a model's shape, whatever file it came from.
type Spec struct {
	Arch, Name     string // Arch: "llama", "mistral" or "qwen2"
	Dim            int    // hidden size
	NLayers        int
	NHeads         int
	NKVHeads       int
	HeadDim        int
	FFNDim         int // intermediate size
	Vocab          int // rows of the embedding and of the LM head (= logits length)
	CtxLen         int // trained context length
	RopeTheta      float64
	RopeScaling    RopeScaling
	NormEps        float64
	TiedEmbeddings bool // LM head is token_embd.weight
	QKVBias        bool // q/k/v projections have biases (qwen2)
}

// QDim is the width of the query projection, NHeads*HeadDim.
func (s *Spec) QDim() int { return s.NHeads * s.HeadDim }

// KVDim is the width of the key and value projections, NKVHeads*HeadDim.
func (s *Spec) KVDim() int { return s.NKVHeads * s.HeadDim }

// Validate checks that the hyper-parameters are positive and consistent.
func (s *Spec) Validate() error {
	const maxDim = 1 << 20
	for _, f := range []struct {
		name string
		v    int
	}{{"embedding length", s.Dim}, {"block count", s.NLayers}, {"head count", s.NHeads},
		{"KV head count", s.NKVHeads}, {"head dim", s.HeadDim}, {"feed-forward length", s.FFNDim},
		{"vocab size", s.Vocab}} {
		if f.v <= 0 || f.v > maxDim*64 {
			return errorf(ErrBadSpec, "model %s: %s %d is out of range", s.Name, f.name, f.v)
		}
	}
	if s.NHeads%s.NKVHeads != 0 {
		return errorf(ErrBadSpec, "model %s: head count %d is not a multiple of KV head count %d", s.Name, s.NHeads, s.NKVHeads)
	}
	if s.HeadDim%2 != 0 {
		return errorf(ErrBadSpec, "model %s: head dim %d is odd; RoPE needs an even head dim", s.Name, s.HeadDim)
	}
	if s.NLayers > 4096 || s.Dim > maxDim || s.FFNDim > maxDim || s.HeadDim > 4096 || s.NHeads > 4096 {
		return errorf(ErrBadSpec, "model %s: implausible dimensions (dim %d, layers %d, ffn %d, heads %d, head dim %d)",
			s.Name, s.Dim, s.NLayers, s.FFNDim, s.NHeads, s.HeadDim)
	}
	if s.RopeTheta <= 0 {
		return errorf(ErrBadSpec, "model %s: rope theta %g must be positive", s.Name, s.RopeTheta)
	}
	if s.NormEps <= 0 || s.NormEps > 1 {
		return errorf(ErrBadSpec, "model %s: RMS norm epsilon %g is out of range", s.Name, s.NormEps)
	}
	switch s.RopeScaling.Type {
	case "", "none":
	case "linear":
		if s.RopeScaling.Factor <= 0 {
			return errorf(ErrBadSpec, "model %s: linear rope scaling factor %g must be positive", s.Name, s.RopeScaling.Factor)
		}
	case "llama3":
		r := s.RopeScaling
		if r.Factor <= 0 || r.LowFreqFactor <= 0 || r.HighFreqFactor <= r.LowFreqFactor || r.OrigCtxLen <= 0 {
			return errorf(ErrBadSpec, "model %s: llama3 rope scaling %+v is inconsistent", s.Name, r)
		}
	default:
		return errorf(ErrUnsupported, "model %s: rope scaling type %q is not supported (supported: linear, llama3)", s.Name, s.RopeScaling.Type)
	}
	return nil
}

// Info describes a checkpoint without loading its weights (see Inspect).
type Info struct {
	Format          string // "gguf" or "safetensors"
	Path            string
	Spec            Spec
	Tensors         []TensorDesc
	Params          int64  // number of weight elements in all tensors
	Tokenizer       string // tokenizer kind: "llama" (SentencePiece BPE) or "gpt2" (byte-level BPE)
	VocabSize       int    // tokens in the tokenizer
	HasChatTemplate bool
	// DenseBytesPerToken is the number of weight bytes one decoded token reads in the compute
	// dtype Load picks by default ("auto": F32 sources stay F32, anything else becomes F16;
	// norms and biases are F32): every layer matrix (q, k, v, o, gate, up, down), biases and norms,
	// the final norm and the LM head (for a tied model the embedding matrix read as LM head).
	// The embedding row lookup is not counted.
	DenseBytesPerToken int64
	FileType           string // GGUF general.file_type name, or the HF dtype(s)
	// Layout is a qsparse pack file's site matrix layout (qsparse.layout: PackF16Cols or
	// PackTernQ8), "" for any other checkpoint.
	Layout string
	// Problems lists what Load would refuse or what does not add up (missing or misshapen
	// tensors, layers the hyper-parameters do not count, a tokenizer larger than the
	// embedding), one line each; empty for a sound checkpoint.
	Problems []string
}

// TensorDesc is one row of Info.Tensors.
type TensorDesc struct {
	Name  string
	Shape []int // outermost first
	Type  string
	Bytes int64
}
