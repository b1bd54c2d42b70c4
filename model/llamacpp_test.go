package model

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
)

// llama.cpp references for SmolLM2-135M-Instruct, from llama.cpp commit 3f545bec (CPU backend)
// run on the Q4_1 GGUF that testenv.SmolLM2Path finds and on its conversions by llama-quantize:
// "F32", an exact dequantization of the Q4_1 file (q4_1 -> d*q+m, q8_0 -> d*q in float32; loading
// the Q4_1 file with WeightType "f32" gives bit-identical weights), and "F16", that rounded to
// fp16 (our default WeightType "auto" rounds the dequantized weights the same way).
//
// Greedy generation: llama-completion -p PROMPT -n 32 --temp 0 -c 512 -no-cnv (no chat
// template, no BOS: tokenizer.ggml.add_bos_token is false for this vocab); the token ids came
// from a small llama.h program whose text output was checked identical to llama-completion's.
// Default attention (flash attention, F16 K/V cache) and -fa off -ctk f32 -ctv f32 give the same
// F32 tokens.
//
// Why llama.cpp's own Q4_1 run generates different text: ggml never multiplies a Q4_1 matrix
// with float32 activations; it first quantizes the activation vector to Q8_1 (int8 blocks of 32
// with a scale; Q8_0 for the Q8_0 token embedding / tied output), so its Q4_1 logits differ from
// the exact F32 ones by up to ~0.3-1.3 and flip near-ties. We compute in float32 (or fp16 weights
// with float32 activations), so we follow the F32 run, and only the prefix before the first
// near-tie of the Q4_1 runs is a target:
//   - p1 step 5 (gen index 4): Q4_1 default picks 1315 " New" (5.6032) over 23324 " Nova"
//     (5.5424), margin 0.061 (Q4_1 -fa off f32 K/V: 5.6038 vs 5.4530); F32 picks 23324 (5.7683)
//     over 1315 (5.6088), margin 0.160.
//   - p2 step 6 (gen index 5): Q4_1 default 1797 (14.4824) vs 2988 (14.2226); Q4_1 f32 attention
//     2988 (14.4678) vs 1797 (14.4335); F32 2988 (14.6219) vs 1797 (14.4021).
//   - p3 step 14 (gen index 13): Q4_1 default 304 (21.2124) vs 2822 (21.0644); Q4_1 f32
//     attention 2822 (21.1825) vs 304 (21.0887); F32 304 (21.2688) vs 2822 (21.1302).
//
// Along the F32 paths the smallest top-1/top-2 margin is 0.051 (p2 gen index 24); in the first 16
// tokens it is 0.139 (p3 gen index 13), far above our F32-vs-llama.cpp logit difference (< 5e-5
// on these rows) and our fp16-weights difference (< 0.03).
var llamaCppGreedy = []struct {
	prompt string
	ids    []int // prompt ids (no BOS)
	f32    []int // llama.cpp greedy ids, F32 model (ends at EOS 2 for p2)
	q41    []int // llama.cpp greedy ids, Q4_1 model, default settings
	q41Ok  int   // leading tokens of q41 that are robust (before the first near-tie above)
}{
	{
		prompt: "Once upon a time",
		ids:    []int{6403, 1980, 253, 655},
		// ", the city of Nova Haven was a thriving metropolis, with towering skyscrapers and bustling
		// streets. But as the years went by, the city began to lose its original"
		f32: []int{28, 260, 2240, 282, 23324, 27108, 436, 253, 15114, 39228, 28, 351, 25854, 41658, 284, 14055,
			9018, 30, 1249, 347, 260, 929, 3514, 411, 28, 260, 2240, 2585, 288, 5946, 624, 2798},
		q41: []int{28, 260, 2240, 282, 1315, 27108, 436, 253, 15114, 39228, 28, 351, 25854, 41658, 284, 14055,
			9018, 30, 1249, 347, 260, 929, 3514, 411, 28, 260, 2240, 2585, 288, 5946, 624, 970},
		q41Ok: 4,
	},
	{
		prompt: "The capital of France is",
		ids:    []int{504, 3575, 282, 4649, 314},
		// " Paris.\n\nThe answer is: 2018-01-22 12:12:53." then EOS (30 tokens)
		f32: []int{7042, 30, 198, 198, 504, 2988, 314, 42, 216, 34, 32, 33, 40, 29, 32, 33,
			29, 34, 34, 216, 33, 34, 42, 33, 34, 42, 37, 35, 30, 2},
		q41: []int{7042, 30, 198, 198, 504, 1797, 1918, 553, 253, 2155, 282, 4723, 216, 35, 33, 33,
			2215, 701, 30, 198, 198, 504, 1797, 1918, 553, 253, 2155, 282, 4723, 216, 35, 33},
		q41Ok: 5,
	},
	{
		prompt: "def fibonacci(n):",
		ids:    []int{1604, 3987, 46477, 24, 94, 727},
		// "\n    if n == 0:\n        return 1\n    return n * fibonacci(n - 1)\n\n# Test the function\nprint("
		f32: []int{472, 585, 304, 1758, 216, 32, 42, 448, 1003, 216, 33, 472, 1003, 304, 1672, 3987,
			46477, 24, 94, 731, 216, 33, 25, 198, 198, 19, 4246, 260, 1517, 198, 3272, 24},
		q41: []int{472, 585, 304, 1758, 216, 32, 42, 448, 1003, 216, 33, 472, 1003, 304, 1672, 3987,
			46477, 24, 94, 731, 216, 33, 25, 198, 198, 3272, 24, 38572, 46477, 24, 33, 32},
		q41Ok: 13,
	},
}

// greedyEOG decodes up to n tokens greedily after prompt (one batched prefill, then one token at
// a time), stopping after an end-of-generation token as llama-completion does. It returns the
// generated ids and the top-1/top-2 logit margin of each step.
func greedyEOG(t testing.TB, m *Model, prompt []int, n int) (ids []int, margins []float32) {
	t.Helper()
	st := m.NewState(len(prompt) + n)
	logits := make([]float32, m.Spec.Vocab)
	if err := st.Forward(prompt, 0, logits); err != nil {
		t.Fatal(err)
	}
	for pos := len(prompt); len(ids) < n; pos++ {
		next := Argmax(logits)
		second := float32(math.Inf(-1))
		for i, l := range logits {
			if i != next && l > second {
				second = l
			}
		}
		ids = append(ids, next)
		margins = append(margins, logits[next]-second)
		if m.Tok.IsEOG(next) || len(ids) == n {
			break
		}
		if err := st.Forward([]int{next}, pos, logits); err != nil {
			t.Fatal(err)
		}
	}
	return ids, margins
}

func commonPrefix(a, b []int) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// TestSmolLM2LlamaCppGreedy: greedy generation from the Q4_1 GGUF loaded as float32 weights
// reproduces llama.cpp's F32 generations token for token (all 32, or 30 up to EOS); with the
// default fp16 weights at least the first 16 tokens; and both agree with llama.cpp's own Q4_1
// generations up to their first near-tie (see llamaCppGreedy).
func TestSmolLM2LlamaCppGreedy(t *testing.T) {
	path := testenv.SmolLM2Path(t)
	for _, wt := range []string{"f32", "f16"} {
		t.Run(wt, func(t *testing.T) {
			m, err := Load(path, LoadOptions{WeightType: wt})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.Tok.AddBOS() {
				t.Errorf("SmolLM2 vocab adds BOS; llama.cpp does not (add_bos_token false)")
			}
			for i, c := range llamaCppGreedy {
				prompt := m.Tok.Encode(c.prompt, true, false)
				if !slices.Equal(prompt, c.ids) {
					t.Fatalf("p%d %q tokenizes to %v, llama.cpp %v", i+1, c.prompt, prompt, c.ids)
				}
				got, margins := greedyEOG(t, m, prompt, 32)
				same := commonPrefix(got, c.f32)
				minMargin, at := float32(math.Inf(1)), -1
				for k, mg := range margins[:min(len(margins), 16)] {
					if mg < minMargin {
						minMargin, at = mg, k
					}
				}
				t.Logf("p%d %q: %q; %d/%d tokens equal llama.cpp F32, %d equal llama.cpp Q4_1; smallest top-2 margin in the first 16: %.4f at %d",
					i+1, c.prompt, m.Tok.Decode(got), same, len(c.f32), commonPrefix(got, c.q41), minMargin, at)
				want := len(c.f32) // all, EOS included
				if wt == "f16" {
					want = min(16, want)
				}
				if same < want {
					t.Errorf("p%d: generated ids differ from llama.cpp's F32 run at step %d (margin there %.4f):\n got %v\nwant %v",
						i+1, same, margins[min(same, len(margins)-1)], got, c.f32)
				}
				if wt == "f32" && len(got) != len(c.f32) {
					t.Errorf("p%d: %d tokens generated, llama.cpp %d (EOS 2 ends p2 after 30)", i+1, len(got), len(c.f32))
				}
				if n := commonPrefix(got, c.q41); n < c.q41Ok {
					t.Errorf("p%d: generated ids differ from llama.cpp's Q4_1 run at step %d, before its first near-tie at %d:\n got %v\nwant %v",
						i+1, n, c.q41Ok, got, c.q41)
				}
			}
		})
	}
}

// llamaCppRow is one row of llama.cpp's exact float32 logits (F32 model, -fa off -ctk f32 -ctv
// f32, every position of one batch): the top 5 token ids and logits and log Σ exp(logits) (in
// float64). Rows are positions: row r is the output after the token at position r.
type llamaCppRow struct {
	row    int
	ids    [5]int
	logits [5]float32
	lse    float64
}

// "Once upon a time" followed by the 31 fed-back tokens of llama.cpp's F32 greedy run (35 rows;
// in llama.cpp the prompt was one batch and the rest decoded one token at a time).
var llamaCppLogitsP1 = []llamaCppRow{
	{row: 0, ids: [5]int{29, 28, 198, 79, 506}, logits: [5]float32{28.64994, 27.01031, 26.28956, 26.22077, 26.11044}, lse: 29.51427},
	{row: 1, ids: [5]int{260, 253, 9245, 28, 7880}, logits: [5]float32{15.91634, 15.32255, 13.91135, 13.85480, 13.27819}, lse: 17.25537},
	{row: 2, ids: [5]int{655, 10528, 3163, 725, 16138}, logits: [5]float32{15.98842, 15.42111, 15.39702, 14.09602, 13.92737}, lse: 17.93371},
	{row: 3, ids: [5]int{28, 281, 665, 260, 253}, logits: [5]float32{18.14201, 14.08253, 13.36724, 12.93553, 12.92802}, lse: 18.21752},
	{row: 10, ids: [5]int{253, 10832, 32562, 2837, 1343}, logits: [5]float32{22.16490, 21.78539, 21.64695, 20.70766, 20.60740}, lse: 23.84571},
	{row: 20, ids: [5]int{30, 338, 28, 282, 4412}, logits: [5]float32{30.13346, 28.29711, 27.47394, 26.90508, 26.90306}, lse: 30.49180},
	{row: 34, ids: [5]int{2798, 970, 5595, 8685, 9019}, logits: [5]float32{15.16982, 15.07923, 14.79818, 14.70297, 14.34333}, lse: 17.33889},
}

// The first perplexity chunk of wiki.test.raw (ids 0..511 of the llama-perplexity token stream,
// one batch of 512 at positions 0..511, as llama-perplexity -c 512 evaluates it).
var llamaCppLogitsWiki = []llamaCppRow{
	{row: 0, ids: [5]int{29, 28, 198, 284, 79}, logits: [5]float32{24.38250, 23.13939, 22.27198, 21.88938, 21.56266}, lse: 25.32399},
	{row: 1, ids: [5]int{216, 365, 1662, 933, 731}, logits: [5]float32{22.47307, 19.51603, 19.28473, 19.26032, 19.23630}, lse: 23.03156},
	{row: 100, ids: [5]int{32, 34, 33, 36, 216}, logits: [5]float32{30.22774, 22.19518, 21.57383, 20.08027, 19.76034}, lse: 30.22849},
	{row: 255, ids: [5]int{12592, 8552, 4771, 15307, 7372}, logits: [5]float32{9.35570, 8.12926, 8.04150, 7.81246, 7.42409}, lse: 10.95819},
	{row: 256, ids: [5]int{282, 281, 1673, 327, 476}, logits: [5]float32{17.08266, 12.13086, 10.75610, 10.55037, 10.36141}, lse: 17.11129},
	{row: 300, ids: [5]int{1797, 4664, 3689, 4206, 216}, logits: [5]float32{6.50478, 6.12754, 5.91955, 5.54091, 5.51207}, lse: 8.23986},
	{row: 400, ids: [5]int{436, 597, 4870, 6254, 553}, logits: [5]float32{25.15744, 24.18549, 24.03408, 23.92339, 23.89281}, lse: 26.46984},
	{row: 510, ids: [5]int{541, 291, 317, 358, 554}, logits: [5]float32{30.12120, 28.88860, 28.62791, 28.46115, 28.05891}, lse: 31.75523},
	{row: 511, ids: [5]int{476, 18, 637, 3297, 281}, logits: [5]float32{16.89314, 13.36667, 13.31975, 13.26428, 13.03912}, lse: 17.08422},
}

func logSumExp(x []float32) float64 {
	mx := slices.Max(x)
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v - mx))
	}
	return float64(mx) + math.Log(s)
}

// checkLlamaCppRows compares rows of all-position logits with llama.cpp's: the logit of each of
// its top-5 tokens and the log-sum-exp within tol, the same argmax and, when tol <= 1e-3, the same
// top-5 set (the 5th-6th gap is >= 0.0497 on every reference row). It returns the largest
// difference seen.
func checkLlamaCppRows(t *testing.T, what string, logits []float32, vocab int, refs []llamaCppRow, tol float64) float64 {
	t.Helper()
	var worst float64
	for _, r := range refs {
		row := logits[r.row*vocab : (r.row+1)*vocab]
		for k, id := range r.ids {
			d := math.Abs(float64(row[id] - r.logits[k]))
			worst = max(worst, d)
			if d > tol {
				t.Errorf("%s row %d: logit of token %d = %.5f, llama.cpp %.5f (|Δ| %.2g > %g)", what, r.row, id, row[id], r.logits[k], d, tol)
			}
		}
		lse := logSumExp(row)
		worst = max(worst, math.Abs(lse-r.lse))
		if math.Abs(lse-r.lse) > tol {
			t.Errorf("%s row %d: logsumexp %.5f, llama.cpp %.5f", what, r.row, lse, r.lse)
		}
		if a := Argmax(row); a != r.ids[0] {
			t.Errorf("%s row %d: argmax %d, llama.cpp %d", what, r.row, a, r.ids[0])
		}
		if tol > 1e-3 {
			continue
		}
		min5 := slices.Min(r.logits[:])
		above := 0
		for _, l := range row {
			if l > min5-float32(tol) {
				above++
			}
		}
		if above != 5 {
			t.Errorf("%s row %d: %d logits >= llama.cpp's 5th largest, want exactly its top 5", what, r.row, above)
		}
	}
	return worst
}

// TestSmolLM2LlamaCppLogitsP1 compares all-position logits of "Once upon a time" + llama.cpp's F32
// continuation with llama.cpp's exact float32 logits (measured max |Δ| over all 35×49152 logits:
// 2.9e-5 as f32 weights, 0.025 as fp16 weights).
func TestSmolLM2LlamaCppLogitsP1(t *testing.T) {
	path := testenv.SmolLM2Path(t)
	c := llamaCppGreedy[0]
	toks := append(slices.Clone(c.ids), c.f32[:31]...)
	for _, run := range []struct {
		wt  string
		tol float64
	}{{"f32", 1e-3}, {"f16", 0.05}} {
		m, err := Load(path, LoadOptions{WeightType: run.wt})
		if err != nil {
			t.Fatal(err)
		}
		V := m.Spec.Vocab
		logits := make([]float32, len(toks)*V)
		if err := m.NewState(len(toks)).Forward(toks, 0, logits); err != nil {
			t.Fatal(err)
		}
		worst := checkLlamaCppRows(t, run.wt, logits, V, llamaCppLogitsP1, run.tol)
		t.Logf("%s weights: max |Δ| vs llama.cpp F32 on the reference rows %.2g (tolerance %g)", run.wt, worst, run.tol)
		m.Close()
	}
}

// llamaCppChunk1SHA256 is the sha256 of the first 512 ids of llama-perplexity's wiki.test.raw
// token stream joined by ",".
const llamaCppChunk1SHA256 = "9a8c781f4247c6ba41d95bbd675de279ea6eed471f9e1b26eb5a20d1d2032999"

// TestSmolLM2LlamaCppLogitsWiki runs the first llama-perplexity chunk of wiki.test.raw (512 tokens,
// one batch) with f32 weights and compares rows and the chunk's mean NLL over positions 256..510
// (llama.cpp: 2.561436, PPL [1]12.9544) with llama.cpp's exact float32 logits. Measured: max |Δ|
// over all 512×49152 logits 3.6e-4, NLL 2.5614366.
func TestSmolLM2LlamaCppLogitsWiki(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 512-token SmolLM2 batch in float32")
	}
	path := testenv.SmolLM2Path(t)
	text, err := os.ReadFile(testenv.Path(t, "wiki.test.raw"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(path, LoadOptions{WeightType: "f32"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// The first 20,000 bytes tokenize like the start of the whole file (the cut is far past 512).
	toks := m.Tok.Encode(string(text[:20000]), true, false)[:512]
	var sb strings.Builder
	for i, id := range toks {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.Itoa(id))
	}
	if h := sha256.Sum256([]byte(sb.String())); hex.EncodeToString(h[:]) != llamaCppChunk1SHA256 {
		t.Fatalf("chunk 1 tokens differ from llama-perplexity's (sha256 %x)", h)
	}
	V := m.Spec.Vocab
	logits := make([]float32, len(toks)*V)
	if err := m.NewState(512).Forward(toks, 0, logits); err != nil {
		t.Fatal(err)
	}
	worst := checkLlamaCppRows(t, "wiki chunk 1", logits, V, llamaCppLogitsWiki, 1e-3)
	var nll float64
	for r := 256; r <= 510; r++ {
		row := logits[r*V : (r+1)*V]
		nll += logSumExp(row) - float64(row[toks[r+1]])
	}
	nll /= 255
	t.Logf("max |Δ| on the reference rows %.2g; mean NLL %.7f (llama.cpp 2.561436), PPL %.4f (llama.cpp [1]12.9544)", worst, nll, math.Exp(nll))
	if math.Abs(nll-2.561436) > 2e-5 {
		t.Errorf("mean NLL of positions 256..510 = %.7f, llama.cpp 2.561436", nll)
	}
	if math.Abs(math.Exp(nll)-12.9544) > 1e-4*12.9544 {
		t.Errorf("PPL %.5f, llama.cpp [1]12.9544", math.Exp(nll))
	}
}
