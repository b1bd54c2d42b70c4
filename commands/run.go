package commands

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/qsparse/qsparse/chat"
	"github.com/qsparse/qsparse/eval"
	"github.com/qsparse/qsparse/model"
)

func init() {
	register(&cli.Command{
		Name:  "run",
		Usage: "generate text from a prompt, streaming tokens to stdout",
		Description: "Without --chat the prompt is echoed and continued (as llama-completion does); with --chat it is\n" +
			"wrapped in the model's chat template (ChatML, Llama-2 or Llama-3) and only the reply is printed.\n" +
			"Timings go to stderr.",
		Flags: []cli.Flag{
			modelFlag(),
			&cli.StringFlag{Name: "prompt", Aliases: []string{"p"}, Usage: "prompt text"},
			&cli.IntFlag{Name: "n-predict", Aliases: []string{"n"}, Value: 128, Usage: "tokens to generate (-1: until end of text or a full context)"},
			&cli.Float64Flag{Name: "temp", Value: 0.8, Usage: "sampling temperature (0: greedy)"},
			&cli.IntFlag{Name: "top-k", Value: 40, Usage: "sample from the K most likely tokens (0: all)"},
			&cli.Float64Flag{Name: "top-p", Value: 0.95, Usage: "sample from the smallest set of tokens whose probability reaches P (1: all)"},
			&cli.Int64Flag{Name: "seed", Value: -1, Usage: "random seed (-1: from the clock)"},
			&cli.IntFlag{Name: "ctx", Aliases: []string{"c"}, Usage: "context size in tokens (0: the model's, at most 4096)"},
			weightTypeFlag(),
			threadsFlag(0),
			&cli.BoolFlag{Name: "chat", Usage: "apply the model's chat template to the prompt"},
			&cli.StringFlag{Name: "system", Usage: "system prompt (with --chat)"},
		},
		OnUsageError: commandUsageError,
		Action:       runRun,
	})
	cmd := commandList[len(commandList)-1]
	cmd.Flags = append(cmd.Flags, sparsityFlags(false)...)
}

func runRun(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("run: unexpected arguments %q (give the prompt with -p)", c.Args().Slice())
	}
	if err := checkModelFlags(c); err != nil {
		return err
	}
	prompt := c.String("prompt")
	if !c.IsSet("prompt") {
		return usagef("run: -p PROMPT is required")
	}
	n := c.Int("n-predict")
	temp, topK, topP := c.Float64("temp"), c.Int("top-k"), c.Float64("top-p")
	nctx := c.Int("ctx")
	switch {
	case n < -1 || n == 0:
		return usagef("run: -n must be positive or -1, got %d", n)
	case temp < 0:
		return usagef("run: --temp must be >= 0, got %g", temp)
	case topK < 0:
		return usagef("run: --top-k must be >= 0, got %d", topK)
	case topP <= 0 || topP > 1:
		return usagef("run: --top-p must be in (0, 1], got %g", topP)
	case nctx < 0:
		return usagef("run: --ctx must be >= 0, got %d", nctx)
	case c.IsSet("system") && !c.Bool("chat"):
		return usagef("run: --system needs --chat")
	}
	seed := c.Int64("seed")
	if seed < 0 {
		seed = time.Now().UnixNano() & (1<<62 - 1)
	}
	sreq, err := parseSparsityFlags(c, false)
	if err != nil {
		return err
	}
	if c.IsSet("sparsity") && c.IsSet("profile") {
		return usagef("run: give --sparsity or --profile, not both")
	}

	m, err := loadModelLayout(c, nctx, sreq.loadLayout())
	if err != nil {
		return err
	}
	defer m.Close()
	out, errw := stdout(c), stderr(c)
	cfgs, err := sreq.configs(c, &m.Spec, m.DefaultProfile, false)
	if err != nil {
		return err
	}

	text := prompt
	if c.Bool("chat") {
		text, err = chat.Apply(m.ChatTemplate, c.String("system"), prompt)
		if err != nil {
			if errors.Is(err, chat.ErrNoTemplate) {
				return fmt.Errorf("run --chat: %w; run without --chat to continue the prompt as plain text", err)
			}
			return fmt.Errorf("run --chat: %w", err)
		}
	}
	// As llama-completion: special tokens added (BOS) and special-token text parsed.
	tokens := m.Tok.Encode(text, true, true)
	st, err := newSparseState(c, m, nctx, cfgs[0])
	if err != nil {
		return err
	}
	if p := cfgs[0].prof; p != nil {
		fmt.Fprintf(errw, "sparsity: %s, scoring %s, %.1f%% of the site weights skipped per token, layout %s\n",
			cfgs[0].label, p.Scoring, 100*p.ByteSparsity(&m.Spec), m.Layout)
	}
	if m.Spec.CtxLen > 0 && st.Ctx() > m.Spec.CtxLen {
		fmt.Fprintf(errw, "warning: --ctx %d is longer than the model's training context %d\n", st.Ctx(), m.Spec.CtxLen)
	}
	if len(tokens) > st.Ctx() {
		return fmt.Errorf("run: %w: the prompt is %d tokens but the context holds %d; use a larger --ctx or a shorter prompt",
			eval.ErrPromptTooLong, len(tokens), st.Ctx())
	}
	if temp > 0 {
		fmt.Fprintf(errw, "sampler: temp %g, top-k %d, top-p %g, seed %d\n", temp, topK, topP, seed)
	}

	if !c.Bool("chat") {
		if _, err := io.WriteString(out, prompt); err != nil {
			return err
		}
	}
	stream := m.Tok.NewStreamer()
	sampler := model.NewSampler(m.Spec.Vocab, model.SamplerOptions{Temperature: temp, TopK: topK, TopP: topP, Seed: uint64(seed)})
	opts := eval.GenOptions{
		MaxTokens: max(n, 0),
		Ctx:       st.Ctx(),
		Vocab:     m.Spec.Vocab,
		Sample:    sampler.Sample,
		IsEOG:     m.Tok.IsEOG,
	}
	stats, genErr := eval.Generate(c.Context, st, tokens, opts, func(id int) error {
		_, err := out.Write(stream.Add(id))
		return err
	})
	if _, err := out.Write(stream.Flush()); err != nil && genErr == nil {
		genErr = err
	}
	fmt.Fprintln(out)
	if stats != nil {
		if stats.StopReason == "context" {
			fmt.Fprintf(errw, "\nrun: stopped: the context of %d tokens is full\n", st.Ctx())
		}
		fmt.Fprintf(errw, "\nprompt eval: %d tokens, %.2f tok/s (%.2f ms)\n", stats.PromptTokens, stats.PromptTPS(),
			float64(stats.PromptTime.Microseconds())/1000)
		fmt.Fprintf(errw, "eval: %d tokens, %.2f tok/s (%.2f ms)\n", stats.EvalTokens, stats.EvalTPS(),
			float64(stats.EvalTime.Microseconds())/1000)
	}
	if genErr != nil {
		return fmt.Errorf("run: %w", genErr)
	}
	return nil
}
