package tokenizer_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/qsparse/qsparse/tokenizer"
)

func tinyBPE(t *testing.T, pre string) *tokenizer.Tokenizer {
	t.Helper()
	v := &tokenizer.Vocab{Model: "gpt2", Pre: pre, AddBOS: pre == "llama-bpe", BOS: 0, EOS: 1, UNK: -1, PAD: -1, EOT: -1,
		Tokens: []string{"<|begin_of_text|>", "<|end_of_text|>", "Ġ", "h", "e", "l", "o", "Ġhello", "he", "ll", "2", "0", "6", "202", "Ġ2", "<tool>"},
		Types:  []int32{3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4},
		Merges: []string{"h e", "l l", "2 0"},
	}
	tok, err := tokenizer.New(v)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestBPEPreTypes(t *testing.T) {
	for _, c := range []struct {
		pre    string
		text   string
		addSp  bool
		want   []int
		addBOS bool
	}{
		// llama-bpe ignores merges for words that are whole tokens, and adds BOS by default
		{"llama-bpe", " hello", true, []int{0, 7}, true},
		{"gpt2", " hello", true, []int{2, 8, 9, 6}, false},
		// numbers: llama3 groups up to 3 digits, qwen2 and smollm split them one by one
		{"llama-bpe", "2026", false, []int{13, 12}, true},
		{"qwen2", "2026", false, []int{10, 11, 10, 12}, false},
		{"smollm", "2026", false, []int{10, 11, 10, 12}, false},
		// "2 0" merges into "20", which is no token: llama.cpp then looks up its single bytes
		{"gpt2", "2026", false, []int{10, 11, 10, 12}, false},
		// user-defined tokens are matched even without parseSpecial
		{"gpt2", "he<tool>", false, []int{8, 15}, false},
	} {
		tok := tinyBPE(t, c.pre)
		if tok.AddBOS() != c.addBOS {
			t.Errorf("%s: AddBOS %v", c.pre, tok.AddBOS())
		}
		got := tok.Encode(c.text, c.addSp, false)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s Encode(%q) = %v, want %v", c.pre, c.text, got, c.want)
		}
	}
}

// fakeMeta is a map-backed tokenizer.Metadata.
type fakeMeta map[string]any

func (m fakeMeta) String(k string) (string, bool)      { v, ok := m[k].(string); return v, ok }
func (m fakeMeta) Uint(k string) (uint64, bool)        { v, ok := m[k].(uint64); return v, ok }
func (m fakeMeta) Bool(k string) (bool, bool)          { v, ok := m[k].(bool); return v, ok }
func (m fakeMeta) Strings(k string) ([]string, bool)   { v, ok := m[k].([]string); return v, ok }
func (m fakeMeta) Float32s(k string) ([]float32, bool) { v, ok := m[k].([]float32); return v, ok }
func (m fakeMeta) Int32s(k string) ([]int32, bool)     { v, ok := m[k].([]int32); return v, ok }

func TestVocabFromGGUFDefaults(t *testing.T) {
	toks := make([]string, 20)
	for i := range toks {
		toks[i] = string(rune('a' + i))
	}
	v, err := tokenizer.VocabFromGGUF(fakeMeta{"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "llama-bpe",
		"tokenizer.ggml.tokens": toks, "tokenizer.ggml.merges": []string{"a b"}})
	if err != nil {
		t.Fatal(err)
	}
	if !v.AddBOS || v.BOS != 11 || v.EOS != 11 || v.UNK != -1 || v.AddSpacePrefix {
		t.Errorf("llama-bpe defaults: %+v", *v)
	}
	v, err = tokenizer.VocabFromGGUF(fakeMeta{"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": toks,
		"tokenizer.ggml.eos_token_id": uint64(0xFFFFFFFF), "tokenizer.ggml.add_bos_token": false})
	if err != nil {
		t.Fatal(err)
	}
	if v.AddBOS || v.BOS != 1 || v.EOS != 2 || v.UNK != 0 || !v.AddSpacePrefix {
		t.Errorf("llama defaults: %+v", *v)
	}
	for _, m := range []fakeMeta{
		{},
		{"tokenizer.ggml.model": "bert", "tokenizer.ggml.tokens": toks},
		{"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": toks},
		{"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "nonesuch", "tokenizer.ggml.tokens": toks, "tokenizer.ggml.merges": []string{}},
		{"tokenizer.ggml.model": "llama"},
	} {
		if _, err := tokenizer.VocabFromGGUF(m); !errors.Is(err, tokenizer.ErrVocab) {
			t.Errorf("VocabFromGGUF(%v): err = %v", m, err)
		}
	}
}
