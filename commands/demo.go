package commands

import (
	_ "embed"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/qsparse/qsparse/calibrate"
	"github.com/qsparse/qsparse/chat"
	"github.com/qsparse/qsparse/eval"
	"github.com/qsparse/qsparse/model"
	"github.com/qsparse/qsparse/pull"
)

// demoText is the demo's built-in evaluation text (plain English written for qsparse, ~5 kB).
//
//go:embed demo_text.txt
var demoText string

// demoSparsities are the uniform sparsities of the demo's table, dense first.
var demoSparsities = []float64{0, 0.25, 0.4, 0.5}

// demoCommand builds the demo subcommand.
func demoCommand() *cli.Command {
	return &cli.Command{
		Name:      "demo",
		Usage:     "pull the default model if needed, print accuracy against sparsity on a built-in text, and generate dense and at 50%",
		UsageText: "qsparse demo                     # SmolLM2-135M-Instruct (downloaded once, ~98 MB)\nqsparse demo -m model.gguf -p \"Tell me about bread.\"",
		Description: "The table is a sweep (as qsparse eval --sparsity 0,0.25,0.4,0.5, plus a profile calibrated for 50%\n" +
			"by qsparse calibrate --method kl on the first half of a ~5 kB built-in English text) over the text's\n" +
			"second half cut into --ctx-token chunks: PPL, ΔPPL, KL divergence from dense, same top-1 token and\n" +
			"the weight bytes a decoded token reads. Then the prompt is answered greedily (through the chat\n" +
			"template when the model has one) dense and with 50% uniform top-K activation sparsity, with\n" +
			"tokens per second for each.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Value: "smollm2", Usage: "GGUF file, Hugging Face folder, or a built-in name (pulled when absent)"},
			&cli.StringFlag{Name: "prompt", Aliases: []string{"p"}, Value: "What is the capital of France?", Usage: "question to answer dense and at 50%"},
			&cli.IntFlag{Name: "n", Value: 40, Usage: "generate at most this many tokens per answer"},
			&cli.IntFlag{Name: "ctx", Aliases: []string{"c"}, Value: 256, Usage: "tokens per evaluation chunk"},
			&cli.BoolFlag{Name: "calibrate", Value: true, Usage: "also calibrate a 50% profile (kl method) on the first half of the text and add its row (--calibrate=false: uniform rows only)"},
			&cli.StringFlag{Name: "layout", Value: model.LoadCols, Usage: "site weight layout: cols (column-major packs: sparse decode kernels) or rows"},
			threadsFlag(),
			weightTypeFlag(),
			quietFlag(),
		},
		Action: runDemo,
	}
}

func runDemo(c *cli.Context) error {
	if args := cmdArgs(c); len(args) > 0 {
		return usagef("demo: unexpected arguments %q (use --model and --prompt)", args)
	}
	nctx, n := c.Int("ctx"), c.Int("n")
	if nctx < 4 {
		return usagef("demo: --ctx must be at least 4, got %d", nctx)
	}
	if n <= 0 {
		return usagef("demo: -n must be at least 1, got %d", n)
	}
	nthreads, err := threads(c)
	if err != nil {
		return err
	}
	wt, err := weightType(c)
	if err != nil {
		return err
	}
	info := infoWriter(c)
	out := stdout(c)
	t0 := time.Now()
	mpath := c.String("model")
	if k := pull.Lookup(mpath); k != nil {
		if _, err := os.Stat(mpath); err != nil { // not a local file of that name: the cache
			fmt.Fprintf(info, "demo: model %s (%s), downloading it to the cache if absent (%d MB)\n", k.Name, k.Desc, k.Size>>20)
			if mpath, err = pull.Ensure(c.Context, k.Name, ""); err != nil {
				return fmt.Errorf("demo: %w", err)
			}
		}
	}
	// Column-major site packs (as run with --sparsity): sparse decode reads only the kept columns.
	m, err := model.Load(mpath, model.LoadOptions{WeightType: wt, Threads: nthreads, Ctx: nctx, Layout: c.String("layout")})
	if err != nil {
		return fmt.Errorf("demo: loading model: %w", err)
	}
	defer m.Close()
	fmt.Fprintf(info, "demo: %s loaded in %.1f s\n", mpath, time.Since(t0).Seconds())

	all := eval.Tokenize(m, demoText)
	if m.Spec.CtxLen > 0 && nctx > m.Spec.CtxLen {
		return usagef("demo: --ctx %d is longer than the model's training context %d", nctx, m.Spec.CtxLen)
	}
	// Calibrate on the first half of the text, evaluate on the second.
	calTokens, tokens := all[:len(all)/2], all[len(all)/2:]
	if err := eval.CheckTokens(len(tokens), nctx); err != nil {
		return fmt.Errorf("demo: the second half of the built-in text: %w", err)
	}
	configs, err := eval.Grid{Sparsities: demoSparsities}.Configs(&m.Spec)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	var calibrated *model.Profile
	if c.Bool("calibrate") {
		t2 := time.Now()
		opt := calibrate.Options{Method: calibrate.MethodKL, Target: 0.5, Tokens: len(calTokens),
			KLTokens: min(128, len(calTokens)/2), Ctx: min(nctx, len(calTokens)), Threads: nthreads}
		fmt.Fprintf(info, "demo: calibrating a 50%% profile (kl method) on the first half of the built-in text (%d tokens)\n", len(calTokens))
		p, err := calibrate.Calibrate(c.Context, m, calTokens, opt)
		if err != nil {
			return fmt.Errorf("demo: calibrate: %w", err)
		}
		cfg, err := eval.ProfileConfig(&m.Spec, "calibrated kl", p)
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		configs = append(configs, cfg)
		calibrated = p
		fmt.Fprintf(info, "demo: calibrated in %.1f s\n", time.Since(t2).Seconds())
	}
	opts := eval.SweepOptions{PPLOptions: eval.PPLOptions{Ctx: nctx}}
	nChunks := eval.NumChunks(len(tokens), opts.PPLOptions)
	fmt.Fprintf(info, "demo: accuracy vs sparsity on the second half of the built-in text (%d tokens, %d chunks of %d), %d threads\n",
		len(tokens), nChunks, nctx, nthreads)
	opts.RowStart = func(i, n int, label string) { fmt.Fprintf(info, "demo: row %d of %d: %s\n", i+1, n, label) }
	t1 := time.Now()
	rep, err := eval.Sweep(c.Context, m, tokens, configs, opts)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	rep.Model, rep.Data, rep.Threads = mpath, "built-in text", nthreads
	fmt.Fprintf(out, "Accuracy vs activation sparsity (top-K |x|: uniform, and calibrated per layer and site), %s, second half of the built-in text, %d chunks of %d tokens, %.1f s:\n",
		m.Spec.Name, nChunks, nctx, time.Since(t1).Seconds())
	if err := rep.WriteTable(out); err != nil {
		return err
	}

	prompt, err := demoPrompt(m, c.String("prompt"))
	if err != nil {
		return err
	}
	st := m.NewState(nctx)
	half, halfLabel := calibrated, "50% calibrated"
	if half == nil {
		if half, err = model.UniformProfile(&m.Spec, 0.5); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		halfLabel = "50% uniform"
	}
	fmt.Fprintf(out, "\nPrompt: %s\n", c.String("prompt"))
	for _, run := range []struct {
		label string
		p     *model.Profile
	}{{"dense", nil}, {halfLabel, half}} {
		if err := st.SetProfile(run.p); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		text, stats, err := demoGenerate(c, m, st, prompt, n)
		if err != nil {
			return fmt.Errorf("demo: %s: %w", run.label, err)
		}
		fmt.Fprintf(out, "\n[%s] %s\n", run.label, strings.TrimSpace(text))
		fmt.Fprintf(out, "[%s] %d tokens, %.1f tokens/s (prompt %d tokens, %.1f tokens/s)\n", run.label,
			stats.Generated, stats.EvalTPS(), stats.PromptTokens, stats.PromptTPS())
	}
	fmt.Fprintf(info, "demo: done in %.1f s\n", time.Since(t0).Seconds())
	return nil
}

// demoPrompt renders the question through the model's chat template, or leaves it plain text
// for a model without one.
func demoPrompt(m *model.Model, q string) ([]int, error) {
	text := q
	if t, err := chat.Detect(m.ChatTemplate); err == nil {
		if text, err = t.Render([]chat.Message{{Role: "user", Content: q}}, true); err != nil {
			return nil, fmt.Errorf("demo: chat template: %w", err)
		}
	}
	return m.Tok.Encode(text, true, true), nil
}

// demoGenerate answers prompt greedily on st (the run command's code path, eval.Generate).
func demoGenerate(c *cli.Context, m *model.Model, st *model.State, prompt []int, n int) (string, *eval.GenStats, error) {
	var b strings.Builder
	stream := m.Tok.NewStreamer()
	opts := eval.GenOptions{MaxTokens: n, Ctx: st.Ctx(), Vocab: m.Spec.Vocab, IsEOG: m.Tok.IsEOG}
	stats, err := eval.Generate(c.Context, st, prompt, opts, func(id int) error {
		_, err := b.Write(stream.Add(id))
		return err
	})
	b.Write(stream.Flush())
	return b.String(), stats, err
}
