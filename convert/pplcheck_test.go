package convert

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/qsparse/qsparse/eval"
	"github.com/qsparse/qsparse/internal/testenv"
)

// TestSmolLM2TernaryPPL measures what ternarizing the full-precision SmolLM2 costs, as llama.cpp's
// perplexity protocol does (wiki.test.raw, ctx 512): the dense F32 model, then the same model with
// every site matrix replaced by its dequantized ternary pack (per tensor and per column). It only
// runs with QSPARSE_TERNARY_PPL=<chunks> (slow), and logs the figures for the README.
func TestSmolLM2TernaryPPL(t *testing.T) {
	chunks, _ := strconv.Atoi(os.Getenv("QSPARSE_TERNARY_PPL"))
	if chunks <= 0 {
		t.Skip("set QSPARSE_TERNARY_PPL=<chunks> to measure")
	}
	text, err := os.ReadFile(testenv.Path(t, "wiki.test.raw"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	opts := eval.PPLOptions{Ctx: 512, Batch: 512, Chunks: chunks}
	for _, perCol := range []bool{false, true} {
		m := load(t, testenv.SmolLM2Path(t), "f32")
		toks := eval.Tokenize(m, string(text))
		if !perCol {
			dense, err := eval.Perplexity(ctx, m, toks, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("dense F32: %s", eval.FormatFinal(dense))
		}
		tern, err := ternarize(ctx, m, perCol, sampleText)
		if err != nil {
			t.Fatal(err)
		}
		r, err := eval.Perplexity(ctx, m, toks, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("ternary (per column %v): %s; check text %.4g -> %.4g", perCol, eval.FormatFinal(r), tern.sourcePPL, tern.ternaryPPL)
		m.Close()
	}
}
