package commands

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/qsparse/qsparse/eval"
	"github.com/qsparse/qsparse/model"
)

func init() {
	register(&cli.Command{
		Name:  "eval",
		Usage: "perplexity of a model on a text file, as llama.cpp's llama-perplexity computes it",
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
			weightTypeFlag(),
			threadsFlag(0),
			jsonFlag(),
		},
		OnUsageError: commandUsageError,
		Action:       runEval,
	})
}

func runEval(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("eval: unexpected arguments %q (use --model and --data)", c.Args().Slice())
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
	if batch == 0 || batch > nctx {
		batch = nctx
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
	errw := stderr(c)
	if m.Spec.CtxLen > 0 && nctx > m.Spec.CtxLen {
		fmt.Fprintf(errw, "warning: --ctx %d is longer than the model's training context %d\n", nctx, m.Spec.CtxLen)
	}

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
	fmt.Fprintf(errw, "perplexity: tokenized %s into %d tokens in %.2f s\n", data, len(tokens), time.Since(t0).Seconds())
	fmt.Fprintf(errw, "perplexity: calculating perplexity over %d chunks, n_ctx=%d, batch_size=%d, threads=%d\n",
		nChunks, nctx, batch, nthreads)

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
		kl, err = eval.KLDivergence(c.Context, base, m, tokens, opts)
	} else {
		res, err = eval.Perplexity(c.Context, m, tokens, opts)
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
	rep := &eval.Report{Model: mpath, Data: data, Ctx: nctx, Batch: batch, Threads: nthreads, DataTokens: len(tokens)}
	if kl != nil {
		fmt.Fprintln(errw, eval.FormatFinal(&eval.PPLResult{PPL: kl.PPL, Err: kl.Err}))
		fmt.Fprint(errw, eval.FormatKL(kl))
		rep.Base = c.String("base")
		rep.Rows = []eval.Row{
			{Label: "base", PPL: kl.BasePPL, Err: kl.BaseErr, MeanNLL: kl.BaseMeanNLL, Tokens: kl.Tokens, Chunks: kl.Chunks, SameTop: 1},
			eval.RowFromKL("model", 0, kl),
		}
	} else {
		fmt.Fprintln(errw, eval.FormatFinal(res))
		rep.Rows = []eval.Row{eval.RowFromPPL("dense", 0, res)}
	}
	if c.Bool("json") {
		return rep.WriteJSON(stdout(c))
	}
	return rep.WriteTable(stdout(c))
}
