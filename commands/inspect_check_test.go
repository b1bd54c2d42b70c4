package commands

import (
	"strings"
	"testing"

	"github.com/qsparse/qsparse/gguf"
	"github.com/qsparse/qsparse/internal/testenv"
)

// TestInspectReportsProblems: inspect checks a checkpoint as Load does and prints every
// problem (here: layers the hyper-parameters do not count) instead of a clean bill, then fails.
func TestInspectReportsProblems(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	short := writeVariant(t, mp, func(kv []gguf.KV) []gguf.KV {
		for i := range kv {
			if kv[i].Key == "llama.block_count" {
				kv[i] = gguf.Uint32("llama.block_count", 4)
			}
		}
		return kv
	})
	out, _, err := runApp(t, "inspect", short)
	if err == nil || !strings.Contains(err.Error(), "problem") {
		t.Fatalf("inspect of a 4-layer header over 5 layers of tensors: err %v, want a problem", err)
	}
	if !strings.Contains(out, "tensors of layer 4 are present, but the hyper-parameters say 4 layers") {
		t.Errorf("inspect output lacks the problem line:\n%s", out)
	}
	if _, _, err := runApp(t, "inspect", mp); err != nil {
		t.Errorf("inspect of the sound file: %v", err)
	}
}
