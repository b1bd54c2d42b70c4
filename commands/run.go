package commands

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/qsparse/qsparse/chat"
	"github.com/qsparse/qsparse/eval"
	"github.com/qsparse/qsparse/model"
)

// runCommand builds the run subcommand.
func runCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "generate text from a prompt, streaming tokens to stdout",
		UsageText: "qsparse run -m model.gguf -p \"Once upon a time\" -n 64 --temp 0\n" +
			"qsparse run -m model.gguf --chat -p \"What is the capital of France?\"\n" +
			"echo \"Summarise: ...\" | qsparse run -m model.gguf --chat -p -    # prompt from stdin\n" +
			"qsparse run -m model.gguf -f prompt.txt --stop \"\\n\\n\" -s 42 --json\n" +
			"qsparse run -m model.gguf --chat -i                             # chat, one line per turn",
		Description: "Without --chat the prompt is echoed and continued (as llama-completion does); with --chat it is\n" +
			"wrapped in the model's chat template (ChatML, Llama-2 or Llama-3) and only the reply is printed.\n" +
			"The prompt comes from -p TEXT, -p - (stdin) or -f FILE. Generation stops at an end-of-generation\n" +
			"token, after -n tokens, at a --stop string or when the context is full; the reason and the\n" +
			"timings go to stderr (--json: one JSON object with text and statistics on stdout instead).\n" +
			"Sampling: temperature, then top-k, top-p and min-p; --repeat-penalty looks at the prompt and\n" +
			"the last --repeat-last-n tokens. --temp 0 is greedy.",
		Flags: append([]cli.Flag{
			modelFlag(),
			&cli.StringFlag{Name: "prompt", Aliases: []string{"p"}, Usage: "prompt text (-: read it from stdin)"},
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "read the prompt from this file (one trailing newline dropped, as llama.cpp)"},
			&cli.IntFlag{Name: "n-predict", Aliases: []string{"n"}, Value: 128, Usage: "tokens to generate (-1: until end of text or a full context; 0: only evaluate the prompt)"},
			&cli.Float64Flag{Name: "temp", Value: 0.8, Usage: "sampling temperature (0: greedy)"},
			&cli.IntFlag{Name: "top-k", Value: 40, Usage: "sample from the K most likely tokens (0: all)"},
			&cli.Float64Flag{Name: "top-p", Value: 0.95, Usage: "sample from the smallest set of tokens whose probability reaches P (1: all)"},
			&cli.Float64Flag{Name: "min-p", Value: 0, Usage: "drop tokens less likely than P times the most likely one (0: off)"},
			&cli.Float64Flag{Name: "repeat-penalty", Value: 1, Usage: "penalise tokens seen in the last --repeat-last-n tokens (1: off)"},
			&cli.IntFlag{Name: "repeat-last-n", Value: 64, Usage: "tokens --repeat-penalty looks back on"},
			&cli.Int64Flag{Name: "seed", Aliases: []string{"s"}, Value: -1, Usage: "random seed (-1: a new one each run, printed)"},
			&cli.StringSliceFlag{Name: "stop", Usage: "stop before this text (repeatable; \\n, \\t and \\\\ are escapes)"},
			&cli.IntFlag{Name: "ctx", Aliases: []string{"c"}, Usage: "context size in tokens (0: the model's, at most 4096)"},
			allowLongCtxFlag(),
			weightTypeFlag(),
			threadsFlag(),
			&cli.BoolFlag{Name: "chat", Usage: "apply the model's chat template to the prompt"},
			&cli.StringFlag{Name: "system", Usage: "system prompt (with --chat)"},
			&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "with --chat: read one user turn per line from stdin and answer each"},
			jsonFlag(),
			quietFlag(),
		}, sparsityFlags(false)...),
		Action: runRun,
	}
}

// runOpts are the checked flags of run.
type runOpts struct {
	n            int
	sampler      model.SamplerOptions
	seed         int64
	stops        []string
	nctx         int
	chat, json   bool
	interactive  bool
	system       string
	prompt       string
	promptSource string
}

func runFlags(c *cli.Context) (*runOpts, error) {
	if args := cmdArgs(c); len(args) > 0 {
		return nil, usagef("unexpected arguments %q (give the prompt with -p, -p - for stdin, or -f FILE)", args)
	}
	if err := checkModelFlags(c); err != nil {
		return nil, err
	}
	o := &runOpts{
		n: c.Int("n-predict"), nctx: c.Int("ctx"), chat: c.Bool("chat"), json: c.Bool("json"),
		interactive: c.Bool("interactive"), system: c.String("system"), stops: c.StringSlice("stop"),
		sampler: model.SamplerOptions{Temperature: c.Float64("temp"), TopK: c.Int("top-k"), TopP: c.Float64("top-p"),
			MinP: c.Float64("min-p"), RepeatPenalty: c.Float64("repeat-penalty"), RepeatLastN: c.Int("repeat-last-n")},
	}
	s := &o.sampler
	switch {
	case o.n < -1:
		return nil, usagef("-n must be >= 0 or -1 (until the end), got %d", o.n)
	case s.Temperature < 0:
		return nil, usagef("--temp must be >= 0, got %g", s.Temperature)
	case s.TopK < 0:
		return nil, usagef("--top-k must be >= 0, got %d", s.TopK)
	case s.TopP <= 0 || s.TopP > 1:
		return nil, usagef("--top-p must be in (0, 1], got %g", s.TopP)
	case s.MinP < 0 || s.MinP > 1:
		return nil, usagef("--min-p must be in [0, 1], got %g", s.MinP)
	case s.RepeatPenalty <= 0:
		return nil, usagef("--repeat-penalty must be > 0 (1: off), got %g", s.RepeatPenalty)
	case s.RepeatLastN < 1:
		return nil, usagef("--repeat-last-n must be >= 1, got %d", s.RepeatLastN)
	case o.nctx < 0:
		return nil, usagef("--ctx must be >= 0, got %d", o.nctx)
	case c.IsSet("system") && !o.chat:
		return nil, usagef("--system needs --chat")
	case o.interactive && !o.chat:
		return nil, usagef("--interactive needs --chat (it reads one user turn per line)")
	case o.interactive && o.json:
		return nil, usagef("--interactive and --json do not go together")
	case c.IsSet("prompt") && c.IsSet("file"):
		return nil, usagef("give the prompt once: -p TEXT, -p - (stdin) or -f FILE, not both -p and -f")
	case !c.IsSet("prompt") && !c.IsSet("file") && !o.interactive:
		return nil, usagef("-p PROMPT is required (or -p - to read stdin, or -f FILE)")
	}
	for i, st := range o.stops {
		st = unescape(st)
		o.stops[i] = st
		if st == "" {
			return nil, usagef("--stop \"\" would stop at once; give a non-empty text")
		}
	}
	o.seed = c.Int64("seed")
	switch {
	case o.seed < -1:
		return nil, usagef("--seed must be >= 0, or -1 for a new one each run; got %d", o.seed)
	case o.seed == -1:
		o.seed = time.Now().UnixNano() & (1<<62 - 1)
	}
	s.Seed = uint64(o.seed)
	switch {
	case c.IsSet("file"):
		b, err := os.ReadFile(c.String("file"))
		if err != nil {
			return nil, fmt.Errorf("reading the prompt: %w", err)
		}
		o.prompt, o.promptSource = string(b), c.String("file")
	case c.String("prompt") == "-" && !o.interactive:
		b, err := io.ReadAll(stdin(c))
		if err != nil {
			return nil, fmt.Errorf("reading the prompt from stdin: %w", err)
		}
		o.prompt, o.promptSource = string(b), "stdin"
	default:
		o.prompt = c.String("prompt")
	}
	if o.promptSource != "" {
		// As llama.cpp's -f: one trailing newline of a file (or of stdin) is not part of the prompt.
		o.prompt = strings.TrimSuffix(strings.TrimSuffix(o.prompt, "\n"), "\r")
	}
	return o, nil
}

func runRun(c *cli.Context) error {
	o, err := runFlags(c)
	if err != nil {
		return err
	}
	sreq, err := parseSparsityFlags(c, false)
	if err != nil {
		return err
	}
	if c.IsSet("sparsity") && c.IsSet("profile") {
		return usagef("give --sparsity or --profile, not both")
	}
	m, err := loadModelLayout(c, o.nctx, sreq.loadLayout())
	if err != nil {
		return err
	}
	defer m.Close()
	cfgs, err := sreq.configs(c, &m.Spec, m.DefaultProfile, false)
	if err != nil {
		return err
	}
	st, err := newSparseState(c, m, o.nctx, cfgs[0])
	if err != nil {
		return err
	}
	if err := checkCtx(c, m, st.Ctx()); err != nil {
		return err
	}
	info := infoWriter(c)
	if p := cfgs[0].prof; p != nil {
		fmt.Fprintf(info, "sparsity: %s, scoring %s, %.1f%% of the site weights skipped per token, layout %s\n",
			cfgs[0].label, p.Scoring, 100*p.ByteSparsity(&m.Spec), layoutDesc(m))
	}
	if o.sampler.Temperature > 0 {
		fmt.Fprintf(info, "sampler: temp %g, top-k %d, top-p %g, min-p %g, repeat-penalty %g, seed %d\n",
			o.sampler.Temperature, o.sampler.TopK, o.sampler.TopP, o.sampler.MinP, o.sampler.RepeatPenalty, o.seed)
	}
	g := &generator{c: c, m: m, st: st, o: o, info: info}
	if o.interactive {
		return g.chatLoop()
	}
	text := o.prompt
	if o.chat {
		if text, err = g.render([]chat.Message{{Role: "user", Content: o.prompt}}); err != nil {
			return err
		}
	}
	if o.json {
		var buf strings.Builder
		res, err := g.generate(text, &buf)
		if err != nil {
			return err
		}
		res.Text = buf.String()
		return writeJSON(stdout(c), res)
	}
	out := stdout(c)
	if !o.chat {
		if _, err := io.WriteString(out, o.prompt); err != nil {
			return err
		}
	}
	_, err = g.generate(text, out)
	fmt.Fprintln(out)
	return err
}

// generator runs generations on one model and state.
type generator struct {
	c    *cli.Context
	m    *model.Model
	st   *model.State
	o    *runOpts
	info io.Writer
}

// runResult is run's --json output.
type runResult struct {
	Text         string  `json:"text"`
	Stop         string  `json:"stop"`                  // "eog", "limit", "context", "stop"
	StopToken    string  `json:"stop_token,omitempty"`  // the end-of-generation token, for "eog"
	StopString   string  `json:"stop_string,omitempty"` // the --stop text, for "stop"
	Seed         int64   `json:"seed"`
	PromptTokens int     `json:"prompt_tokens"`
	Generated    int     `json:"generated_tokens"`
	EvalTokens   int     `json:"eval_tokens"` // tokens decoded one by one after the prompt
	Ctx          int     `json:"ctx"`
	PromptMS     float64 `json:"prompt_ms"`
	PromptTPS    float64 `json:"prompt_tokens_per_s"`
	EvalMS       float64 `json:"eval_ms"`
	EvalTPS      float64 `json:"eval_tokens_per_s"`
}

func (g *generator) render(msgs []chat.Message) (string, error) {
	t, err := chat.Detect(g.m.ChatTemplate)
	if err != nil {
		if errors.Is(err, chat.ErrNoTemplate) {
			return "", fmt.Errorf("--chat: %w; run without --chat to continue the prompt as plain text", err)
		}
		return "", fmt.Errorf("--chat: %w", err)
	}
	if g.o.system != "" {
		msgs = append([]chat.Message{{Role: "system", Content: g.o.system}}, msgs...)
	}
	return t.Render(msgs, true)
}

// generate continues text, writing the generated text to out, and says on the info writer why
// it stopped and how fast it went.
func (g *generator) generate(text string, out io.Writer) (*runResult, error) {
	m, st, o := g.m, g.st, g.o
	// As llama-completion: special tokens added (BOS) and special-token text parsed.
	tokens := m.Tok.Encode(text, true, true)
	if len(tokens) > st.Ctx() {
		return nil, fmt.Errorf("%w: the prompt is %d tokens but the context holds %d; use a larger --ctx or a shorter prompt",
			eval.ErrPromptTooLong, len(tokens), st.Ctx())
	}
	res := &runResult{Seed: o.seed, Ctx: st.Ctx(), PromptTokens: len(tokens)}
	if o.n == 0 {
		// -n 0: evaluate the prompt only.
		logits := make([]float32, m.Spec.Vocab)
		st.Reset()
		t0 := time.Now()
		if err := st.Forward(tokens, 0, logits); err != nil {
			return nil, fmt.Errorf("prompt: %w", err)
		}
		d := time.Since(t0)
		res.Stop, res.PromptMS = "limit", ms(d)
		res.PromptTPS = (&eval.GenStats{PromptTokens: len(tokens), PromptTime: d}).PromptTPS()
		g.report(res)
		return res, nil
	}
	sampler := model.NewSampler(m.Spec.Vocab, o.sampler)
	for _, t := range tokens {
		sampler.Accept(t)
	}
	sw := &eval.StopWriter{W: out, Stops: o.stops}
	stream := m.Tok.NewStreamer()
	eog := -1
	opts := eval.GenOptions{
		MaxTokens: max(o.n, 0),
		Ctx:       st.Ctx(),
		Vocab:     m.Spec.Vocab,
		Sample:    sampler.Sample,
		IsEOG: func(id int) bool {
			if m.Tok.IsEOG(id) {
				eog = id
				return true
			}
			return false
		},
	}
	stats, genErr := eval.Generate(g.c.Context, st, tokens, opts, func(id int) error {
		sampler.Accept(id)
		_, err := sw.Write(stream.Add(id))
		return err
	})
	if genErr == nil || errors.Is(genErr, eval.ErrStopString) {
		if _, err := sw.Write(stream.Flush()); err != nil && !errors.Is(err, eval.ErrStopString) {
			genErr = err
		}
		if err := sw.Flush(); err != nil && genErr == nil {
			genErr = err
		}
	}
	if stats != nil {
		res.Stop, res.Generated, res.EvalTokens = stats.StopReason, stats.Generated, stats.EvalTokens
		res.PromptMS, res.PromptTPS = ms(stats.PromptTime), stats.PromptTPS()
		res.EvalMS, res.EvalTPS = ms(stats.EvalTime), stats.EvalTPS()
	}
	if errors.Is(genErr, eval.ErrStopString) {
		res.Stop, res.StopString, genErr = "stop", sw.Hit, nil
	}
	if res.Stop == "eog" && eog >= 0 {
		res.StopToken = m.Tok.Detokenize([]int{eog}, false, true)
	}
	if genErr != nil {
		return res, genErr
	}
	g.report(res)
	return res, nil
}

// report says on the info writer why generation stopped and how fast it went.
func (g *generator) report(r *runResult) {
	w := g.info
	if g.o.json {
		return
	}
	fmt.Fprintln(w)
	switch r.Stop {
	case "eog":
		fmt.Fprintf(w, "stopped: end-of-generation token %q after %d tokens\n", r.StopToken, r.Generated)
	case "limit":
		fmt.Fprintf(w, "stopped: -n %d tokens reached\n", g.o.n)
	case "context":
		fmt.Fprintf(w, "stopped: the context of %d tokens is full (raise --ctx)\n", r.Ctx)
	case "stop":
		fmt.Fprintf(w, "stopped: --stop %q after %d tokens\n", r.StopString, r.Generated)
	}
	fmt.Fprintf(w, "prompt eval: %d tokens, %.2f tok/s (%.2f ms)\n", r.PromptTokens, r.PromptTPS, r.PromptMS)
	if g.o.n != 0 {
		fmt.Fprintf(w, "eval: %d tokens, %.2f tok/s (%.2f ms)\n", r.EvalTokens, r.EvalTPS, r.EvalMS)
	}
}

// chatLoop is --interactive: each stdin line is a user turn, answered in the conversation so far.
func (g *generator) chatLoop() error {
	out := stdout(g.c)
	var msgs []chat.Message
	if g.o.prompt != "" && g.o.prompt != "-" {
		msgs = append(msgs, chat.Message{Role: "user", Content: g.o.prompt})
	}
	in := bufio.NewScanner(stdin(g.c))
	in.Buffer(make([]byte, 64<<10), 1<<20)
	for {
		if len(msgs) == 0 || msgs[len(msgs)-1].Role != "user" {
			fmt.Fprint(g.info, "> ")
			if !in.Scan() {
				fmt.Fprintln(g.info)
				return in.Err()
			}
			line := strings.TrimSpace(in.Text())
			if line == "" {
				continue
			}
			msgs = append(msgs, chat.Message{Role: "user", Content: line})
		}
		text, err := g.render(msgs)
		if err != nil {
			return err
		}
		var reply strings.Builder
		if _, err := g.generate(text, io.MultiWriter(out, &reply)); err != nil {
			return err
		}
		fmt.Fprintln(out)
		msgs = append(msgs, chat.Message{Role: "assistant", Content: reply.String()})
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// stdin is where a command reads input (App.Reader, so tests can feed it).
func stdin(c *cli.Context) io.Reader {
	if c.App.Reader != nil {
		return c.App.Reader
	}
	return os.Stdin
}

// unescape replaces \n, \t and \\ in s (so --stop "\n\n" works from a shell).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case 'n':
				b.WriteByte('\n')
				i++
				continue
			case 't':
				b.WriteByte('\t')
				i++
				continue
			case '\\':
				b.WriteByte('\\')
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
