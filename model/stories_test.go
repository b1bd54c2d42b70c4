package model

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
)

func loadStories(t testing.TB, opts LoadOptions) *Model {
	t.Helper()
	m, err := Load(testenv.Path(t, "stories260K.gguf"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// greedy generates n tokens greedily after prompt and returns prompt+generated ids.
func greedy(t testing.TB, m *Model, prompt []int, n int) []int {
	t.Helper()
	st := m.NewState(256)
	logits := make([]float32, m.Spec.Vocab)
	if err := st.Forward(prompt, 0, logits); err != nil {
		t.Fatal(err)
	}
	ids := append([]int(nil), prompt...)
	for range n {
		next := Argmax(logits)
		ids = append(ids, next)
		if err := st.Forward(ids[len(ids)-1:], len(ids)-1, logits); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

const storiesRef = " Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily's mom said"

func TestStoriesGreedy(t *testing.T) {
	m := loadStories(t, LoadOptions{})
	if m.WeightType != "f32" {
		t.Errorf("auto weight type of an F32 GGUF = %s, want f32", m.WeightType)
	}
	prompt := m.Tok.Encode("Once upon a time", true, false)
	if prompt[0] != m.Tok.BOS() {
		t.Fatalf("prompt %v does not start with BOS", prompt)
	}
	ids := greedy(t, m, prompt, 64)
	// llama.cpp prints the pieces of the prompt (after BOS) and of the generated tokens.
	var sb strings.Builder
	for _, id := range ids[1:] {
		sb.Write(m.Tok.Piece(id))
	}
	if got := sb.String(); got != storiesRef {
		t.Fatalf("greedy text:\n%q\nwant\n%q", got, storiesRef)
	}
}

// perplexity is llama.cpp's method: non-overlapping chunks of nctx tokens, the first token of
// each replaced by BOS, logits for all positions, positions nctx/2 .. nctx-2 predicting the
// next token, log-softmax in float64.
func perplexity(t testing.TB, m *Model, tokens []int, nctx, chunks int) float64 {
	t.Helper()
	return perplexityOn(t, m.NewState(nctx), tokens, nctx, chunks)
}

// perplexityOn is perplexity on a given State (e.g. one with a sparsity profile).
func perplexityOn(t testing.TB, st *State, tokens []int, nctx, chunks int) float64 {
	t.Helper()
	if len(tokens) < chunks*nctx {
		t.Fatalf("%d tokens, need %d", len(tokens), chunks*nctx)
	}
	m := st.Model()
	V := m.Spec.Vocab
	logits := make([]float32, nctx*V)
	buf := make([]int, nctx)
	var nll float64
	var count int
	for c := range chunks {
		copy(buf, tokens[c*nctx:(c+1)*nctx])
		buf[0] = m.Tok.BOS()
		if err := st.Forward(buf, 0, logits); err != nil {
			t.Fatal(err)
		}
		for i := nctx / 2; i < nctx-1; i++ {
			row := logits[i*V : (i+1)*V]
			mx := float64(row[Argmax(row)])
			var sum float64
			for _, v := range row {
				sum += math.Exp(float64(v) - mx)
			}
			target := tokens[c*nctx+i+1]
			nll += -(float64(row[target]) - mx - math.Log(sum))
			count++
		}
	}
	return math.Exp(nll / float64(count))
}

// textPrefix returns the first ~n bytes of a shared text, cut after a newline.
func textPrefix(t testing.TB, name string, n int) string {
	b, err := os.ReadFile(testenv.Path(t, name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b[:min(n, len(b))])
	if i := strings.LastIndexByte(s, '\n'); i > 0 {
		s = s[:i+1]
	}
	return s
}

func TestStoriesPerplexity(t *testing.T) {
	m := loadStories(t, LoadOptions{})
	for _, c := range []struct {
		file  string
		bytes int
		want  float64
	}{
		{"tinystories_valid_first1000.txt", 40000, 3.8845},
		{"wiki.test.raw", 40000, 94.2472},
	} {
		toks := m.Tok.Encode(textPrefix(t, c.file, c.bytes), true, false)
		got := perplexity(t, m, toks, 256, 50)
		t.Logf("%s: PPL = %.4f (llama.cpp %.4f)", c.file, got, c.want)
		if math.Abs(got-c.want)/c.want > 0.001 {
			t.Errorf("%s: PPL = %.4f, want %.4f within 0.1%%", c.file, got, c.want)
		}
	}
}

// TestStoriesBatchedVsDecode checks batched prefill logits against token-by-token decode.
func TestStoriesBatchedVsDecode(t *testing.T) {
	m := loadStories(t, LoadOptions{})
	toks := m.Tok.Encode(textPrefix(t, "tinystories_valid_first1000.txt", 400), true, false)[:60]
	V := m.Spec.Vocab
	batched := make([]float32, len(toks)*V)
	st := m.NewState(128)
	// Two batches (40 + 20 tokens) to exercise a prefill continuing a cache.
	if err := st.Forward(toks[:40], 0, batched[:40*V]); err != nil {
		t.Fatal(err)
	}
	if err := st.Forward(toks[40:], 40, batched[40*V:]); err != nil {
		t.Fatal(err)
	}
	st2 := m.NewState(128)
	one := make([]float32, V)
	for i, tok := range toks {
		if err := st2.Forward([]int{tok}, i, one); err != nil {
			t.Fatal(err)
		}
		compareLogits(t, batched[i*V:(i+1)*V], one, 1e-4, i)
	}
	// Last-token-only logits of a batch equal the last row of all-token logits.
	last := make([]float32, V)
	if err := m.NewState(128).Forward(toks, 0, last); err != nil {
		t.Fatal(err)
	}
	compareLogits(t, batched[(len(toks)-1)*V:], last, 1e-6, len(toks)-1)
}

func compareLogits(t testing.TB, got, want []float32, tol float64, pos int) {
	t.Helper()
	var maxAbs, maxDiff float64
	for i := range want {
		maxAbs = max(maxAbs, math.Abs(float64(want[i])))
		maxDiff = max(maxDiff, math.Abs(float64(got[i]-want[i])))
	}
	if maxDiff > tol*max(maxAbs, 1) {
		t.Fatalf("position %d: logits differ by %g (max |logit| %g, tolerance %g relative)", pos, maxDiff, maxAbs, tol)
	}
}

func TestStoriesThreads(t *testing.T) {
	toks := []int{1, 400, 300, 200, 100, 50, 25, 12, 6, 3}
	var outs [2][]float32
	for i, th := range []int{1, 2} {
		m := loadStories(t, LoadOptions{Threads: th, WeightType: "f16"})
		V := m.Spec.Vocab
		outs[i] = make([]float32, len(toks)*V+V)
		st := m.NewState(64)
		if err := st.Forward(toks, 0, outs[i][:len(toks)*V]); err != nil {
			t.Fatal(err)
		}
		if err := st.Forward([]int{7}, len(toks), outs[i][len(toks)*V:]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range outs[0] {
		if outs[0][i] != outs[1][i] {
			t.Fatalf("logit %d: 1 thread %v, 2 threads %v", i, outs[0][i], outs[1][i])
		}
	}
}

func TestForwardNoAlloc(t *testing.T) {
	m := loadStories(t, LoadOptions{Threads: 2})
	st := m.NewState(64)
	logits := make([]float32, m.Spec.Vocab)
	toks := []int{1, 2, 3, 4}
	pos := 0
	allocs := testing.AllocsPerRun(10, func() {
		if err := st.Forward(toks[:1], pos%60, logits); err != nil {
			t.Fatal(err)
		}
		pos++
	})
	if allocs != 0 {
		t.Errorf("decode step: %v allocations", allocs)
	}
	all := make([]float32, len(toks)*m.Spec.Vocab)
	allocs = testing.AllocsPerRun(10, func() {
		if err := st.Forward(toks, 0, all); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("batched step: %v allocations", allocs)
	}
}

func TestStoriesErrors(t *testing.T) {
	m := loadStories(t, LoadOptions{})
	st := m.NewState(16)
	V := m.Spec.Vocab
	for _, c := range []struct {
		toks   []int
		pos    int
		logits int
	}{
		{nil, 0, V},
		{[]int{1}, 16, V},
		{[]int{1, 2}, 15, V},
		{[]int{V}, 0, V},
		{[]int{-1}, 0, V},
		{[]int{1, 2}, 0, V + 1},
	} {
		if err := st.Forward(c.toks, c.pos, make([]float32, c.logits)); err == nil {
			t.Errorf("Forward(%v, %d, [%d]) succeeded", c.toks, c.pos, c.logits)
		}
	}
	m2 := loadStories(t, LoadOptions{})
	m2.Close()
	st2 := m2.NewState(8)
	if err := st2.Forward([]int{1}, 0, make([]float32, V)); err == nil {
		t.Error("Forward on a closed model succeeded")
	}
	if _, err := Load(m.Path, LoadOptions{WeightType: "q4"}); !errors.Is(err, ErrUnsupported) {
		t.Error("Load with weight type q4 succeeded")
	}
	if _, err := Load("/nonexistent.gguf", LoadOptions{}); !errors.Is(err, fs.ErrNotExist) {
		t.Error("Load of a missing file succeeded")
	}
}

func TestStoriesInspect(t *testing.T) {
	info, err := Inspect(testenv.Path(t, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	s := info.Spec
	if s.Arch != "llama" || s.Dim != 64 || s.NLayers != 5 || s.NHeads != 8 || s.NKVHeads != 4 || s.FFNDim != 172 ||
		s.Vocab != 512 || s.HeadDim != 8 || s.CtxLen != 2048 || s.TiedEmbeddings {
		t.Errorf("spec %+v", s)
	}
	if info.Tokenizer != "llama" || info.VocabSize != 512 || info.Format != "gguf" {
		t.Errorf("info %+v", info)
	}
	t.Logf("params %d, dense bytes/token %d, file type %s, %d tensors", info.Params, info.DenseBytesPerToken, info.FileType, len(info.Tensors))
}

// TestFusedProjections checks the fused q/k/v and gate/up calls against separate ones.
func TestFusedProjections(t *testing.T) {
	m := loadStories(t, LoadOptions{WeightType: "f16"})
	toks := []int{1, 400, 300, 200, 100, 50, 25, 12}
	V := m.Spec.Vocab
	run := func(fuse bool) []float32 {
		defer func() { fuseProjections = true }()
		fuseProjections = fuse
		out := make([]float32, len(toks)*V+V)
		st := m.NewState(32)
		if err := st.Forward(toks, 0, out[:len(toks)*V]); err != nil {
			t.Fatal(err)
		}
		if err := st.Forward([]int{9}, len(toks), out[len(toks)*V:]); err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b := run(true), run(false)
	for p := range len(toks) + 1 {
		compareLogits(t, a[p*V:(p+1)*V], b[p*V:(p+1)*V], 1e-6, p)
	}
}
