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

// TestTernaryPackCommands: a ternary pack (with a profile) runs everywhere a pack runs:
// inspect names its layout, run generates, eval measures a perplexity close to the pack's own
// check and bench reports the ternary layout, its profile beside dense.
func TestTernaryPackCommands(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	data := testenv.Path(t, "tinystories_valid_first1000.txt")
	dir := t.TempDir()
	prof := filepath.Join(dir, "u50.json")
	if _, _, err := runApp(t, "calibrate", "-m", mp, "-f", data, "--method", "uniform", "--target", "0.5", "--tokens", "1024", "-o", prof); err != nil {
		t.Fatal(err)
	}
	pk := filepath.Join(dir, "t.gguf")
	if _, _, err := runApp(t, "convert", "-m", mp, "--format", "ternary", "--profile", prof, "-o", pk); err != nil {
		t.Fatal(err)
	}
	out, _, err := runApp(t, "inspect", pk)
	if err != nil || !strings.Contains(out, "pack layout:       ternary-q8") || !strings.Contains(out, "blk.0.attn_q.tq8") {
		t.Fatalf("inspect: %v\n%.1500s", err, out)
	}
	// the pack holds the source's weights: the same parameter count (not the codes' bytes)
	if src, _, _ := runApp(t, "inspect", mp); !strings.Contains(src, "(292800)") || !strings.Contains(out, "(292800)") {
		t.Errorf("inspect params: source and ternary pack should both count 292800 weights\n%.400s\n%.400s", src, out)
	}
	if out, _, err = runApp(t, "inspect", pk, "--json"); err != nil || !strings.Contains(out, `"pack_layout": "ternary-q8"`) {
		t.Fatalf("inspect --json: %v\n%.1500s", err, out)
	}
	out, errs, err := runApp(t, "run", "-m", pk, "-p", "Once upon a time", "-n", "8", "--temp", "0")
	if err != nil || out == "" || !strings.Contains(errs, "layout ternary-q8") {
		t.Fatalf("run: %v\nstdout %q\nstderr %s", err, out, errs)
	}
	if out, errs, err = runApp(t, "eval", "-m", pk, "-f", data, "-c", "128", "--chunks", "2", "--json"); err != nil || !strings.Contains(out, `"ppl"`) {
		t.Fatalf("eval: %v\n%s\n%s", err, out, errs)
	}
	// eval evaluates the pack's own profile beside dense unless told otherwise
	if !strings.Contains(out, `"pack profile"`) || !strings.Contains(errs, "carries a sparsity profile") {
		t.Errorf("eval of a pack with a profile: no pack profile row\n%s\n%s", out, errs)
	}
	if out, _, err = runApp(t, "eval", "-m", pk, "-f", data, "-c", "128", "--chunks", "2", "--json", "--sparsity", "0"); err != nil || strings.Contains(out, `"pack profile"`) {
		t.Errorf("eval --sparsity 0 of a pack: %v\n%s", err, out)
	}
	out, _, err = runApp(t, "bench", "-m", pk, "-p", "16", "-n", "4", "-r", "1")
	if err != nil || !strings.Contains(out, "ternary-q8") {
		t.Fatalf("bench: %v\n%s", err, out)
	}
}
