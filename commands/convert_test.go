package commands

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
)

func TestConvertCommand(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	dir := t.TempDir()
	out := filepath.Join(dir, "s.gguf")
	stdout, _, err := runApp(t, "convert", "-m", mp, "--format", "gguf-q8_0", "-o", out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "gguf-q8_0, 48 tensors") {
		t.Errorf("stdout %q", stdout)
	}
	// the export is a model qsparse loads
	if _, _, err := runApp(t, "inspect", out); err != nil {
		t.Errorf("inspect of the export: %v", err)
	}
	_, stderr, err := runApp(t, "convert", "-m", mp, "--format", "ternary", "-o", filepath.Join(dir, "t.gguf"))
	if err != nil || !strings.Contains(stderr, "ternary: perplexity on the check text") {
		t.Errorf("ternary: %v\n%s", err, stderr)
	}
	for _, args := range [][]string{
		{"convert", "-m", mp, "--format", "q5_k", "-o", filepath.Join(dir, "x.gguf")},
		{"convert", "-m", mp, "--format", "fp16"},
		{"convert", "-m", out, "--format", "fp16", "-o", out},
		{"convert", "--format", "fp16", "-o", filepath.Join(dir, "x.gguf")},
		{"convert", "-m", mp, "--per-column", "-o", filepath.Join(dir, "x.gguf")},
	} {
		if _, _, err := runApp(t, args...); !errUsage(err) {
			t.Errorf("%q: error %v, want a usage error", args, err)
		}
	}
	es, _ := os.ReadDir(dir)
	if len(es) != 2 {
		t.Errorf("%d files in %s, want the 2 outputs", len(es), dir)
	}
}
