package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// BenchOptions configures Bench (llama-bench's -p, -n, -r).
type BenchOptions struct {
	Prompt int // pp test: one batched forward of this many tokens from a cleared cache; 0: skip
	Gen    int // tg test: this many single-token decodes from a cleared cache; 0: skip
	Reps   int // repetitions of each test (after one warm-up run)
	Vocab  int
	BOS    int // first token of every test when >= 0 (as llama-bench when the vocab adds BOS)
	// Progress, when set, is called before each timed repetition.
	Progress func(test string, rep, reps int)
}

// BenchModel describes the benchmarked model for the report.
type BenchModel struct {
	Desc    string `json:"model"`      // e.g. "llama 135M Q4_1"
	Size    int64  `json:"size_bytes"` // bytes of all tensors in the file
	Params  int64  `json:"params"`
	Backend string `json:"backend"`
	Threads int    `json:"threads"`
}

// BenchRow is one test of a benchmark: pp<N> or tg<N>.
type BenchRow struct {
	BenchModel
	Test    string    `json:"test"`
	NPrompt int       `json:"n_prompt"`
	NGen    int       `json:"n_gen"`
	Samples []float64 `json:"samples_ts"` // tokens per second of each repetition
	AvgTS   float64   `json:"avg_ts"`
	StdTS   float64   `json:"stddev_ts"`
}

// BenchReport is the result of Bench; the markdown table and the JSON are built from it.
type BenchReport struct {
	Rows []BenchRow `json:"rows"`
}

// Bench measures prompt processing and text generation speed as llama-bench does: random tokens
// (the first one BOS when the vocab adds it), one untimed warm-up run per test, then Reps timed
// runs each starting from a cleared cache; t/s is averaged over runs, with the sample stddev.
func Bench(ctx context.Context, st Forwarder, m BenchModel, opts BenchOptions) (*BenchReport, error) {
	if opts.Reps <= 0 {
		opts.Reps = 1
	}
	if opts.Vocab <= 0 {
		return nil, fmt.Errorf("bench: vocabulary size %d is invalid", opts.Vocab)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []int {
		t := make([]int, n)
		for i := range t {
			t[i] = rng.IntN(opts.Vocab)
		}
		if n > 0 && opts.BOS >= 0 {
			t[0] = opts.BOS
		}
		return t
	}
	logits := make([]float32, opts.Vocab)
	pp := func(n int) error {
		st.Reset()
		return st.Forward(random(n), 0, logits)
	}
	tg := func(n int) error {
		st.Reset()
		toks := random(n)
		for i := 0; i < n; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := st.Forward(toks[i:i+1], i, logits); err != nil {
				return err
			}
		}
		return nil
	}
	rep := &BenchReport{}
	type test struct {
		name       string
		np, ng, nt int
		run        func() error
		warm       func() error
	}
	var tests []test
	if opts.Prompt > 0 {
		tests = append(tests, test{fmt.Sprintf("pp%d", opts.Prompt), opts.Prompt, 0, opts.Prompt,
			func() error { return pp(opts.Prompt) }, func() error { return pp(opts.Prompt) }})
	}
	if opts.Gen > 0 {
		tests = append(tests, test{fmt.Sprintf("tg%d", opts.Gen), 0, opts.Gen, opts.Gen,
			func() error { return tg(opts.Gen) }, func() error { return tg(1) }})
	}
	for _, t := range tests {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		if err := t.warm(); err != nil {
			return nil, fmt.Errorf("bench: %s warm-up: %w", t.name, err)
		}
		row := BenchRow{BenchModel: m, Test: t.name, NPrompt: t.np, NGen: t.ng}
		for r := 0; r < opts.Reps; r++ {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("bench: %w", err)
			}
			if opts.Progress != nil {
				opts.Progress(t.name, r+1, opts.Reps)
			}
			t0 := time.Now()
			if err := t.run(); err != nil {
				return nil, fmt.Errorf("bench: %s: %w", t.name, err)
			}
			d := time.Since(t0)
			row.Samples = append(row.Samples, float64(t.nt)/math.Max(d.Seconds(), 1e-9))
		}
		row.AvgTS, row.StdTS = meanStd(row.Samples)
		rep.Rows = append(rep.Rows, row)
	}
	return rep, nil
}

// meanStd returns the mean and the sample standard deviation (0 for one value), as llama-bench.
func meanStd(x []float64) (mean, std float64) {
	if len(x) == 0 {
		return 0, 0
	}
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	if len(x) < 2 {
		return mean, 0
	}
	var ss float64
	for _, v := range x {
		ss += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(ss / float64(len(x)-1))
}

// WriteJSON writes the report as indented JSON.
func (r *BenchReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// FormatSize formats bytes as llama-bench does ("92.10 MiB", "1.20 GiB").
func FormatSize(b int64) string {
	if b < 1<<30 {
		return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
}

// FormatParams formats a parameter count as llama-bench does ("134.52 M", "7.24 B").
func FormatParams(n int64) string {
	if n < 1e9 {
		return fmt.Sprintf("%.2f M", float64(n)/1e6)
	}
	return fmt.Sprintf("%.2f B", float64(n)/1e9)
}

// WriteMarkdown writes llama-bench's markdown table:
// | model | size | params | backend | threads | test | t/s |.
func (r *BenchReport) WriteMarkdown(w io.Writer) error {
	type col struct {
		name  string
		width int
		left  bool
	}
	cols := []col{{"model", 30, true}, {"size", 10, false}, {"params", 10, false}, {"backend", 10, true},
		{"threads", 7, false}, {"test", 15, false}, {"t/s", 20, false}}
	cells := make([][]string, len(r.Rows))
	for i, row := range r.Rows {
		cells[i] = []string{row.Desc, FormatSize(row.Size), FormatParams(row.Params), row.Backend,
			fmt.Sprint(row.Threads), row.Test, fmt.Sprintf("%.2f ± %.2f", row.AvgTS, row.StdTS)}
		for j, c := range cells[i] {
			if n := len([]rune(c)); n > cols[j].width {
				cols[j].width = n
			}
		}
	}
	var b strings.Builder
	line := func(vals []string) {
		b.WriteString("|")
		for j, v := range vals {
			pad := strings.Repeat(" ", max(0, cols[j].width-len([]rune(v))))
			if cols[j].left {
				b.WriteString(" " + v + pad + " |")
			} else {
				b.WriteString(" " + pad + v + " |")
			}
		}
		b.WriteString("\n")
	}
	names := make([]string, len(cols))
	for j, c := range cols {
		names[j] = c.name
	}
	line(names)
	b.WriteString("|")
	for _, c := range cols {
		if c.left {
			b.WriteString(" " + strings.Repeat("-", c.width) + " |")
		} else {
			b.WriteString(" " + strings.Repeat("-", c.width-1) + ": |")
		}
	}
	b.WriteString("\n")
	for _, c := range cells {
		line(c)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
