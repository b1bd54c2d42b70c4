package commands

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/qsparse/qsparse/eval"
	"github.com/qsparse/qsparse/model"
)

// evalCommand builds the eval subcommand.
func evalCommand() *cli.Command {
	return &cli.Command{
		Name:  "eval",
		Usage: "perplexity of a model on a text file, as llama.cpp's llama-perplexity computes it",
		UsageText: "qsparse eval -m model.gguf -f wiki.test.raw                  # llama-perplexity's numbers\n" +
			"qsparse eval -m model.gguf -f wiki.test.raw -c 512 --chunks 40 --sparsity 0,0.25,0.5\n" +
			"qsparse eval -m model.gguf -f wiki.test.raw --base model-f16.gguf  # KL divergence\n",
		Description: "The text is tokenized whole and cut into non-overlapping chunks of --ctx tokens; each chunk\n" +
			"starts from an empty cache (its first token replaced by BOS when the vocab adds BOS) and its\n" +
			"second half is scored. Running values go to stderr, the result table (or JSON) to stdout.",
		Flags: []cli.Flag{
			modelFlag(),
			&cli.StringFlag{Name: "data", Aliases: []string{"f"}, Usage: "text file to evaluate (e.g. wiki.test.raw)"},
			&cli.StringFlag{Name: "base", Usage: "also compare with this base model (KL divergence, same top token), as llama-perplexity --kl-divergence"},
			&cli.StringFlag{Name: "base-weight-type", Value: "auto", Usage: "--weight-type of the --base model"},
			&cli.IntFlag{Name: "ctx", Aliases: []string{"c"}, Value: 512, Usage: "tokens per chunk"},
			&cli.IntFlag{Name: "batch", Aliases: []string{"b"}, Usage: "tokens per forward call (0: --ctx)"},
			&cli.IntFlag{Name: "chunks", Usage: "evaluate at most this many chunks (0: all)"},
			&cli.StringFlag{Name: "sparsity", Value: "0", Usage: "comma-separated uniform activation sparsities in [0, 1), one result row each (top-K by |x| per token at every site: k = int((1-s)*dim)), e.g. 0,0.25,0.5"},
			weightTypeFlag(),
			threadsFlag(),
			jsonFlag(),
			quietFlag(),
			allowLongCtxFlag(),
		},
		Action: runEval,
	}
}

func runEval(c *cli.Context) error {
	if args := cmdArgs(c); len(args) > 0 {
		return usagef("eval: unexpected arguments %q (use --model and --data)", args)
	}
	if err := checkModelFlags(c); err != nil {
		return err
	}
	mpath := c.String("model")
	data := c.String("data")
	if data == "" {
		return usagef("eval: --data is required (a text file, e.g. wiki.test.raw)")
	}
	nctx, batch, chunks := c.Int("ctx"), c.Int("batch"), c.Int("chunks")
	if nctx < 4 {
		return usagef("eval: --ctx must be at least 4, got %d", nctx)
	}
	if batch < 0 {
		return usagef("eval: --batch must be >= 0, got %d", batch)
	}
	if chunks < 0 {
		return usagef("eval: --chunks must be >= 0, got %d", chunks)
	}
	switch c.String("base-weight-type") {
	case "", "auto", "f32", "f16":
	default:
		return usagef("eval: --base-weight-type must be auto, f32 or f16, got %q", c.String("base-weight-type"))
	}
	if batch > nctx {
		fmt.Fprintf(stderr(c), "warning: --batch %d is larger than --ctx %d: a chunk is one batch of %d\n", batch, nctx, nctx)
	}
	if batch == 0 || batch > nctx {
		batch = nctx
	}
	ratios, err := parseSparsities(c.String("sparsity"))
	if err != nil {
		return err
	}
	nthreads, err := threads(c)
	if err != nil {
		return err
	}
	text, err := os.ReadFile(data)
	if err != nil {
		return fmt.Errorf("eval: reading data: %w", err)
	}
	m, err := loadModel(c, nctx)
	if err != nil {
		return err
	}
	defer m.Close()
	var base *model.Model
	if bpath := c.String("base"); bpath != "" {
		wt := c.String("base-weight-type")
		base, err = model.Load(bpath, model.LoadOptions{WeightType: wt, Threads: nthreads, Ctx: nctx})
		if err != nil {
			return fmt.Errorf("loading base model: %w", err)
		}
		defer base.Close()
	}
	if err := checkCtx(c, m, nctx); err != nil {
		return err
	}
	errw := infoWriter(c)

	t0 := time.Now()
	tokens := eval.Tokenize(m, string(text))
	if err := eval.CheckTokens(len(tokens), nctx); err != nil {
		return fmt.Errorf("eval %s: %w", data, err)
	}
	if base != nil && !slices.Equal(eval.Tokenize(base, string(text)), tokens) {
		return fmt.Errorf("eval: the base model tokenizes %s differently from the model; KL divergence needs the same tokenizer", data)
	}
	opts := eval.PPLOptions{Ctx: nctx, Batch: batch, Chunks: chunks}
	nChunks := eval.NumChunks(len(tokens), opts)
	if have := len(tokens) / nctx; chunks > have {
		fmt.Fprintf(errw, "warning: --chunks %d: %s holds only %d chunks of %d tokens; evaluating %d\n", chunks, data, have, nctx, have)
	}
	fmt.Fprintf(errw, "perplexity: tokenized %s into %d tokens in %.2f s\n", data, len(tokens), time.Since(t0).Seconds())
	fmt.Fprintf(errw, "perplexity: calculating perplexity over %d chunks, n_ctx=%d, batch_size=%d, threads=%d\n",
		nChunks, nctx, batch, nthreads)

	rep := &eval.Report{Model: mpath, Data: data, Ctx: nctx, Batch: batch, Threads: nthreads, DataTokens: len(tokens)}
	if base != nil {
		rep.Base = c.String("base")
	}
	for i, r := range ratios {
		var prof *model.Profile
		if r > 0 {
			if prof, err = model.UniformProfile(&m.Spec, r); err != nil {
				return fmt.Errorf("eval: %w", err)
			}
		}
		label := eval.SparsityLabel(r)
		if len(ratios) > 1 {
			fmt.Fprintf(errw, "perplexity: sparsity %g (%s)\n", r, label)
		}
		bar := newBar(errw, nChunks, "perplexity")
		var running strings.Builder
		opts.Progress = func(p eval.Progress) {
			s := eval.FormatRunning(p.Chunk, p.PPL)
			running.WriteString(s)
			if bar != nil {
				bar.Describe(s)
				_ = bar.Add(1)
				return
			}
			fmt.Fprint(errw, s)
		}
		var res *eval.PPLResult
		var kl *eval.KLResult
		if base != nil {
			kl, err = eval.KLDivergenceProfile(c.Context, base, m, prof, tokens, opts)
		} else {
			res, err = eval.PerplexityProfile(c.Context, m, prof, tokens, opts)
		}
		if bar != nil {
			_ = bar.Finish()
			fmt.Fprint(errw, running.String())
		}
		if running.Len() > 0 {
			fmt.Fprintln(errw)
		}
		if err != nil {
			return fmt.Errorf("eval %s: %w", data, err)
		}
		if kl != nil {
			fmt.Fprintln(errw, eval.FormatFinal(&eval.PPLResult{PPL: kl.PPL, Err: kl.Err}))
			fmt.Fprint(errw, eval.FormatKL(kl))
			if i == 0 {
				rep.Rows = append(rep.Rows, eval.Row{Label: "base", PPL: kl.BasePPL, Err: kl.BaseErr, MeanNLL: kl.BaseMeanNLL,
					Tokens: kl.Tokens, Chunks: kl.Chunks, SameTop: 1})
			}
			label = "model"
			if len(ratios) > 1 || r > 0 {
				label = "model, " + eval.SparsityLabel(r)
			}
			rep.Rows = append(rep.Rows, eval.RowFromKL(label, r, kl))
		} else {
			fmt.Fprintln(errw, eval.FormatFinal(res))
			rep.Rows = append(rep.Rows, eval.RowFromPPL(label, r, res))
		}
	}
	if c.Bool("json") {
		return rep.WriteJSON(stdout(c))
	}
	return rep.WriteTable(stdout(c))
}

// parseSparsities parses --sparsity: comma-separated ratios in [0, 1).
func parseSparsities(v string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		r, err := strconv.ParseFloat(f, 64)
		if err != nil || !(r >= 0 && r < 1) {
			return nil, usagef("eval: --sparsity wants comma-separated fractions in [0, 1) such as 0,0.25,0.5, got %q", f)
		}
		if slices.Contains(out, r) {
			return nil, usagef("eval: --sparsity lists %g twice", r)
		}
		out = append(out, r)
	}
	return out, nil
}
