package commands

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/qsparse/qsparse/eval"
	"github.com/qsparse/qsparse/model"
	"github.com/qsparse/qsparse/sparse"
)

// benchCommand builds the bench subcommand.
func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "prompt processing and text generation speed, as llama-bench measures them",
		UsageText: "qsparse bench -m model.gguf                # pp512 and tg128, 3 runs each\n" +
			"qsparse bench -m model.gguf -p 0 -n 64 -r 5 --json",
		Description: "pp<P>: one batched forward of P tokens from an empty cache; tg<N>: N single-token decodes.\n" +
			"Each test runs once untimed, then -r times; t/s is the mean ± sample stddev over the runs.",
		Flags: append([]cli.Flag{
			modelFlag(),
			&cli.IntFlag{Name: "n-prompt", Aliases: []string{"p"}, Value: 512, Usage: "prompt tokens of the pp test (0: skip)"},
			&cli.IntFlag{Name: "n-gen", Aliases: []string{"n"}, Value: 128, Usage: "generated tokens of the tg test (0: skip)"},
			&cli.IntFlag{Name: "repetitions", Aliases: []string{"r"}, Value: 3, Usage: "timed runs of each test"},
			weightTypeFlag(),
			threadsFlag(),
			jsonFlag(),
			quietFlag(),
		}, sparsityFlags(true)...),
		Action: runBench,
	}
}

func runBench(c *cli.Context) error {
	if args := cmdArgs(c); len(args) > 0 {
		return usagef("unexpected arguments %q", args)
	}
	if err := checkModelFlags(c); err != nil {
		return err
	}
	mpath, err := modelPath(c)
	if err != nil {
		return err
	}
	np, ng, reps := c.Int("n-prompt"), c.Int("n-gen"), c.Int("repetitions")
	switch {
	case np < 0 || ng < 0:
		return usagef("-p and -n must be >= 0, got %d and %d", np, ng)
	case np == 0 && ng == 0:
		return usagef("nothing to do (-p 0 and -n 0)")
	case reps < 1:
		return usagef("-r must be >= 1, got %d", reps)
	}
	nthreads, err := threads(c)
	if err != nil {
		return err
	}
	sreq, err := parseSparsityFlags(c, true)
	if err != nil {
		return err
	}
	info, err := model.Inspect(mpath)
	if err != nil {
		return fmt.Errorf("%s: %w", mpath, err)
	}
	nctx := max(np, ng, 1)
	m, err := loadModelLayout(c, nctx, sreq.loadLayout())
	if err != nil {
		return err
	}
	defer m.Close()
	cfgs, err := sreq.configs(c, &m.Spec, m.DefaultProfile, true)
	if err != nil {
		return err
	}
	var runs []eval.BenchConfig
	for _, cfg := range cfgs {
		st, err := newSparseState(c, m, nctx, cfg)
		if err != nil {
			return err
		}
		label := cfg.label
		if len(cfgs) == 1 && cfg.prof == nil {
			label = "" // plain llama-bench table
		}
		runs = append(runs, eval.BenchConfig{Label: label, St: st})
	}

	var size int64
	for _, t := range info.Tensors {
		size += t.Bytes
	}
	bm := eval.BenchModel{
		Desc:    modelDesc(info),
		Size:    size,
		Params:  info.Params,
		Backend: "CPU (" + sparse.Backend() + ", " + m.WeightType + ", " + layoutDesc(m) + ")",
		Threads: nthreads,
	}
	errw := infoWriter(c)
	bar := newBar(errw, (boolInt(np > 0)+boolInt(ng > 0))*reps, "bench")
	if cpu := cpuName(); cpu != "" {
		fmt.Fprintf(errw, "cpu: %s\n", cpu)
	}
	opts := eval.BenchOptions{Prompt: np, Gen: ng, Reps: reps, Vocab: m.Spec.Vocab, BOS: eval.BOS(m),
		Progress: func(test string, rep, reps int) {
			if bar != nil {
				bar.Describe(fmt.Sprintf("%s %d/%d", test, rep, reps))
				_ = bar.Add(1)
			}
		}}
	rep, err := eval.BenchAlternating(c.Context, runs, bm, opts)
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", mpath, err)
	}
	if c.Bool("json") {
		return rep.WriteJSON(stdout(c))
	}
	return rep.WriteMarkdown(stdout(c))
}

// layoutDesc names the site weight layout of a loaded model: rows, cols, or ternary-q8 for a
// ternary pack (whose site matrices are not fp16).
func layoutDesc(m *model.Model) string {
	if l := m.SiteLayout(); l == model.LayoutTernaryQ8 {
		return l
	}
	return m.Layout
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// modelDesc describes a model as llama-bench's model column: arch, size class, file type.
func modelDesc(info *model.Info) string {
	p := float64(info.Params)
	var size string
	switch {
	case p >= 1e9:
		size = fmt.Sprintf("%.0fB", p/1e9)
	case p >= 1e6:
		size = fmt.Sprintf("%.0fM", p/1e6)
	default:
		size = fmt.Sprintf("%.1fM", p/1e6)
	}
	return strings.TrimSpace(fmt.Sprintf("%s %s %s", info.Spec.Arch, size, info.FileType))
}
