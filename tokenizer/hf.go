package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Hugging Face tokenizer.json support: the same vocabulary llama.cpp's convert_hf_to_gguf.py would
// write, so that Encode gives the ids llama.cpp gives on the converted GGUF.

type hfAddedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	Special    bool   `json:"special"`
	Normalized bool   `json:"normalized"`
}

type hfTokenizer struct {
	AddedTokens   []hfAddedToken  `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         struct {
		Type         string          `json:"type"`
		Vocab        map[string]int  `json:"vocab"`
		Merges       json.RawMessage `json:"merges"`
		ByteFallback bool            `json:"byte_fallback"`
		IgnoreMerges bool            `json:"ignore_merges"`
		UnkToken     *string         `json:"unk_token"`
	} `json:"model"`
}

type hfPart struct {
	Type             string          `json:"type"`
	Pretokenizers    []hfPart        `json:"pretokenizers"`
	Normalizers      []hfPart        `json:"normalizers"`
	Processors       []hfPart        `json:"processors"`
	IndividualDigits bool            `json:"individual_digits"`
	AddPrefixSpace   *bool           `json:"add_prefix_space"`
	UseRegex         *bool           `json:"use_regex"`
	Pattern          json.RawMessage `json:"pattern"`
	Prepend          string          `json:"prepend"`
	Replacement      string          `json:"replacement"`
	PrependScheme    string          `json:"prepend_scheme"`
	Single           []map[string]struct {
		ID string `json:"id"`
	} `json:"single"`
}

const (
	hfRegexGPT2   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	hfRegexLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	hfRegexQwen2  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// VocabFromHF builds a vocabulary from a Hugging Face tokenizer.json and (optionally, may be nil)
// tokenizer_config.json. Supported: model type BPE, byte-level (SmolLM2, Llama-3, Qwen2, GPT-2
// style pre-tokenizers) or SentencePiece-style with byte_fallback (Llama-2 style; scores follow
// merge order). Added tokens marked special (or looking special, as the converter decides)
// become control tokens, others user-defined. BOS / EOS / UNK / PAD and add_bos_token /
// add_eos_token come from tokenizer_config.json, else from a TemplateProcessing post-processor,
// else llama.cpp's defaults (add_bos per pre-tokenizer; SentencePiece ids 1 / 2 / 0). Byte-level
// special ids named nowhere are -1 (config.json is not read).
func VocabFromHF(tokenizerJSON, tokenizerConfigJSON []byte) (*Vocab, error) {
	var tj hfTokenizer
	if err := json.Unmarshal(tokenizerJSON, &tj); err != nil {
		return nil, fmt.Errorf("%w: tokenizer.json: %w", ErrVocab, err)
	}
	if tj.Model.Type != "BPE" {
		return nil, fmt.Errorf("%w: tokenizer.json model type %q is not supported (only BPE)", ErrVocab, tj.Model.Type)
	}
	var cfg map[string]json.RawMessage
	if len(tokenizerConfigJSON) > 0 {
		if err := json.Unmarshal(tokenizerConfigJSON, &cfg); err != nil {
			return nil, fmt.Errorf("%w: tokenizer_config.json: %w", ErrVocab, err)
		}
	}

	// ids 0..max over the vocab and the added tokens
	n := 0
	for _, id := range tj.Model.Vocab {
		if id < 0 || id >= 1<<24 {
			return nil, fmt.Errorf("%w: tokenizer.json vocab id %d out of range", ErrVocab, id)
		}
		n = max(n, id+1)
	}
	for _, at := range tj.AddedTokens {
		if at.ID < 0 || at.ID >= 1<<24 {
			return nil, fmt.Errorf("%w: tokenizer.json added token id %d out of range", ErrVocab, at.ID)
		}
		n = max(n, at.ID+1)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: tokenizer.json has an empty vocab", ErrVocab)
	}
	if limit := 2*(len(tj.Model.Vocab)+len(tj.AddedTokens)) + 1024; n > limit {
		return nil, fmt.Errorf("%w: tokenizer.json ids go up to %d for only %d tokens (too sparse to be a real vocab)", ErrVocab, n-1, len(tj.Model.Vocab)+len(tj.AddedTokens))
	}
	v := &Vocab{BOS: -1, EOS: -1, UNK: -1, PAD: -1, EOT: -1}
	v.Tokens = make([]string, n)
	v.Types = make([]int32, n)
	have := make([]bool, n)
	for s, id := range tj.Model.Vocab {
		v.Tokens[id] = s
		v.Types[id] = TypeNormal
		have[id] = true
	}
	for i := range v.Tokens {
		if !have[i] {
			v.Tokens[i] = fmt.Sprintf("[PAD%d]", i)
			v.Types[i] = TypeUnused
		}
	}
	spm := tj.Model.ByteFallback
	for _, at := range tj.AddedTokens {
		v.Tokens[at.ID] = at.Content
		switch {
		case at.Special || looksSpecial(at.Content):
			v.Types[at.ID] = TypeControl
		default:
			v.Types[at.ID] = TypeUserDefined
			if !spm {
				v.Tokens[at.ID] = strings.ReplaceAll(at.Content, "\u2581", " ")
			}
		}
	}

	merges, err := hfMerges(tj.Model.Merges)
	if err != nil {
		return nil, err
	}

	if spm {
		v.Model = "llama"
		v.AddSpacePrefix = hfPrependsSpace(tj.Normalizer, tj.PreTokenizer)
		v.BOS, v.EOS, v.UNK = 1, 2, 0
		v.AddBOS = true
		// SentencePiece merges by score: give each merge result the priority of its merge rank.
		v.Scores = make([]float32, n)
		for i := range v.Scores {
			v.Scores[i] = -1e9
		}
		ids := make(map[string]int, n)
		for i, s := range v.Tokens {
			ids[s] = i
		}
		for r, m := range merges {
			a, b, ok := strings.Cut(m, " ")
			if !ok {
				continue
			}
			if id, ok := ids[a+b]; ok && v.Scores[id] == -1e9 {
				v.Scores[id] = -float32(r)
			}
		}
		for i, s := range v.Tokens {
			if len(s) == 6 && strings.HasPrefix(s, "<0x") && s[5] == '>' && have[i] {
				v.Types[i] = TypeByte
			}
		}
	} else {
		v.Model = "gpt2"
		v.Merges = merges
		pre, err := hfPre(tj.PreTokenizer)
		if err != nil {
			return nil, err
		}
		v.Pre = pre
		// llama.cpp's BOS = EOS = 11 default would be an arbitrary token here: the converter takes
		// these ids from the tokenizer files (or config.json, which is not read here), so
		// without them there is none.
		pi, _ := lookupPre(pre)
		v.AddBOS = pi.addBOS
	}
	if v.BOS >= n {
		v.BOS = -1
	}
	if v.EOS >= n {
		v.EOS = -1
	}
	if v.UNK >= n {
		v.UNK = -1
	}

	// special tokens: tokenizer_config first (as gguf-py SpecialVocab), then the post-processor
	tokID := func(s string) int {
		for _, at := range tj.AddedTokens {
			if at.Content == s {
				return at.ID
			}
		}
		if id, ok := tj.Model.Vocab[s]; ok {
			return id
		}
		return -1
	}
	var pp hfPart
	if len(tj.PostProcessor) > 0 && string(tj.PostProcessor) != "null" {
		if err := json.Unmarshal(tj.PostProcessor, &pp); err != nil {
			return nil, fmt.Errorf("%w: tokenizer.json post_processor: %w", ErrVocab, err)
		}
		procs := pp.Processors
		if len(procs) == 0 {
			procs = []hfPart{pp}
		}
		for _, p := range procs {
			if p.Type != "TemplateProcessing" || len(p.Single) < 2 {
				continue
			}
			if first, ok := p.Single[0]["SpecialToken"]; ok {
				if id := tokID(first.ID); id >= 0 {
					v.BOS, v.AddBOS = id, true
				}
			}
			if last, ok := p.Single[len(p.Single)-1]["SpecialToken"]; ok {
				if id := tokID(last.ID); id >= 0 {
					v.EOS, v.AddEOS = id, true
				}
			}
		}
	}
	if cfg != nil {
		for _, sp := range []struct {
			key string
			dst *int
		}{{"bos_token", &v.BOS}, {"eos_token", &v.EOS}, {"unk_token", &v.UNK}, {"pad_token", &v.PAD}} {
			if s, ok := hfTokenString(cfg[sp.key]); ok {
				if id := tokID(s); id >= 0 {
					*sp.dst = id
				}
			}
		}
		if b, ok := hfBool(cfg["add_bos_token"]); ok {
			v.AddBOS = b
		}
		if b, ok := hfBool(cfg["add_eos_token"]); ok {
			v.AddEOS = b
		}
	}
	if _, err := New(v); err != nil {
		return nil, err
	}
	return v, nil
}

// looksSpecial is convert_hf_to_gguf's does_token_look_special.
func looksSpecial(s string) bool {
	switch s {
	case "<pad>", "<mask>", "<2mass>", "[@BOS@]":
		return true
	}
	return (strings.HasPrefix(s, "<|") && strings.HasSuffix(s, "|>")) ||
		(strings.HasPrefix(s, "<｜") && strings.HasSuffix(s, "｜>")) ||
		(strings.HasPrefix(s, "<unused") && strings.HasSuffix(s, ">"))
}

// hfMerges reads merges in the "a b" form or the [a, b] form (spaces inside a part are encoded as
// U+0120, as gguf-py does).
func hfMerges(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var strs []string
	if err := json.Unmarshal(raw, &strs); err == nil {
		return strs, nil
	}
	var pairs [][]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, fmt.Errorf("%w: tokenizer.json merges are neither strings nor pairs: %w", ErrVocab, err)
	}
	out := make([]string, len(pairs))
	for i, p := range pairs {
		if len(p) != 2 {
			return nil, fmt.Errorf("%w: tokenizer.json merge %d has %d parts", ErrVocab, i, len(p))
		}
		out[i] = strings.ReplaceAll(p[0], " ", "\u0120") + " " + strings.ReplaceAll(p[1], " ", "\u0120")
	}
	return out, nil
}

// hfPre maps a byte-level pre_tokenizer to a llama.cpp pre-tokenizer name.
func hfPre(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", fmt.Errorf("%w: byte-level tokenizer.json without a pre_tokenizer is not supported", ErrVocab)
	}
	var p hfPart
	if err := json.Unmarshal(raw, &p); err != nil {
		return "", fmt.Errorf("%w: tokenizer.json pre_tokenizer: %w", ErrVocab, err)
	}
	parts := []hfPart{p}
	if p.Type == "Sequence" {
		parts = p.Pretokenizers
	}
	var kinds []string
	for _, q := range parts {
		switch q.Type {
		case "ByteLevel":
			if q.AddPrefixSpace != nil && *q.AddPrefixSpace {
				return "", fmt.Errorf("%w: ByteLevel pre-tokenizer with add_prefix_space is not supported", ErrVocab)
			}
			if q.UseRegex == nil || *q.UseRegex {
				kinds = append(kinds, "bytelevel-regex")
			} else {
				kinds = append(kinds, "bytelevel")
			}
		case "Digits":
			if !q.IndividualDigits {
				return "", fmt.Errorf("%w: Digits pre-tokenizer without individual_digits is not supported", ErrVocab)
			}
			kinds = append(kinds, "digits")
		case "Split":
			var pat struct {
				Regex  *string `json:"Regex"`
				String *string `json:"String"`
			}
			_ = json.Unmarshal(q.Pattern, &pat)
			switch {
			case pat.Regex != nil && *pat.Regex == hfRegexLlama3:
				kinds = append(kinds, "split-llama3")
			case pat.Regex != nil && *pat.Regex == hfRegexQwen2:
				kinds = append(kinds, "split-qwen2")
			case pat.Regex != nil && *pat.Regex == hfRegexGPT2:
				kinds = append(kinds, "split-gpt2")
			default:
				return "", fmt.Errorf("%w: Split pre-tokenizer pattern %s is not supported", ErrVocab, string(q.Pattern))
			}
		default:
			return "", fmt.Errorf("%w: pre-tokenizer %q is not supported", ErrVocab, q.Type)
		}
	}
	switch strings.Join(kinds, ",") {
	case "bytelevel-regex", "split-gpt2,bytelevel":
		return "gpt2", nil
	case "digits,bytelevel-regex":
		return "smollm", nil
	case "split-llama3,bytelevel":
		return "llama-bpe", nil
	case "split-qwen2,bytelevel":
		return "qwen2", nil
	}
	return "", fmt.Errorf("%w: pre-tokenizer sequence %v is not supported", ErrVocab, kinds)
}

// hfPrependsSpace reports whether a SentencePiece-style tokenizer.json adds "▁" in front of the
// text (normalizer Prepend "▁", or a Metaspace pre-tokenizer with prepend_scheme other than never).
func hfPrependsSpace(normalizer, pre json.RawMessage) bool {
	walk := func(raw json.RawMessage, f func(hfPart) bool) bool {
		if len(raw) == 0 || string(raw) == "null" {
			return false
		}
		var p hfPart
		if json.Unmarshal(raw, &p) != nil {
			return false
		}
		parts := append([]hfPart{p}, p.Normalizers...)
		parts = append(parts, p.Pretokenizers...)
		for _, q := range parts {
			if f(q) {
				return true
			}
		}
		return false
	}
	if walk(normalizer, func(q hfPart) bool { return q.Type == "Prepend" && q.Prepend == "\u2581" }) {
		return true
	}
	return walk(pre, func(q hfPart) bool {
		return q.Type == "Metaspace" && q.PrependScheme != "never" && (q.AddPrefixSpace == nil || *q.AddPrefixSpace)
	})
}

func hfTokenString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var o struct {
		Content *string `json:"content"`
	}
	if json.Unmarshal(raw, &o) == nil && o.Content != nil {
		return *o.Content, true
	}
	return "", false
}

func hfBool(raw json.RawMessage) (bool, bool) {
	var b bool
	if len(raw) == 0 || json.Unmarshal(raw, &b) != nil {
		return false, false
	}
	return b, true
}
