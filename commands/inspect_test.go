package commands

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
)

// TestInspectHFFolderMissing: a Hugging Face folder without weights (or tokenizer.json) is
// reported file by file, not as an opaque loader error.
func TestInspectHFFolderMissing(t *testing.T) {
	src := testenv.Path(t, "smollm2-hf") // config and tokenizer files, no weights
	link := func(dir string, names ...string) {
		for _, n := range names {
			if err := os.Symlink(filepath.Join(src, n), filepath.Join(dir, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	noWeights := t.TempDir()
	link(noWeights, "config.json", "tokenizer.json", "tokenizer_config.json")
	_, _, err := runApp(t, "inspect", noWeights)
	if err == nil || !strings.Contains(err.Error(), "missing model.safetensors or model.safetensors.index.json") ||
		strings.Contains(err.Error(), "tokenizer.json") || !strings.HasPrefix(Message(err), "qsparse inspect: ") {
		t.Fatalf("no weights: %v", err)
	}
	noTok := t.TempDir()
	link(noTok, "config.json")
	_, _, err = runApp(t, "inspect", noTok, "--json")
	if err == nil || !strings.Contains(err.Error(), "tokenizer.json (the tokenizer)") || !strings.Contains(err.Error(), "(the weights)") {
		t.Fatalf("no tokenizer: %v", err)
	}
	empty := t.TempDir()
	_, _, err = runApp(t, "inspect", empty)
	if err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Fatalf("empty folder: %v", err)
	}
}

func TestInspectTokens(t *testing.T) {
	mp := testenv.SmolLM2Path(t)
	out, _, err := runApp(t, "inspect", mp, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var info inspectJSON
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	if info.ChatTemplateKind != "chatml" || !info.ChatTemplate || info.BOS != 1 || info.EOS != 2 {
		t.Fatalf("chat template %q, BOS %d, EOS %d", info.ChatTemplateKind, info.BOS, info.EOS)
	}
	out, _, err = runApp(t, "inspect", mp)
	if err != nil || !strings.Contains(out, "chat template:     chatml") || !strings.Contains(out, `special tokens:    BOS 1 "<|im_start|>", EOS 2 "<|im_end|>"`) {
		t.Fatalf("%v\n%.1500s", err, out)
	}
	sp := testenv.Path(t, "stories260K.gguf")
	out, _, err = runApp(t, "inspect", sp)
	if err != nil || !strings.Contains(out, "chat template:     none") {
		t.Fatalf("%v\n%.1500s", err, out)
	}
}
