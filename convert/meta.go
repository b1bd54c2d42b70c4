package convert

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/qsparse/qsparse/gguf"
	"github.com/qsparse/qsparse/model"
	"github.com/qsparse/qsparse/tokenizer"
)

// PackArch is the general.architecture of qsparse pack files: llama.cpp does not know it, so it
// refuses the file ("unknown model architecture") instead of running a transposed layout.
const PackArch = "qsparse-llama"

// Pack format constants (FORMAT.md).
const (
	FormatVersion = 1
	PackAlignment = 4096
	LayoutF16Cols = "f16-cols" // read, no longer written: one pack per site matrix
	// LayoutF16ColsStacked is what fp16 packs are written as: q/k/v stacked in one pack
	// (blk.N.attn_qkv.f16cols) and gate/up in another (blk.N.ffn_gate_up.f16cols).
	LayoutF16ColsStacked = "f16-cols-stacked"
	LayoutTernary        = "ternary-q8"
	KeyVersion           = "qsparse.format_version"
	KeySourceArch        = "qsparse.source_architecture"
	KeyLayout            = "qsparse.layout"
	KeyProfile           = "qsparse.profile"
	KeyTernaryPPL        = "qsparse.ternary.ppl"
	KeySourcePPL         = "qsparse.ternary.source_ppl"
	KeyTernaryMode       = "qsparse.ternary.scale" // "tensor" or "column"
	KeyExact             = "qsparse.ternary.exact" // bool: the source weights were already ternary
)

// Tensor name suffixes of the site packs (blk.N.<matrix>.<suffix>).
const (
	SuffixF16Cols = ".f16cols"
	SuffixTQ8     = ".tq8"
	SuffixTScale  = ".tscale"
)

// PackTensorName returns the pack tensor name of a canonical site matrix name and a suffix:
// PackTensorName("blk.3.attn_q.weight", SuffixF16Cols) = "blk.3.attn_q.f16cols".
func PackTensorName(canonical, suffix string) string {
	return strings.TrimSuffix(canonical, ".weight") + suffix
}

// ggufArch returns the llama.cpp architecture a plain export is written as (llama.cpp's HF
// converter writes Mistral checkpoints as "llama") and whether its q/k rows are permuted.
func ggufArch(sp *model.Spec) (string, bool) {
	if sp.Arch == "qwen2" {
		return "qwen2", false
	}
	return "llama", true
}

// hyperKV returns the hyper-parameter keys of sp under arch's prefix, as llama.cpp names them.
// llama3 rope scaling is not written as keys: the rope_freqs.weight tensor carries it (see
// ropeFreqs), as llama.cpp's converter does.
func hyperKV(arch string, sp *model.Spec) []gguf.KV {
	p := arch + "."
	u := func(k string, v int) gguf.KV { return gguf.Uint32(p+k, uint32(v)) }
	kv := []gguf.KV{}
	if sp.CtxLen > 0 {
		kv = append(kv, u("context_length", sp.CtxLen))
	}
	kv = append(kv,
		u("embedding_length", sp.Dim),
		u("block_count", sp.NLayers),
		u("feed_forward_length", sp.FFNDim),
		u("attention.head_count", sp.NHeads),
		u("attention.head_count_kv", sp.NKVHeads),
		u("attention.key_length", sp.HeadDim),
		u("attention.value_length", sp.HeadDim),
		u("rope.dimension_count", sp.HeadDim),
		gguf.Float32(p+"rope.freq_base", float32(sp.RopeTheta)),
		gguf.Float32(p+"attention.layer_norm_rms_epsilon", float32(sp.NormEps)),
		u("vocab_size", sp.Vocab),
	)
	if sp.RopeScaling.Type == "linear" {
		kv = append(kv, gguf.String(p+"rope.scaling.type", "linear"),
			gguf.Float32(p+"rope.scaling.factor", float32(sp.RopeScaling.Factor)))
	}
	return kv
}

// ropeFreqs returns the rope_freqs.weight values to write: the checkpoint's own (own, nil if
// none), or for llama3 rope scaling of an HF checkpoint the per-pair divisors llama.cpp's
// converter computes.
func ropeFreqs(sp *model.Spec, own []float32) []float32 {
	if own != nil {
		return own
	}
	sc := sp.RopeScaling
	if sc.Type != "llama3" {
		return nil
	}
	half := sp.HeadDim / 2
	out := make([]float32, half)
	low := float64(sc.OrigCtxLen) / sc.LowFreqFactor
	high := float64(sc.OrigCtxLen) / sc.HighFreqFactor
	for i := range out {
		f := 1 / math.Pow(sp.RopeTheta, float64(2*i)/float64(sp.HeadDim))
		wavelen := 2 * math.Pi / f
		switch {
		case wavelen < high:
			out[i] = 1
		case wavelen > low:
			out[i] = float32(sc.Factor)
		default:
			smooth := (float64(sc.OrigCtxLen)/wavelen - sc.LowFreqFactor) / (sc.HighFreqFactor - sc.LowFreqFactor)
			out[i] = float32(1 / ((1-smooth)/sc.Factor + smooth))
		}
	}
	return out
}

// skipGeneral lists general.* keys of a source GGUF that describe the source file, not the
// model, and are not copied.
var skipGeneral = map[string]bool{
	"general.architecture": true, "general.alignment": true, "general.file_type": true,
	"general.quantization_version": true,
}

// sourceMeta returns the general.* and tokenizer.* keys of the checkpoint at path: copied
// unchanged from a GGUF file, or built from an HF folder's tokenizer files as llama.cpp's
// converter does.
func sourceMeta(path string, sp *model.Spec, chatTemplate string) (general, tok []gguf.KV, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !st.IsDir() {
		f, err := gguf.Open(path)
		if err != nil {
			return nil, nil, err
		}
		defer f.Close()
		for _, e := range f.KV {
			switch {
			case strings.HasPrefix(e.Key, "tokenizer."):
				tok = append(tok, e)
			case strings.HasPrefix(e.Key, "general.") && !skipGeneral[e.Key]:
				general = append(general, e)
			}
		}
		if len(tok) == 0 {
			return nil, nil, fmt.Errorf("%s has no tokenizer.* keys", path)
		}
		if !hasKey(general, "general.name") {
			general = append([]gguf.KV{gguf.String("general.name", sp.Name)}, general...)
		}
		return general, tok, nil
	}
	tj, err := os.ReadFile(filepath.Join(path, "tokenizer.json"))
	if err != nil {
		return nil, nil, fmt.Errorf("%w (the folder needs the tokenizer.json of the checkpoint)", err)
	}
	cj, err := os.ReadFile(filepath.Join(path, "tokenizer_config.json"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	v, err := tokenizer.VocabFromHF(tj, cj)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", filepath.Join(path, "tokenizer.json"), err)
	}
	general = []gguf.KV{gguf.String("general.name", sp.Name)}
	return general, vocabKV(v, chatTemplate, sp.Vocab), nil
}

func hasKey(kv []gguf.KV, key string) bool {
	for _, e := range kv {
		if e.Key == key {
			return true
		}
	}
	return false
}

// vocabKV writes a vocabulary as the tokenizer.ggml.* keys of llama.cpp's converter; the token
// list is padded with [PAD<i>] unused tokens to the embedding's nVocab rows, as it does.
func vocabKV(v *tokenizer.Vocab, chatTemplate string, nVocab int) []gguf.KV {
	tokens, types, scores := v.Tokens, v.Types, v.Scores
	if types == nil {
		types = make([]int32, len(tokens))
		for i := range types {
			types[i] = tokenizer.TypeNormal
		}
	}
	if n := len(tokens); n < nVocab {
		tokens = append(append([]string(nil), tokens...), make([]string, nVocab-n)...)
		types = append(append([]int32(nil), types...), make([]int32, nVocab-n)...)
		for i := n; i < nVocab; i++ {
			tokens[i] = fmt.Sprintf("[PAD%d]", i)
			types[i] = tokenizer.TypeUnused
		}
		if scores != nil {
			scores = append(append([]float32(nil), scores...), make([]float32, nVocab-n)...)
			for i := n; i < nVocab; i++ {
				scores[i] = -1000
			}
		}
	}
	pre := v.Pre
	if pre == "" {
		pre = "default"
	}
	kv := []gguf.KV{
		gguf.String("tokenizer.ggml.model", v.Model),
		gguf.String("tokenizer.ggml.pre", pre),
		gguf.Strings("tokenizer.ggml.tokens", tokens),
	}
	if scores != nil {
		kv = append(kv, gguf.Float32Array("tokenizer.ggml.scores", scores))
	}
	kv = append(kv, gguf.Int32Array("tokenizer.ggml.token_type", types))
	if v.Model == "gpt2" {
		kv = append(kv, gguf.Strings("tokenizer.ggml.merges", v.Merges))
	}
	for _, id := range []struct {
		key string
		id  int
	}{{"bos_token_id", v.BOS}, {"eos_token_id", v.EOS}, {"unknown_token_id", v.UNK}, {"padding_token_id", v.PAD}} {
		if id.id >= 0 {
			kv = append(kv, gguf.Uint32("tokenizer.ggml."+id.key, uint32(id.id)))
		}
	}
	kv = append(kv, gguf.Bool("tokenizer.ggml.add_space_prefix", v.AddSpacePrefix),
		gguf.Bool("tokenizer.ggml.add_bos_token", v.AddBOS), gguf.Bool("tokenizer.ggml.add_eos_token", v.AddEOS))
	if chatTemplate != "" {
		kv = append(kv, gguf.String("tokenizer.chat_template", chatTemplate))
	}
	return kv
}
