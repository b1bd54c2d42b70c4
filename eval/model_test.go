package eval

import (
	"context"
	"errors"
	"math"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
	"github.com/qsparse/qsparse/model"
)

// readRunning parses llama-perplexity's "[i]ppl," line.
func readRunning(t *testing.T, path string) []float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, m := range regexp.MustCompile(`\[(\d+)\]([0-9.]+),`).FindAllStringSubmatch(string(b), -1) {
		i, _ := strconv.Atoi(m[1])
		v, _ := strconv.ParseFloat(m[2], 64)
		if i != len(out)+1 {
			t.Fatalf("%s: chunk %d out of order", path, i)
		}
		out = append(out, v)
	}
	return out
}

// TestPerplexityStories260K matches llama-perplexity -c 256 -b 256 --chunks 50 on stories260K.
func TestPerplexityStories260K(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	text, err := os.ReadFile(testenv.Path(t, "tinystories_valid_first1000.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := readRunning(t, testenv.Ref(t, "stories260K.tinystories.c256.50chunks.ppl"))
	m, err := model.Load(mp, model.LoadOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tokens := Tokenize(m, string(text))
	n := 0
	// one forward per chunk over 50 chunks, then batches not dividing the chunk over 10
	for _, run := range []struct{ batch, chunks int }{{0, 50}, {100, 10}} {
		r, err := Perplexity(context.Background(), m, tokens, PPLOptions{Ctx: 256, Batch: run.batch, Chunks: run.chunks,
			Progress: func(Progress) { n++ }})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("batch %d: %s (mean nll %.6f, %d tokens, %.2fs)", run.batch, FormatFinal(r), r.MeanNLL, r.Tokens, r.Seconds)
		if r.Chunks != run.chunks || r.Tokens != run.chunks*127 || len(r.Running) != run.chunks {
			t.Fatalf("chunks %d tokens %d running %d", r.Chunks, r.Tokens, len(r.Running))
		}
		if run.chunks == 50 {
			if math.Abs(r.PPL-3.8846)/3.8846 > 0.001 {
				t.Errorf("PPL = %.4f, want 3.8846 (llama.cpp) within 0.1%%", r.PPL)
			}
			if math.Abs(r.Err-0.08913)/0.08913 > 0.01 {
				t.Errorf("err = %.5f, want 0.08913 within 1%%", r.Err)
			}
		}
		for i := range r.Running {
			if math.Abs(r.Running[i]-want[i])/want[i] > 0.001 {
				t.Errorf("batch %d: [%d] = %.4f, llama.cpp %.4f", run.batch, i+1, r.Running[i], want[i])
			}
		}
	}
	if n != 60 {
		t.Errorf("%d progress calls, want 60", n)
	}
}

// TestPerplexitySmolLM2 compares the first two 512-token chunks of wiki.test.raw with
// llama-perplexity -c 512 -b 512 -fa off -ctk f32 -ctv f32 on the F16 conversion of the same
// Q4_1 file (our default load converts Q4_1 to F16): [1]12.9550,[2]21.3708.
func TestPerplexitySmolLM2(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the 135M-parameter SmolLM2")
	}
	mp := testenv.SmolLM2Path(t)
	text, err := os.ReadFile(testenv.Path(t, "wiki.test.raw"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(mp, model.LoadOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// The first 20,000 bytes tokenize like the start of the whole file (the cut is far past
	// the 1,024 tokens used).
	tokens := Tokenize(m, string(text[:20000]))
	r, err := Perplexity(context.Background(), m, tokens, PPLOptions{Ctx: 512, Chunks: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s %s %s", FormatRunning(1, r.Running[0]), FormatRunning(2, r.Running[1]), FormatFinal(r))
	for i, want := range []float64{12.9550, 21.3708} {
		if math.Abs(r.Running[i]-want)/want > 0.0005 {
			t.Errorf("[%d] = %.4f, llama.cpp %.4f", i+1, r.Running[i], want)
		}
	}
}

func TestPerplexityProfile(t *testing.T) {
	text, err := os.ReadFile(testenv.Path(t, "tinystories_valid_first1000.txt"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(testenv.Path(t, "stories260K.gguf"), model.LoadOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tokens := Tokenize(m, string(text)[:40000])
	opts := PPLOptions{Ctx: 256, Chunks: 4}
	dense, err := Perplexity(context.Background(), m, tokens, opts)
	if err != nil {
		t.Fatal(err)
	}
	p0, err := model.UniformProfile(&m.Spec, 0)
	if err != nil {
		t.Fatal(err)
	}
	zero, err := PerplexityProfile(context.Background(), m, p0, tokens, opts)
	if err != nil {
		t.Fatal(err)
	}
	if zero.MeanNLL != dense.MeanNLL {
		t.Errorf("sparsity 0: mean nll %v, dense %v", zero.MeanNLL, dense.MeanNLL)
	}
	p5, _ := model.UniformProfile(&m.Spec, 0.5)
	half, err := PerplexityProfile(context.Background(), m, p5, tokens, opts)
	if err != nil {
		t.Fatal(err)
	}
	kl, err := KLDivergenceProfile(context.Background(), m, m, p5, tokens, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dense %.4f, 50%% %.4f, KLD %.4f, same top %.3f", dense.PPL, half.PPL, kl.KLD, kl.SameTop)
	if !(half.PPL > dense.PPL) || kl.PPL != half.PPL || kl.BasePPL != dense.PPL || !(kl.KLD > 0) {
		t.Errorf("dense %v, 50%% %v, KL %+v", dense.PPL, half.PPL, kl)
	}
	if _, err := PerplexityProfile(context.Background(), m, &model.Profile{}, tokens, opts); !errors.Is(err, model.ErrBadProfile) {
		t.Error("a profile without layers was accepted")
	}
}
