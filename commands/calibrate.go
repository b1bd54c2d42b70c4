package commands

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	"github.com/qsparse/qsparse/calibrate"
	"github.com/qsparse/qsparse/eval"
	"github.com/qsparse/qsparse/model"
)

// calibrateCommand is `qsparse calibrate`.
func calibrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "calibrate",
		Usage: "choose a per-layer, per-site sparsity profile for a model from a sample of text",
		UsageText: "qsparse calibrate -m smollm2 -f tinystories.txt --target 0.5 -o smollm2-50.json\n" +
			"qsparse calibrate -m smollm2 -f tinystories.txt --max-ppl-increase 10% -o smollm2-10pct.json\n" +
			"qsparse calibrate -m smollm2 -f tinystories.txt --target 0.4 --method teal -o teal-40.json",
		Description: "Runs the model over the first --tokens tokens of --data (the last --kl-tokens of them are a\n" +
			"held-out slice), and writes a profile (JSON; see `qsparse inspect profile.json`) whose\n" +
			"byte-weighted sparsity meets --target, or the highest one whose error on the held-out slice stays\n" +
			"within --max-kl or --max-ppl-increase. Methods: uniform (one ratio everywhere), teal (TEAL-style:\n" +
			"the same budget in every layer, split by a greedy on each site's output error) and kl (budgets\n" +
			"differ between layers and sites, judged by the measured KL divergence of the logits).",
		Flags: append([]cli.Flag{
			modelFlag(),
			&cli.StringFlag{Name: "data", Aliases: []string{"f"}, Usage: "calibration text (not the evaluation text)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "profile file to write (JSON)"},
			&cli.Float64Flag{Name: "target", Usage: "byte-weighted sparsity to reach, in (0, 1)"},
			&cli.Float64Flag{Name: "max-kl", Usage: "or: the highest sparsity whose mean KL divergence (nats) on the held-out slice is at most this"},
			&cli.StringFlag{Name: "max-ppl-increase", Usage: "or: the highest sparsity whose held-out perplexity rises by at most this (10% or 0.1)"},
			&cli.StringFlag{Name: "method", Value: calibrate.MethodKL, Usage: "allocation: uniform, teal or kl"},
			&cli.StringFlag{Name: "score", Value: string(model.ScoreMagnitude), Usage: "channel ranking: magnitude (|x|) or weighted (|x|·‖W[:,i]‖₂)"},
			&cli.IntFlag{Name: "tokens", Value: 16384, Usage: "calibration tokens to use (the text must have this many)"},
			&cli.IntFlag{Name: "kl-tokens", Value: 512, Usage: "of which the last this many are the held-out slice for KL measurements"},
			&cli.IntFlag{Name: "ctx", Aliases: []string{"c"}, Value: 512, Usage: "tokens per chunk"},
			&cli.StringFlag{Name: "probes", Value: "0.5", Usage: "kl method: comma-separated ratios at which each layer's site is measured alone"},
			&cli.Float64Flag{Name: "max-ratio", Value: 0.9, Usage: "the highest sparsity of any one site (teal, kl)"},
			weightTypeFlag(),
			threadsFlag(),
		}, calibrateShardFlags()...),
		Action: runCalibrate,
	}
}

func runCalibrate(c *cli.Context) error {
	files := cmdArgs(c)
	if len(files) > 0 && !c.Bool("merge") {
		return usagef("calibrate: unexpected arguments %q (use --model, --data and -o; partial files go with --merge)", files)
	}
	if c.Bool("merge") && len(files) == 0 {
		return usagef("calibrate: --merge needs the partial files of every shard as arguments")
	}
	shard, shards, err := parseShard(c.String("shard"))
	if err != nil {
		return usagef("calibrate: %s", strings.TrimPrefix(err.Error(), "eval: "))
	}
	partial := c.String("partial")
	if shards > 1 && partial == "" || partial != "" && shards <= 1 {
		return usagef("calibrate: --shard i/n and --partial FILE go together")
	}
	if partial != "" && c.Bool("merge") {
		return usagef("calibrate: --merge allocates from partials; do not give --shard/--partial with it")
	}
	if err := checkModelFlags(c); err != nil {
		return err
	}
	data, out := c.String("data"), c.String("output")
	if data == "" {
		return usagef("calibrate: --data is required (a calibration text file)")
	}
	if out == "" && partial == "" {
		return usagef("calibrate: -o is required (the profile file to write)")
	}
	opt, err := calibrateOptions(c)
	if err != nil {
		return err
	}
	text, err := os.ReadFile(data)
	if err != nil {
		return fmt.Errorf("calibrate: reading data: %w", err)
	}
	m, err := loadModel(c, opt.Ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	errw := stderr(c)
	t0 := time.Now()
	tokens := eval.Tokenize(m, string(text))
	if len(tokens) < opt.Tokens {
		return fmt.Errorf("calibrate: %s has %d tokens, but --tokens asks for %d: give a longer text or a smaller --tokens", data, len(tokens), opt.Tokens)
	}
	fmt.Fprintf(errw, "calibrate: %s: %d tokens (using %d, the last %d held out); method %s, %s scoring\n",
		data, len(tokens), opt.Tokens, opt.KLTokens, opt.Method, opt.Scoring)
	opt.Progress = calibrateProgress(errw)
	sum := sha256.Sum256(text)
	dataSHA := hex.EncodeToString(sum[:])
	if partial != "" {
		if err := calibrateShard(c.Context, m, tokens, opt, shard, shards, dataSHA, partial); err != nil {
			return fmt.Errorf("calibrate: shard %d/%d: %w", shard, shards, err)
		}
		fmt.Fprintf(stdout(c), "wrote %s: measurements of shard %d/%d (merge them with calibrate --merge)\n", partial, shard, shards)
		return nil
	}
	var p *model.Profile
	if c.Bool("merge") {
		ms, err := calibrateMerge(c.Context, m, tokens, opt, dataSHA, files)
		if err != nil {
			return fmt.Errorf("calibrate: --merge: %w", err)
		}
		p, err = ms.Allocate(c.Context, opt)
		if err != nil {
			return fmt.Errorf("calibrate: %w", err)
		}
	} else if p, err = calibrate.Calibrate(c.Context, m, tokens, opt); err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	p.Calibration.Data = filepath.Base(data)
	p.Calibration.DataSHA = dataSHA
	if err := model.WriteProfile(out, &m.Spec, p); err != nil {
		return fmt.Errorf("calibrate: writing %s: %w", out, err)
	}
	cal := p.Calibration
	fmt.Fprintf(errw, "calibrate: done in %.1f s\n", time.Since(t0).Seconds())
	w := stdout(c)
	fmt.Fprintf(w, "wrote %s: %s, byte-weighted sparsity %.2f%%\n", out, cal.Method, 100*cal.Sparsity)
	fmt.Fprintf(w, "held-out slice (%d tokens): KL %.5f nats, PPL %.4f (dense %.4f, %+.2f%%)\n",
		opt.KLTokens, cal.KL, cal.PPL, cal.DensePPL, 100*(cal.PPL/cal.DensePPL-1))
	return writeSiteRatios(w, &m.Spec, p)
}

// calibrateOptions reads and checks the flags (a bad target or budget is an error, exit 1).
func calibrateOptions(c *cli.Context) (calibrate.Options, error) {
	opt := calibrate.Options{Method: c.String("method"), Tokens: c.Int("tokens"), KLTokens: c.Int("kl-tokens"),
		Ctx: c.Int("ctx"), Target: c.Float64("target"), MaxKL: c.Float64("max-kl"), MaxRatio: c.Float64("max-ratio")}
	sc, err := model.ParseScoring(c.String("score"))
	if err != nil {
		return opt, fmt.Errorf("calibrate: --score: %w", err)
	}
	opt.Scoring = sc
	if v := c.String("max-ppl-increase"); v != "" {
		if opt.MaxPPL, err = parsePercent(v); err != nil {
			return opt, fmt.Errorf("calibrate: --max-ppl-increase: %w", err)
		}
	}
	set := 0
	for _, f := range []string{"target", "max-kl", "max-ppl-increase"} {
		if c.IsSet(f) {
			set++
		}
	}
	if set != 1 {
		return opt, fmt.Errorf("calibrate: give exactly one of --target, --max-kl and --max-ppl-increase")
	}
	if c.IsSet("target") && !(opt.Target > 0 && opt.Target < 1) {
		return opt, fmt.Errorf("calibrate: --target %g is outside (0, 1): give the byte-weighted sparsity as a fraction, e.g. 0.5", opt.Target)
	}
	if c.IsSet("max-kl") && !(opt.MaxKL > 0) {
		return opt, fmt.Errorf("calibrate: --max-kl %g must be above 0", opt.MaxKL)
	}
	opt.Probes = nil
	for _, f := range strings.Split(c.String("probes"), ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || !(r > 0 && r < 1) {
			return opt, fmt.Errorf("calibrate: --probes wants comma-separated ratios in (0, 1) such as 0.5, got %q", f)
		}
		opt.Probes = append(opt.Probes, r)
	}
	if opt.Tokens <= 0 || opt.KLTokens <= 0 {
		return opt, fmt.Errorf("calibrate: --tokens and --kl-tokens must be positive")
	}
	return opt, nil
}

// parsePercent parses "10%" (0.1) or "0.1"; the value must be above 0.
func parsePercent(s string) (float64, error) {
	s = strings.TrimSpace(s)
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number or percentage such as 10%% or 0.1", s)
	}
	if pct {
		v /= 100
	}
	if !(v > 0) || v > 100 {
		return 0, fmt.Errorf("%q must be above 0", s)
	}
	return v, nil
}

// calibrateProgress draws one progress bar per stage on a terminal, else a line per stage.
func calibrateProgress(w io.Writer) func(calibrate.Progress) {
	var bar *progressbar.ProgressBar
	stage := ""
	return func(p calibrate.Progress) {
		if p.Stage != stage {
			if bar != nil {
				_ = bar.Finish()
			}
			stage = p.Stage
			bar = newBar(w, p.Total, "calibrate: "+p.Stage)
		}
		if bar != nil {
			_ = bar.Set(p.Done)
		}
		if p.Done == p.Total {
			if bar != nil {
				_ = bar.Finish()
				bar = nil
			}
			stage = ""
			if !isTerminal(w) && p.Stage != "search" {
				fmt.Fprintf(w, "calibrate: %s: %d/%d\n", p.Stage, p.Done, p.Total)
			}
		}
	}
}
