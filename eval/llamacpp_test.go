package eval

import (
	"context"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
	"github.com/qsparse/qsparse/model"
)

// llama-perplexity (llama.cpp commit 3f545bec, CPU) on SmolLM2-135M-Instruct, wiki.test.raw,
// -c 512 -b 512 --chunks 40: the running [i] values. No BOS anywhere (add_bos_token is false), so
// the chunks are raw 512-token windows of the stream; positions 256..510 are scored.
//
//   - F32: the exact dequantization of the Q4_1 file (= our WeightType "f32"), -fa off -ctk f32
//     -ctv f32: Final estimate PPL = 23.5115 +/- 0.71403.
//   - F16: that rounded to fp16 (= our default WeightType for a Q4_1 file), -fa off -ctk f32
//     -ctv f32: PPL = 23.5129 +/- 0.71408.
//   - Q4_1: the Q4_1 file itself with default settings (flash attention, F16 K/V): PPL = 23.5861
//     +/- 0.71706 (-fa off -ctk f32 -ctv f32: 23.5632). We are 0.3-0.9% below it ([1] 12.955 vs
//     13.0665, final 23.513 vs 23.5861) because ggml quantizes the activations to Q8_1 before
//     every Q4_1 matmul (Q8_0 for the Q8_0 token embedding / tied output) where we keep float32
//     activations; that rounding costs llama.cpp's Q4_1 run ~0.3% perplexity and makes it jump
//     by ±0.1% between attention settings, so it is matched within 1% only.
var (
	llamaCppPPLF32 = []float64{12.9544, 21.3722, 22.5231, 22.7437, 22.2565, 22.4583, 23.1886, 24.4974, 25.9244, 26.6157,
		26.6718, 27.1035, 27.1564, 28.0846, 28.6812, 29.2453, 27.4419, 27.7362, 28.2786, 28.6245,
		28.1646, 27.7456, 26.8429, 26.3259, 25.3718, 24.6309, 23.7480, 23.6808, 23.1104, 22.5909,
		22.6938, 22.5868, 22.8247, 22.9224, 23.0854, 23.2570, 23.5015, 23.7050, 23.6394, 23.5115}
	llamaCppPPLF16 = []float64{12.9550, 21.3708, 22.5235, 22.7441, 22.2570, 22.4585, 23.1895, 24.4987, 25.9255, 26.6176,
		26.6735, 27.1052, 27.1577, 28.0858, 28.6828, 29.2472, 27.4436, 27.7382, 28.2804, 28.6265,
		28.1667, 27.7475, 26.8449, 26.3276, 25.3733, 24.6325, 23.7492, 23.6822, 23.1120, 22.5924,
		22.6954, 22.5883, 22.8262, 22.9238, 23.0866, 23.2582, 23.5028, 23.7062, 23.6406, 23.5129}
	llamaCppPPLQ41 = []float64{13.0665, 21.4582, 22.6003, 22.8855, 22.3709, 22.5590, 23.2911, 24.5958, 26.0288, 26.7318,
		26.8027, 27.2499, 27.2956, 28.2292, 28.8281, 29.3913, 27.5782, 27.8853, 28.4258, 28.7572,
		28.2909, 27.8626, 26.9573, 26.4380, 25.4745, 24.7233, 23.8327, 23.7671, 23.1886, 22.6573,
		22.7595, 22.6515, 22.8828, 22.9808, 23.1486, 23.3247, 23.5687, 23.7760, 23.7119, 23.5861}
)

// smolLM2WikiTokens loads SmolLM2 with the given weight type and tokenizes wiki.test.raw as
// llama-perplexity -f does (the file minus one final newline, special tokens not parsed, no BOS):
// 303,415 ids (their sha256 is checked in the tokenizer package's tests).
func smolLM2WikiTokens(t *testing.T, weightType string) (*model.Model, []int) {
	t.Helper()
	mp := testenv.SmolLM2Path(t)
	text, err := os.ReadFile(testenv.Path(t, "wiki.test.raw"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(mp, model.LoadOptions{WeightType: weightType, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tokens := Tokenize(m, strings.TrimSuffix(string(text), "\n"))
	if len(tokens) != 303415 || tokens[0] != 3717 || tokens[len(tokens)-1] != 216 || BOS(m) != -1 {
		t.Fatalf("wiki.test.raw: %d tokens, first %d, last %d, BOS %d; llama-perplexity has 303415, 3717 ... 216, no BOS",
			len(tokens), tokens[0], tokens[len(tokens)-1], BOS(m))
	}
	return m, tokens
}

// checkRunning compares running perplexities with llama.cpp's within a relative tolerance and
// returns the largest relative gap.
func checkRunning(t *testing.T, what string, got, want []float64, tol float64) float64 {
	t.Helper()
	var worst float64
	for i := range got {
		rel := math.Abs(got[i]-want[i]) / want[i]
		worst = max(worst, rel)
		if rel > tol {
			t.Errorf("%s: [%d] = %.4f, llama.cpp %.4f (%.3f%% off, tolerance %.2f%%)", what, i+1, got[i], want[i], 100*rel, 100*tol)
		}
	}
	return worst
}

// TestPerplexitySmolLM2LlamaCppFirst4 runs the first 4 chunks of wiki.test.raw at -c 512 with both
// weight types (f16 only with -short, as the 40-chunk test covers it otherwise): each running
// value within 0.05% of llama.cpp's run on the matching F32 / F16 file and within 1% of
// llama.cpp's own Q4_1 run. Measured: f32 [1..4] 12.9544 21.3722 22.5231
// 22.7437 (llama.cpp F32's to 4 decimals), f16 12.9548 21.3715 22.5242 22.7452 (max gap to F16
// 0.005%); both 0.86% below llama.cpp Q4_1 at [1] (12.9544 vs 13.0665).
func TestPerplexitySmolLM2LlamaCppFirst4(t *testing.T) {
	for _, run := range []struct {
		wt   string
		want []float64
	}{{"f32", llamaCppPPLF32}, {"f16", llamaCppPPLF16}} {
		t.Run(run.wt, func(t *testing.T) {
			if run.wt == "f16" && !testing.Short() {
				t.Skip("TestPerplexitySmolLM2LlamaCppAll40 checks the same f16 values (and 36 more) without -short")
			}
			m, tokens := smolLM2WikiTokens(t, run.wt)
			r, err := Perplexity(context.Background(), m, tokens, PPLOptions{Ctx: 512, Chunks: 4})
			if err != nil {
				t.Fatal(err)
			}
			if r.Chunks != 4 || r.Tokens != 4*255 || len(r.Running) != 4 {
				t.Fatalf("chunks %d tokens %d running %d", r.Chunks, r.Tokens, len(r.Running))
			}
			same := checkRunning(t, run.wt, r.Running, run.want, 0.0005)
			q41 := checkRunning(t, run.wt+" vs Q4_1", r.Running, llamaCppPPLQ41, 0.01)
			var sb strings.Builder
			for i, v := range r.Running {
				sb.WriteString(FormatRunning(i+1, v))
			}
			t.Logf("%s weights: %s (%.1fs); max gap to llama.cpp %s %.4f%%, to llama.cpp Q4_1 %.3f%%",
				run.wt, sb.String(), r.Seconds, strings.ToUpper(run.wt), 100*same, 100*q41)
		})
	}
}

// TestPerplexitySmolLM2LlamaCppAll40 runs all 40 chunks of llama.cpp's reference run with the default
// (fp16) weights: every running value within 0.05% of llama.cpp's F16 run, the final PPL within
// 0.01% of its 23.5129 (and its +/- within 1% of 0.71408), and within 1% of llama.cpp Q4_1's
// 23.5861. (With f32 weights the same run gives 23.5115 = llama.cpp F32's 23.5115; not run here
// to keep the suite short: the 4-chunk test covers f32.) Measured: 23.5126 +/- 0.71407, every
// running value within 0.005% of llama.cpp F16's, 0.31% below llama.cpp Q4_1's final value (up to
// 0.86% below at [1]); with f32 weights 23.5115 +/- 0.71403, every running value equal to
// llama.cpp F32's to the printed 4 decimals (max gap 0.0004%).
func TestPerplexitySmolLM2LlamaCppAll40(t *testing.T) {
	if testing.Short() {
		t.Skip("40 chunks of 512 tokens through SmolLM2")
	}
	m, tokens := smolLM2WikiTokens(t, "auto")
	if m.WeightType != "f16" {
		t.Fatalf("default weight type %s, want f16", m.WeightType)
	}
	r, err := Perplexity(context.Background(), m, tokens, PPLOptions{Ctx: 512, Chunks: 40})
	if err != nil {
		t.Fatal(err)
	}
	if r.Chunks != 40 || r.Tokens != 40*255 || len(r.Running) != 40 {
		t.Fatalf("chunks %d tokens %d running %d", r.Chunks, r.Tokens, len(r.Running))
	}
	same := checkRunning(t, "f16", r.Running, llamaCppPPLF16, 0.0005)
	q41 := checkRunning(t, "f16 vs Q4_1", r.Running, llamaCppPPLQ41, 0.01)
	t.Logf("%s (%.1fs); llama.cpp F16 23.5129 +/- 0.71408, Q4_1 23.5861 +/- 0.71706; max running gap to F16 %.4f%%, to Q4_1 %.3f%%",
		FormatFinal(r), r.Seconds, 100*same, 100*q41)
	if rel := math.Abs(r.PPL-23.5129) / 23.5129; rel > 0.0001 {
		t.Errorf("PPL %.4f, llama.cpp F16 23.5129 (%.4f%% off, tolerance 0.01%%)", r.PPL, 100*rel)
	}
	if rel := math.Abs(r.PPL-23.5861) / 23.5861; rel > 0.01 {
		t.Errorf("PPL %.4f, llama.cpp Q4_1 23.5861 (%.3f%% off, tolerance 1%%)", r.PPL, 100*rel)
	}
	if rel := math.Abs(r.Err-0.71408) / 0.71408; rel > 0.01 {
		t.Errorf("+/- %.5f, llama.cpp F16 0.71408", r.Err)
	}
}
