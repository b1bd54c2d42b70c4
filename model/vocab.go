package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/qsparse/qsparse/gguf"
	"github.com/qsparse/qsparse/tokenizer"
)

// ggufVocab builds a tokenizer.Vocab from the GGUF tokenizer.ggml.* keys (with llama.cpp's
// defaults, see tokenizer.VocabFromGGUF) and returns the chat template (tokenizer.chat_template,
// "" if absent).
func ggufVocab(f *gguf.File, name string) (*tokenizer.Vocab, string, error) {
	if _, ok := f.String("tokenizer.ggml.model"); !ok {
		return nil, "", errorf(ErrNoTokenizer, "model %s: the GGUF has no tokenizer metadata (tokenizer.ggml.model); re-convert it with llama.cpp's convert_hf_to_gguf.py, or load the Hugging Face folder", name)
	}
	v, err := tokenizer.VocabFromGGUF(f)
	if err != nil {
		return nil, "", fmt.Errorf("model %s: %w", name, err)
	}
	tmpl, _ := f.String("tokenizer.chat_template")
	return v, tmpl, nil
}

// hfVocab reads tokenizer.json and tokenizer_config.json (optional) of an HF folder.
func hfVocab(dir, name string) (*tokenizer.Vocab, string, error) {
	tj, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return nil, "", errorf(ErrNoTokenizer, "model %s: %w (the folder needs the tokenizer.json of the checkpoint)", name, err)
	}
	cj, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("model %s: %w", name, err)
	}
	v, err := tokenizer.VocabFromHF(tj, cj)
	if err != nil {
		return nil, "", fmt.Errorf("model %s: %s: %w", name, filepath.Join(dir, "tokenizer.json"), err)
	}
	tmpl, err := hfChatTemplate(cj)
	if err != nil {
		return nil, "", fmt.Errorf("model %s: tokenizer_config.json: %w", name, err)
	}
	return v, tmpl, nil
}

// hfChatTemplate returns tokenizer_config.json's chat_template: a string, or a list of
// {name, template} of which the one named "default" (else the first) is taken.
func hfChatTemplate(cfg []byte) (string, error) {
	if cfg == nil {
		return "", nil
	}
	var c struct {
		ChatTemplate json.RawMessage `json:"chat_template"`
	}
	if err := json.Unmarshal(cfg, &c); err != nil {
		return "", err
	}
	if len(c.ChatTemplate) == 0 || string(c.ChatTemplate) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(c.ChatTemplate, &s) == nil {
		return s, nil
	}
	var list []struct{ Name, Template string }
	if err := json.Unmarshal(c.ChatTemplate, &list); err != nil {
		return "", fmt.Errorf("chat_template is neither a string nor a list of {name, template}: %w", err)
	}
	for _, t := range list {
		if t.Name == "default" {
			return t.Template, nil
		}
	}
	if len(list) > 0 {
		return list[0].Template, nil
	}
	return "", nil
}
