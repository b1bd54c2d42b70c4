package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// fakeLM is a deterministic toy model: the logits at position p depend on the token there, the
// previous token seen in the same chunk and p, so cache clearing and BOS handling matter.
type fakeLM struct {
	vocab  int
	prev   map[int]int // position -> token (the "KV cache")
	calls  int
	cancel func()
	after  int
	salt   float64 // perturbs the logits (a "sparse" variant of the same model)
}

func (f *fakeLM) Reset() { f.prev = map[int]int{} }

func (f *fakeLM) logit(p, tok, v int) float32 {
	prev := -1
	if t, ok := f.prev[p-1]; ok {
		prev = t
	}
	return float32(math.Sin(float64(tok*31+v*7+prev*13+p))*3 + f.salt*math.Cos(float64(v*5+tok)))
}

func (f *fakeLM) Forward(tokens []int, pos int, logits []float32) error {
	f.calls++
	if f.cancel != nil && f.calls == f.after {
		f.cancel()
	}
	all := len(logits) == len(tokens)*f.vocab
	if !all && len(logits) != f.vocab {
		return errors.New("bad logits length")
	}
	for i, t := range tokens {
		p := pos + i
		if p > 0 {
			if _, ok := f.prev[p-1]; !ok {
				return errors.New("hole in cache")
			}
		}
		f.prev[p] = t
		if all || i == len(tokens)-1 {
			row := logits[:f.vocab]
			if all {
				row = logits[i*f.vocab : (i+1)*f.vocab]
			}
			for v := range row {
				row[v] = f.logit(p, t, v)
			}
		}
	}
	return nil
}

// slowPPL is the obvious twin: one token at a time, float64 throughout.
func slowPPL(f *fakeLM, tokens []int, nctx, chunks, bos int) (ppl, perr float64, running []float64) {
	var nll, nll2 float64
	n := 0
	for c := 0; c < chunks; c++ {
		f.Reset()
		chunk := append([]int(nil), tokens[c*nctx:(c+1)*nctx]...)
		if bos >= 0 {
			chunk[0] = bos
		}
		for p := 0; p < nctx-1; p++ {
			f.prev[p] = chunk[p]
			if p < nctx/2 {
				continue
			}
			var sum float64
			for v := 0; v < f.vocab; v++ {
				sum += math.Exp(float64(f.logit(p, chunk[p], v)))
			}
			lp := float64(f.logit(p, chunk[p], tokens[c*nctx+p+1])) - math.Log(sum)
			nll -= lp
			nll2 += lp * lp
			n++
		}
		running = append(running, math.Exp(nll/float64(n)))
	}
	m := nll / float64(n)
	ppl = math.Exp(m)
	perr = ppl * math.Sqrt((nll2/float64(n)-m*m)/float64(n-1))
	return ppl, perr, running
}

func testTokens(n, vocab int) []int {
	t := make([]int, n)
	x := uint32(12345)
	for i := range t {
		x = x*1664525 + 1013904223
		t[i] = int(x>>16) % vocab
	}
	return t
}

func TestPerplexityMatchesSlowTwin(t *testing.T) {
	const vocab, nctx = 37, 16
	tokens := testTokens(5*nctx+7, vocab)
	for _, bos := range []int{-1, 1} {
		f := &fakeLM{vocab: vocab}
		wantPPL, wantErr, wantRun := slowPPL(f, tokens, nctx, 5, bos)
		for _, batch := range []int{0, 16, 8, 5, 3, 1, 100} {
			f := &fakeLM{vocab: vocab}
			var progress []Progress
			r, err := PerplexityWith(context.Background(), f, tokens, PPLOptions{Ctx: nctx, Batch: batch, Vocab: vocab, BOS: bos,
				Progress: func(p Progress) { progress = append(progress, p) }})
			if err != nil {
				t.Fatal(err)
			}
			if r.Chunks != 5 || r.Tokens != 5*(nctx-1-nctx/2) || len(progress) != 5 || progress[4].Chunk != 5 {
				t.Fatalf("bos %d batch %d: chunks %d tokens %d progress %d", bos, batch, r.Chunks, r.Tokens, len(progress))
			}
			if math.Abs(r.PPL-wantPPL) > 1e-6*wantPPL || math.Abs(r.Err-wantErr) > 1e-5*wantErr {
				t.Fatalf("bos %d batch %d: got %v +/- %v, want %v +/- %v", bos, batch, r.PPL, r.Err, wantPPL, wantErr)
			}
			for i := range wantRun {
				if math.Abs(r.Running[i]-wantRun[i]) > 1e-6*wantRun[i] {
					t.Fatalf("running[%d] = %v, want %v", i, r.Running[i], wantRun[i])
				}
			}
		}
	}
	// --chunks caps the run
	f := &fakeLM{vocab: vocab}
	r, err := PerplexityWith(context.Background(), f, tokens, PPLOptions{Ctx: nctx, Chunks: 2, Vocab: vocab, BOS: -1})
	if err != nil || r.Chunks != 2 {
		t.Fatalf("chunks cap: %v %+v", err, r)
	}
	// tokens are not modified by BOS replacement
	cp := testTokens(5*nctx+7, vocab)
	for i := range cp {
		if cp[i] != tokens[i] {
			t.Fatal("tokens modified")
		}
	}
}

func TestPerplexityTooFewTokens(t *testing.T) {
	f := &fakeLM{vocab: 10}
	_, err := PerplexityWith(context.Background(), f, testTokens(31, 10), PPLOptions{Ctx: 16, Vocab: 10, BOS: -1})
	if !errors.Is(err, ErrTooFewTokens) || !strings.Contains(err.Error(), "need at least 2*ctx = 32 tokens") {
		t.Fatalf("err = %v", err)
	}
	if _, err := PerplexityWith(context.Background(), f, testTokens(32, 10), PPLOptions{Ctx: 16, Vocab: 10, BOS: -1}); err != nil {
		t.Fatal(err)
	}
}

func TestPerplexityBadToken(t *testing.T) {
	f := &fakeLM{vocab: 10}
	tok := testTokens(40, 10)
	tok[20] = 10
	if _, err := PerplexityWith(context.Background(), f, tok, PPLOptions{Ctx: 16, Vocab: 10, BOS: -1}); err == nil {
		t.Fatal("no error for an out-of-range token")
	}
}

func TestPerplexityCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &fakeLM{vocab: 10, cancel: cancel, after: 3}
	_, err := PerplexityWith(ctx, f, testTokens(200, 10), PPLOptions{Ctx: 16, Batch: 4, Vocab: 10, BOS: -1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if f.calls != 3 {
		t.Fatalf("%d forward calls after cancel at 3", f.calls)
	}
}

func TestReportOutputs(t *testing.T) {
	r := &Report{Model: "m.gguf", Data: "d.txt", Ctx: 256, Batch: 256, Threads: 2, DataTokens: 1000,
		Rows: []Row{{Label: "dense", PPL: 3.8846, Err: 0.08913, MeanNLL: 1.357, Tokens: 6350, Chunks: 50, Seconds: 1.5}}}
	var tb, jb bytes.Buffer
	if err := r.WriteTable(&tb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tb.String(), "3.8846") || !strings.Contains(tb.String(), "dense") {
		t.Fatalf("table:\n%s", tb.String())
	}
	if err := r.WriteJSON(&jb); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(jb.Bytes(), &back); err != nil || back.Rows[0].PPL != 3.8846 {
		t.Fatalf("json: %v %s", err, jb.String())
	}
	if FormatRunning(3, 3.53912) != "[3]3.5391," {
		t.Fatal(FormatRunning(3, 3.53912))
	}
}
