package eval

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestSamplerGreedyAndTopK(t *testing.T) {
	logits := []float32{0.1, 2, 1.9, -1, 2}
	if got := NewSampler(SamplerOptions{Temp: 0}).Sample(logits); got != 1 {
		t.Fatalf("greedy = %d, want 1 (first max)", got)
	}
	// top-k 1 is greedy whatever the temperature
	s := NewSampler(SamplerOptions{Temp: 5, TopK: 1, Seed: 7})
	for i := 0; i < 20; i++ {
		if got := s.Sample(logits); got != 1 {
			t.Fatalf("top-k 1 sampled %d", got)
		}
	}
	// top-k 3 never samples outside the top 3
	s = NewSampler(SamplerOptions{Temp: 1, TopK: 3, Seed: 1})
	seen := map[int]int{}
	for i := 0; i < 2000; i++ {
		seen[s.Sample(logits)]++
	}
	if seen[0] != 0 || seen[3] != 0 || len(seen) != 3 {
		t.Fatalf("top-k 3 saw %v", seen)
	}
	// top-p small keeps only the most likely
	s = NewSampler(SamplerOptions{Temp: 1, TopP: 0.01, Seed: 1})
	for i := 0; i < 50; i++ {
		if got := s.Sample(logits); got != 1 {
			t.Fatalf("top-p 0.01 sampled %d", got)
		}
	}
	// same seed, same sequence
	a, b := NewSampler(SamplerOptions{Temp: 1, Seed: 3}), NewSampler(SamplerOptions{Temp: 1, Seed: 3})
	for i := 0; i < 100; i++ {
		if a.Sample(logits) != b.Sample(logits) {
			t.Fatal("same seed differs")
		}
	}
	// frequencies follow softmax at temp 1
	s = NewSampler(SamplerOptions{Temp: 1, Seed: 9})
	two := []float32{0, float32(math.Log(3))}
	c := 0
	for i := 0; i < 20000; i++ {
		c += s.Sample(two)
	}
	if f := float64(c) / 20000; math.Abs(f-0.75) > 0.02 {
		t.Fatalf("P(1) = %v, want 0.75", f)
	}
}

func TestGenerate(t *testing.T) {
	f := &fakeLM{vocab: 11}
	var got []int
	eog := func(id int) bool { return id == -5 }
	st, err := Generate(context.Background(), f, []int{1, 2, 3}, GenOptions{MaxTokens: 5, Ctx: 64, Vocab: 11, IsEOG: eog},
		func(id int) error { got = append(got, id); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || st.Generated != 5 || st.EvalTokens != 4 || st.StopReason != "limit" || st.PromptTokens != 3 {
		t.Fatalf("got %v stats %+v", got, st)
	}
	// greedy = argmax of the fake's logits, step by step
	f2 := &fakeLM{vocab: 11}
	f2.Reset()
	logits := make([]float32, 11)
	_ = f2.Forward([]int{1, 2, 3}, 0, logits)
	for i, id := range got {
		if want := Argmax(logits); id != want {
			t.Fatalf("token %d = %d, want %d", i, id, want)
		}
		_ = f2.Forward([]int{id}, 3+i, logits)
	}
	// EOG stops without emitting
	first := got[0]
	got = nil
	st, err = Generate(context.Background(), &fakeLM{vocab: 11}, []int{1, 2, 3}, GenOptions{MaxTokens: 5, Ctx: 64, Vocab: 11,
		IsEOG: func(id int) bool { return id == first }}, func(id int) error { got = append(got, id); return nil })
	if err != nil || len(got) != 0 || st.StopReason != "eog" {
		t.Fatalf("eog: %v %v %+v", err, got, st)
	}
	// context full
	st, err = Generate(context.Background(), &fakeLM{vocab: 11}, []int{1, 2, 3}, GenOptions{Ctx: 6, Vocab: 11},
		func(int) error { return nil })
	if err != nil || st.StopReason != "context" || st.Generated != 4 {
		t.Fatalf("ctx: %v %+v", err, st)
	}
	// prompt too long
	_, err = Generate(context.Background(), &fakeLM{vocab: 11}, make([]int, 7), GenOptions{Ctx: 6, Vocab: 11}, func(int) error { return nil })
	if !errors.Is(err, ErrPromptTooLong) {
		t.Fatal(err)
	}
	// cancel
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err = Generate(ctx, &fakeLM{vocab: 11}, []int{1}, GenOptions{Ctx: 100, Vocab: 11},
		func(int) error {
			n++
			if n == 3 {
				cancel()
			}
			return nil
		})
	if !errors.Is(err, context.Canceled) || n != 3 {
		t.Fatalf("cancel: %v after %d", err, n)
	}
}

func TestBench(t *testing.T) {
	f := &fakeLM{vocab: 13}
	var prog []string
	r, err := Bench(context.Background(), f, BenchModel{Desc: "llama 0.3M all F32", Size: 1185376, Params: 292352, Backend: "CPU", Threads: 2},
		BenchOptions{Prompt: 8, Gen: 4, Reps: 3, Vocab: 13, BOS: 1, Progress: func(test string, rep, reps int) { prog = append(prog, test) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rows) != 2 || r.Rows[0].Test != "pp8" || r.Rows[1].Test != "tg4" || len(r.Rows[0].Samples) != 3 || len(prog) != 6 {
		t.Fatalf("%+v", r)
	}
	var b bytes.Buffer
	if err := r.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "| model ") || !strings.Contains(lines[1], "---: |") ||
		!strings.Contains(lines[2], "1.13 MiB") || !strings.Contains(lines[2], "0.29 M") || !strings.Contains(lines[2], " ± ") {
		t.Fatalf("markdown:\n%s", b.String())
	}
	if m, s := meanStd([]float64{1, 2, 3}); m != 2 || s != 1 {
		t.Fatal(m, s)
	}
}
