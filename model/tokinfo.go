package model

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/qsparse/qsparse/gguf"
	"github.com/qsparse/qsparse/tokenizer"
)

// TokenizerInfo describes a checkpoint's tokenizer and chat template.
type TokenizerInfo struct {
	Kind          string // "llama" (SentencePiece BPE) or "gpt2" (byte-level BPE)
	Size          int    // tokens
	BOS, EOS, EOT int    // special token ids, -1 when absent
	AddBOS        bool   // whether encoding adds BOS
	// BOSText, EOSText, EOTText are the token texts ("" when absent).
	BOSText, EOSText, EOTText string
	ChatTemplate              string // the Jinja chat template, "" if none
}

// InspectTokenizer reads the tokenizer of a GGUF file (its tokenizer.ggml.* keys) or of a
// Hugging Face folder (tokenizer.json and tokenizer_config.json; the folder needs no weights),
// without reading tensor data.
func InspectTokenizer(path string) (*TokenizerInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if st.IsDir() {
		v, tmpl, err := hfVocab(path, filepath.Base(filepath.Clean(path)))
		if err != nil {
			return nil, err
		}
		return newTokenizerInfo(v, tmpl), nil
	}
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	v, tmpl, err := ggufVocab(f, path)
	if err != nil {
		return nil, err
	}
	return newTokenizerInfo(v, tmpl), nil
}

func newTokenizerInfo(v *tokenizer.Vocab, tmpl string) *TokenizerInfo {
	text := func(id int) string {
		if id < 0 || id >= len(v.Tokens) {
			return ""
		}
		return v.Tokens[id]
	}
	return &TokenizerInfo{Kind: v.Model, Size: len(v.Tokens), BOS: v.BOS, EOS: v.EOS, EOT: v.EOT, AddBOS: v.AddBOS,
		ChatTemplate: tmpl, BOSText: text(v.BOS), EOSText: text(v.EOS), EOTText: text(v.EOT)}
}
