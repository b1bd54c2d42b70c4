package eval

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/qsparse/qsparse/model"
)

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
		if want := model.Argmax(logits); id != want {
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
