package tokenizer

import (
	"errors"
	"fmt"
)

// Token types as stored in GGUF tokenizer.ggml.token_type (llama.cpp's llama_token_type).
const (
	TypeUndefined   int32 = 0
	TypeNormal      int32 = 1
	TypeUnknown     int32 = 2
	TypeControl     int32 = 3
	TypeUserDefined int32 = 4
	TypeUnused      int32 = 5
	TypeByte        int32 = 6
)

// Vocab is everything a tokenizer needs, as read from GGUF metadata (VocabFromGGUF) or from a
// Hugging Face tokenizer.json (VocabFromHF).
type Vocab struct {
	Model  string    // "llama" (SentencePiece BPE with scores) or "gpt2" (byte-level BPE with merges)
	Pre    string    // pre-tokenizer name as in tokenizer.ggml.pre: "default","gpt2","llama-bpe","qwen2","smollm",...
	Tokens []string  // token texts; the index is the id
	Scores []float32 // per-token scores ("llama"); nil means all zero
	Types  []int32   // llama.cpp token types (Type*); nil means all normal
	Merges []string  // "a b", in rank order ("gpt2")

	BOS, EOS, UNK, PAD, EOT int // -1 when absent

	AddBOS, AddEOS, AddSpacePrefix bool
}

// ErrVocab is wrapped by every error about an unusable vocabulary.
var ErrVocab = errors.New("tokenizer: bad vocabulary")

// Metadata is the subset of GGUF metadata access VocabFromGGUF needs; *gguf.File satisfies it.
type Metadata interface {
	String(key string) (string, bool)
	Uint(key string) (uint64, bool)
	Bool(key string) (bool, bool)
	Strings(key string) ([]string, bool)
	Float32s(key string) ([]float32, bool)
	Int32s(key string) ([]int32, bool)
}

// VocabFromGGUF reads the tokenizer.ggml.* keys and applies llama.cpp's defaults for the keys that
// are absent (llama_vocab::impl::load): "llama" vocabs default to BOS 1, EOS 2, UNK 0, a space
// prefix and an added BOS; "gpt2" vocabs to BOS = EOS = 11, no UNK, and an added BOS only for the
// Llama-3 family of pre-tokenizers. Special ids out of range are disabled (-1).
func VocabFromGGUF(md Metadata) (*Vocab, error) {
	model, ok := md.String("tokenizer.ggml.model")
	if !ok {
		return nil, fmt.Errorf("%w: GGUF has no tokenizer.ggml.model key (the file carries no tokenizer; use the model's tokenizer.json)", ErrVocab)
	}
	v := &Vocab{Model: model, BOS: -1, EOS: -1, UNK: -1, PAD: -1, EOT: -1}
	v.Pre, _ = md.String("tokenizer.ggml.pre")
	switch model {
	case "llama":
		v.BOS, v.EOS, v.UNK = 1, 2, 0
		v.AddSpacePrefix, v.AddBOS = true, true
	case "gpt2":
		v.BOS, v.EOS = 11, 11
		if v.Pre == "" {
			v.Pre = "default"
		}
		pi, err := lookupPre(v.Pre)
		if err != nil {
			return nil, err
		}
		v.AddBOS = pi.addBOS
		merges, ok := md.Strings("tokenizer.ggml.merges")
		if !ok {
			return nil, fmt.Errorf("%w: gpt2 tokenizer without tokenizer.ggml.merges", ErrVocab)
		}
		v.Merges = merges
	default:
		return nil, fmt.Errorf("%w: tokenizer model %q is not supported (only \"llama\" and \"gpt2\")", ErrVocab, model)
	}
	toks, ok := md.Strings("tokenizer.ggml.tokens")
	if !ok || len(toks) == 0 {
		return nil, fmt.Errorf("%w: GGUF has no tokenizer.ggml.tokens", ErrVocab)
	}
	v.Tokens = toks
	if s, ok := md.Float32s("tokenizer.ggml.scores"); ok {
		v.Scores = s
	} else if s, ok := md.Int32s("tokenizer.ggml.scores"); ok {
		v.Scores = make([]float32, len(s))
		for i, x := range s {
			v.Scores[i] = float32(x)
		}
	}
	if t, ok := md.Int32s("tokenizer.ggml.token_type"); ok {
		v.Types = t
	}
	n := uint64(len(toks))
	for _, sp := range []struct {
		key string
		dst *int
	}{
		{"tokenizer.ggml.bos_token_id", &v.BOS},
		{"tokenizer.ggml.eos_token_id", &v.EOS},
		{"tokenizer.ggml.eot_token_id", &v.EOT},
		{"tokenizer.ggml.unknown_token_id", &v.UNK},
		{"tokenizer.ggml.padding_token_id", &v.PAD},
	} {
		if *sp.dst >= 0 && uint64(*sp.dst) >= n {
			*sp.dst = -1
		}
		if id, ok := md.Uint(sp.key); ok && id < n {
			*sp.dst = int(id)
		}
	}
	if b, ok := md.Bool("tokenizer.ggml.add_bos_token"); ok {
		v.AddBOS = b
	}
	if b, ok := md.Bool("tokenizer.ggml.add_eos_token"); ok {
		v.AddEOS = b
	}
	if b, ok := md.Bool("tokenizer.ggml.add_space_prefix"); ok {
		v.AddSpacePrefix = b
	}
	if _, err := New(v); err != nil {
		return nil, err
	}
	return v, nil
}

// token attributes (llama.cpp's llama_token_attr bits)
const (
	attrUndefined   = 0
	attrUnknown     = 1 << 0
	attrUnused      = 1 << 1
	attrNormal      = 1 << 2
	attrControl     = 1 << 3
	attrUserDefined = 1 << 4
	attrByte        = 1 << 5
)

func typeToAttr(t int32) uint8 {
	switch t {
	case TypeUnknown:
		return attrUnknown
	case TypeUnused:
		return attrUnused
	case TypeNormal:
		return attrNormal
	case TypeControl:
		return attrControl
	case TypeUserDefined:
		return attrUserDefined
	case TypeByte:
		return attrByte
	}
	return attrUndefined
}

// Token texts llama.cpp recognises by name (llama-vocab.cpp, commit 3f545bec).
var (
	eotNames = []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
		"<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"}
	eomNames    = []string{"<|eom_id|>"}
	fimPreNames = []string{"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"}
	fimSufNames = []string{"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"}
	fimMidNames = []string{"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"}
	fimPadNames = []string{"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"}
	fimRepNames = []string{"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"}
	fimSepNames = []string{"<|file_sep|>"}
	eogNames    = []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
		"<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
		"<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~["}
)
