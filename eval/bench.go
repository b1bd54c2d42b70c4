package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
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
	Test    string `json:"test"`
	NPrompt int    `json:"n_prompt"`
	NGen    int    `json:"n_gen"`
	// Sparsity labels the configuration of a multi-configuration run (BenchAlternating), e.g.
	// "dense" or "0.5"; "" for a single one.
	Sparsity string    `json:"sparsity,omitempty"`
	Samples  []float64 `json:"samples_ts"` // tokens per second of each repetition
	AvgTS    float64   `json:"avg_ts"`
	StdTS    float64   `json:"stddev_ts"`
	MedianTS float64   `json:"median_ts"`
}

// BenchConfig is one configuration of BenchAlternating: a label and the State it runs.
type BenchConfig struct {
	Label string
	St    Forwarder
}

// BenchReport is the result of Bench; the markdown table and the JSON are built from it.
type BenchReport struct {
	Rows []BenchRow `json:"rows"`
}

// Bench measures prompt processing and text generation speed as llama-bench does: random tokens
// (the first one BOS when the vocab adds it), one untimed warm-up run per test, then Reps timed
// runs each starting from a cleared cache; t/s is averaged over runs, with the sample stddev.
func Bench(ctx context.Context, st Forwarder, m BenchModel, opts BenchOptions) (*BenchReport, error) {
	return BenchAlternating(ctx, []BenchConfig{{St: st}}, m, opts)
}

// BenchAlternating is Bench over several configurations (dense and sparse States of one model)
// in alternating rounds: every repetition of a test runs each configuration once, in forward
// order on even rounds and backward on odd ones, so drifts of a shared machine hit all alike.
// Each configuration sees the same tokens. The report has one row per test and configuration.
func BenchAlternating(ctx context.Context, cfgs []BenchConfig, m BenchModel, opts BenchOptions) (*BenchReport, error) {
	if opts.Reps <= 0 {
		opts.Reps = 1
	}
	if opts.Vocab <= 0 {
		return nil, fmt.Errorf("bench: vocabulary size %d is invalid", opts.Vocab)
	}
	if len(cfgs) == 0 {
		return nil, fmt.Errorf("bench: no configuration to run")
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
	pp := func(st Forwarder, toks []int) error {
		st.Reset()
		return st.Forward(toks, 0, logits)
	}
	tg := func(st Forwarder, toks []int) error {
		st.Reset()
		for i := range toks {
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
		run        func(Forwarder, []int) error
		warm       int // tokens of the warm-up run
	}
	var tests []test
	if opts.Prompt > 0 {
		tests = append(tests, test{fmt.Sprintf("pp%d", opts.Prompt), opts.Prompt, 0, opts.Prompt, pp, opts.Prompt})
	}
	if opts.Gen > 0 {
		tests = append(tests, test{fmt.Sprintf("tg%d", opts.Gen), 0, opts.Gen, opts.Gen, tg, 1})
	}
	for _, t := range tests {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		rows := make([]BenchRow, len(cfgs))
		warm := random(t.warm)
		for i, c := range cfgs {
			if err := t.run(c.St, warm); err != nil {
				return nil, fmt.Errorf("bench: %s warm-up: %w", t.name, err)
			}
			rows[i] = BenchRow{BenchModel: m, Test: t.name, NPrompt: t.np, NGen: t.ng, Sparsity: c.Label}
		}
		for r := 0; r < opts.Reps; r++ {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("bench: %w", err)
			}
			if opts.Progress != nil {
				opts.Progress(t.name, r+1, opts.Reps)
			}
			toks := random(t.nt)
			for j := range cfgs {
				i := j
				if r%2 == 1 {
					i = len(cfgs) - 1 - j
				}
				t0 := time.Now()
				if err := t.run(cfgs[i].St, toks); err != nil {
					return nil, fmt.Errorf("bench: %s: %w", t.name, err)
				}
				d := time.Since(t0)
				rows[i].Samples = append(rows[i].Samples, float64(t.nt)/math.Max(d.Seconds(), 1e-9))
			}
		}
		for i := range rows {
			rows[i].AvgTS, rows[i].StdTS = meanStd(rows[i].Samples)
			rows[i].MedianTS = median(rows[i].Samples)
		}
		rep.Rows = append(rep.Rows, rows...)
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

// median returns the median of v (the mean of the middle two for an even count).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
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
	multi := false
	for _, row := range r.Rows {
		multi = multi || row.Sparsity != ""
	}
	if multi { // several configurations: their label, and the median the ratios are read from
		cols = append(cols[:6], col{"sparsity", 8, false}, cols[6], col{"median t/s", 10, false})
	}
	cells := make([][]string, len(r.Rows))
	for i, row := range r.Rows {
		cells[i] = []string{row.Desc, FormatSize(row.Size), FormatParams(row.Params), row.Backend,
			fmt.Sprint(row.Threads), row.Test, fmt.Sprintf("%.2f ± %.2f", row.AvgTS, row.StdTS)}
		if multi {
			cells[i] = append(cells[i][:6], row.Sparsity, cells[i][6], fmt.Sprintf("%.2f", row.MedianTS))
		}
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
