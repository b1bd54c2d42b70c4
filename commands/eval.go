package commands

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/qsparse/qsparse/eval"
	"github.com/qsparse/qsparse/internal/atomicfile"
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
			"second half is scored. With --sparsity, --block or --profile it is a sweep: the dense model runs\n" +
			"first and every configuration is compared with it (ΔPPL, KL divergence, same top-1 token, weight\n" +
			"bytes per decoded token). Running values go to stderr, the result (table, --markdown, --csv or\n" +
			"--json) to stdout. Ctrl-C prints the rows already finished and exits with status 130.\n" +
			"--shard i/n --partial part-i.json evaluates every n-th chunk from chunk i and writes its raw sums;\n" +
			"qsparse merge part-*.json then prints the report of the whole run (docs/sharding.md).",
		Flags: []cli.Flag{
			modelFlag(),
			&cli.StringFlag{Name: "data", Aliases: []string{"f"}, Usage: "text file to evaluate (e.g. wiki.test.raw)"},
			&cli.StringFlag{Name: "base", Usage: "also compare with this base model (KL divergence, same top token), as llama-perplexity --kl-divergence"},
			&cli.StringFlag{Name: "base-weight-type", Value: "auto", Usage: "--weight-type of the --base model"},
			&cli.IntFlag{Name: "ctx", Aliases: []string{"c"}, Value: 512, Usage: "tokens per chunk"},
			&cli.IntFlag{Name: "batch", Aliases: []string{"b"}, Usage: "tokens per forward call (0: --ctx)"},
			&cli.IntFlag{Name: "chunks", Usage: "evaluate at most this many chunks (0: all)"},
			&cli.StringFlag{Name: "sparsity", Value: "0", Usage: "comma-separated uniform activation sparsities in [0, 1), one result row each per --scoring (top-K per token at every site: k = int((1-s)*dim)), e.g. 0,0.25,0.5"},
			&cli.StringFlag{Name: "scoring", Value: "magnitude", Usage: "comma-separated channel rankings of the top-K: magnitude (|x|) and/or weighted (|x|·‖W[:,i]‖₂)"},
			&cli.StringFlag{Name: "block", Usage: "comma-separated N:M block patterns (Block Q-Sparse), one row each per --scoring, e.g. 2:4"},
			&cli.StringSliceFlag{Name: "profile", Usage: "sparsity profile JSON (qsparse calibrate), one row each; repeatable"},
			&cli.BoolFlag{Name: "rescale", Usage: "L2-rescale the kept activations of the --sparsity and --block rows"},
			weightTypeFlag(),
			threadsFlag(),
			jsonFlag(),
			quietFlag(),
			allowLongCtxFlag(),
			&cli.BoolFlag{Name: "markdown", Usage: "write the result as a markdown table"},
			&cli.BoolFlag{Name: "csv", Usage: "write the result as CSV"},
			&cli.StringFlag{Name: "plot", Usage: "also write PPL and KL divergence against sparsity as an SVG image to this file"},
			&cli.StringFlag{Name: "shard", Usage: "evaluate only shard i of n (i/n, 0 <= i < n): the chunks c with c % n == i; needs --partial (see qsparse merge)"},
			&cli.StringFlag{Name: "partial", Usage: "also write this shard's raw sums to this JSON file, for qsparse merge"},
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
	formats := 0
	for _, f := range []string{"json", "markdown", "csv"} {
		if c.Bool(f) {
			formats++
		}
	}
	if formats > 1 {
		return usagef("eval: choose one of --json, --markdown and --csv")
	}
	var grid eval.Grid
	var err error
	if grid.Sparsities, err = parseSparsities(c.String("sparsity")); err != nil {
		return err
	}
	if grid.Scorings, err = parseScorings(c.String("scoring")); err != nil {
		return err
	}
	if grid.Blocks, err = parseBlocks(c.String("block")); err != nil {
		return err
	}
	grid.Rescale = c.Bool("rescale")
	shard, shards, err := parseShard(c.String("shard"))
	if err != nil {
		return err
	}
	partial := c.String("partial")
	if shards > 1 && partial == "" {
		return usagef("eval: --shard %s needs --partial FILE: the shard's figures alone are not the run's; merge the partials with qsparse merge",
			c.String("shard"))
	}
	profPaths := c.StringSlice("profile")
	if dup := firstDuplicate(profPaths); dup != "" {
		return usagef("eval: --profile %s is given twice", dup)
	}
	nthreads, err := threads(c)
	if err != nil {
		return err
	}
	var profiles []*model.Profile
	for _, p := range profPaths {
		prof, err := model.ReadProfile(p)
		if err != nil {
			return fmt.Errorf("eval: %w", err)
		}
		if grid.Rescale {
			prof.Rescale = true
		}
		profiles = append(profiles, prof)
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
	configs, err := grid.Configs(&m.Spec)
	if err != nil {
		return usagef("eval: %v", err)
	}
	for i, p := range profiles {
		cfg, err := eval.ProfileConfig(&m.Spec, profileName(profPaths[i]), p)
		if err != nil {
			return fmt.Errorf("eval: %w", err)
		}
		configs = append(configs, cfg)
	}
	if usePackProfile(c, m.DefaultProfile, len(profiles) > 0) {
		p := m.DefaultProfile.Clone()
		if grid.Rescale {
			p.Rescale = true
		}
		cfg, err := eval.ProfileConfig(&m.Spec, "pack profile", p)
		if err != nil {
			return fmt.Errorf("eval: %w", err)
		}
		configs = append(configs, cfg)
		fmt.Fprintf(infoWriter(c), "eval: %s carries a sparsity profile (%.2f of the site weight bytes skipped per token): evaluating it beside dense (--sparsity 0: dense only)\n",
			mpath, p.ByteSparsity(&m.Spec))
	}
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
	opts := eval.SweepOptions{PPLOptions: eval.PPLOptions{Ctx: nctx, Batch: batch, Chunks: chunks, Shard: shard, Shards: shards}, Base: base}
	allChunks := eval.NumChunks(len(tokens), opts.PPLOptions)
	nChunks := eval.ShardChunks(allChunks, shard, shards)
	if nChunks == 0 {
		return usagef("eval: --shard %d/%d has no chunk to evaluate: the run has only %d chunks; use at most %d shards", shard, shards, allChunks, allChunks)
	}
	if have := len(tokens) / nctx; chunks > have {
		fmt.Fprintf(errw, "warning: --chunks %d: %s holds only %d chunks of %d tokens; evaluating %d\n", chunks, data, have, nctx, have)
	}
	fmt.Fprintf(errw, "perplexity: tokenized %s into %d tokens in %.2f s\n", data, len(tokens), time.Since(t0).Seconds())
	if shards > 1 {
		fmt.Fprintf(errw, "perplexity: shard %d/%d: chunks %d, %d, ... (%d of %d)\n", shard, shards, shard+1, shard+shards+1, nChunks, allChunks)
	}
	fmt.Fprintf(errw, "perplexity: calculating perplexity over %d chunks, n_ctx=%d, batch_size=%d, threads=%d\n",
		nChunks, nctx, batch, nthreads)

	if base != nil {
		opts.DenseLabel = "model"
		for i := range configs {
			configs[i].Label = "model, " + configs[i].Label
		}
	}
	var bar interface {
		Describe(string)
		Add(int) error
		Finish() error
	}
	var running strings.Builder
	pending := false // running values printed without their line end
	opts.RowStart = func(i, n int, label string) {
		if n > 1 {
			fmt.Fprintf(errw, "perplexity: row %d of %d: %s\n", i+1, n, label)
		}
		running.Reset()
		bar = nil
		if b := newBar(errw, nChunks, "perplexity"); b != nil {
			bar = b
		}
	}
	opts.Progress = func(p eval.Progress) {
		s := eval.FormatRunning(p.Chunk, p.PPL)
		running.WriteString(s)
		pending = bar == nil
		if bar != nil {
			bar.Describe(s)
			_ = bar.Add(1)
			return
		}
		fmt.Fprint(errw, s)
	}
	opts.RowDone = func(row *eval.Row, ppl *eval.PPLResult, kl *eval.KLResult) {
		if ppl == nil && kl == nil {
			return // the base row, made in the same pass as the next
		}
		if bar != nil {
			_ = bar.Finish()
			fmt.Fprint(errw, running.String())
		}
		if running.Len() > 0 {
			fmt.Fprintln(errw)
		}
		pending = false
		if ppl != nil {
			fmt.Fprintln(errw, eval.FormatFinal(ppl))
			return
		}
		fmt.Fprintln(errw, eval.FormatFinal(&eval.PPLResult{PPL: kl.PPL, Err: kl.Err}))
		fmt.Fprint(errw, eval.FormatKL(kl))
	}
	opts.Warn = func(s string) { fmt.Fprintln(errw, "warning:", s) }

	rep, err := eval.Sweep(c.Context, m, tokens, configs, opts)
	if rep == nil {
		return fmt.Errorf("eval %s: %w", data, err)
	}
	if err != nil && (bar != nil || pending) {
		if bar != nil {
			_ = bar.Finish()
		}
		fmt.Fprintln(errw)
	}
	rep.Model, rep.Data, rep.Threads, rep.Base = mpath, data, nthreads, c.String("base")
	if partial != "" && err == nil {
		id := eval.RunID{Fingerprint: model.Fingerprint(&m.Spec), ModelBytes: fileSize(mpath), WeightType: c.String("weight-type"),
			DataSHA256: sha256Hex(text), DataTokens: len(tokens), Ctx: nctx, Batch: batch, Chunks: allChunks,
			Configs: eval.ConfigIDs(configs)}
		if base != nil {
			id.BaseFingerprint, id.BaseBytes = model.Fingerprint(&base.Spec), fileSize(c.String("base"))
			id.BaseWeightType = c.String("base-weight-type")
		}
		p := &eval.Partial{ID: id, Shard: shard, Shards: max(shards, 1), Report: rep}
		if werr := atomicfile.Write(partial, p.Write); werr != nil {
			return fmt.Errorf("eval: --partial: %w", werr)
		}
	}
	if len(rep.Rows) > 0 {
		if werr := writeEvalReport(c, rep); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		if rep.Incomplete && len(rep.Rows) > 0 {
			fmt.Fprintf(errw, "eval: interrupted: the table holds the %d finished row(s)\n", len(rep.Rows))
		}
		return fmt.Errorf("eval %s: %w", data, err)
	}
	return nil
}

// writeEvalReport prints rep in the chosen format and writes the --plot file.
func writeEvalReport(c *cli.Context, rep *eval.Report) error {
	if p := c.String("plot"); p != "" {
		if err := atomicfile.Write(p, rep.WritePlot); err != nil {
			return fmt.Errorf("--plot: %w", err)
		}
	}
	w := stdout(c)
	switch {
	case c.Bool("json"):
		return rep.WriteJSON(w)
	case c.Bool("markdown"):
		return rep.WriteMarkdown(w)
	case c.Bool("csv"):
		return rep.WriteCSV(w)
	}
	return rep.WriteTable(w)
}

// parseShard parses --shard i/n ("" is 0, 1: every chunk).
func parseShard(v string) (int, int, error) {
	if v == "" {
		return 0, 1, nil
	}
	is, ns, ok := strings.Cut(v, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(is))
	n, err2 := strconv.Atoi(strings.TrimSpace(ns))
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, usagef("eval: --shard wants i/n with 0 <= i < n, such as 0/4 (the first of 4 shards), got %q", v)
	}
	return i, n, nil
}

// fileSize is the size of the file at p (0 for a folder or an unreadable path).
func fileSize(p string) int64 {
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
		return fi.Size()
	}
	return 0
}

// sha256Hex is the hex SHA-256 of b.
func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// parseSparsities parses --sparsity: comma-separated ratios in [0, 1), no duplicates.
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

// parseScorings parses --scoring: comma-separated scoring names, no duplicates.
func parseScorings(v string) ([]model.Scoring, error) {
	var out []model.Scoring
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		s, err := model.ParseScoring(f)
		if err != nil || f == "" {
			return nil, usagef("eval: --scoring wants magnitude and/or weighted (comma-separated), got %q", f)
		}
		if slices.Contains(out, s) {
			return nil, usagef("eval: --scoring lists %s twice", s)
		}
		out = append(out, s)
	}
	return out, nil
}

// parseBlocks parses --block: comma-separated N:M patterns with 0 < N < M, no duplicates.
func parseBlocks(v string) ([]model.Block, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var out []model.Block
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		ns, ms, ok := strings.Cut(f, ":")
		n, err1 := strconv.Atoi(ns)
		m, err2 := strconv.Atoi(ms)
		if !ok || err1 != nil || err2 != nil || n <= 0 || n >= m {
			return nil, usagef("eval: --block wants comma-separated N:M patterns with 0 < N < M such as 2:4, got %q", f)
		}
		b := model.Block{N: n, M: m}
		if slices.Contains(out, b) {
			return nil, usagef("eval: --block lists %s twice", f)
		}
		out = append(out, b)
	}
	return out, nil
}

// firstDuplicate returns the first string that occurs twice in xs, or "".
func firstDuplicate(xs []string) string {
	for i, x := range xs {
		if slices.Contains(xs[:i], x) {
			return x
		}
	}
	return ""
}

// profileName is the row label of a profile file: its base name without .json.
func profileName(path string) string {
	return strings.TrimSuffix(filepath.Base(path), ".json")
}
