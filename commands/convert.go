package commands

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	"github.com/qsparse/qsparse/convert"
)

func convertCommand() *cli.Command {
	return &cli.Command{
		Name:  "convert",
		Usage: "write a checkpoint as a qsparse pack (column-major site matrices) or a plain llama.cpp GGUF",
		UsageText: "qsparse convert -m model.gguf --profile p.json -o model.qsparse.gguf   # fp16 pack with its profile\n" +
			"qsparse convert -m smollm2-hf/ --format gguf-f16 -o smollm2-f16.gguf      # HF folder -> llama.cpp GGUF\n" +
			"qsparse convert -m model.gguf --format ternary -o model.ternary.gguf      # BitNet-style ternary pack",
		Description: "Formats:\n" +
			"  fp16       qsparse pack: q/k/v/o/gate/up/down as F16 column-major packs (FORMAT.md)\n" +
			"  ternary    qsparse pack: those matrices as ternary 2-bit codes (BitNet b1.58 absmean; exact\n" +
			"             for weights that are already ternary). Warns, with the perplexity it measured,\n" +
			"             when ternarizing wrecks a full-precision model.\n" +
			"  gguf-f16, gguf-f32, gguf-q8_0\n" +
			"             a standard llama.cpp GGUF (row-major, llama.cpp's q/k row order), e.g. from a\n" +
			"             Hugging Face folder without Python.\n" +
			"The output is written atomically (temporary file, fsync, rename); the input is never modified.",
		Flags: []cli.Flag{
			modelFlag(),
			&cli.StringFlag{Name: "format", Aliases: []string{"F"}, Value: convert.FormatFP16, Usage: "output format: " + strings.Join(convert.Formats, ", ")},
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "output file (e.g. model.qsparse.gguf)"},
			&cli.StringFlag{Name: "profile", Aliases: []string{"p"}, Usage: "sparsity profile JSON (from calibrate) to store in the pack"},
			&cli.BoolFlag{Name: "per-column", Usage: "ternary: one absmean scale per input column instead of one per tensor"},
			&cli.StringFlag{Name: "check-text", Usage: "ternary: text file for the perplexity check (default: a built-in ~2 KB English text)"},
			threadsFlag(),
		},
		Action: runConvert,
	}
}

func runConvert(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("convert: unexpected arguments %q (use --model, --format and --out)", c.Args().Slice())
	}
	mpath, err := modelPath(c)
	if err != nil {
		return err
	}
	nthreads, err := threads(c)
	if err != nil {
		return err
	}
	format := c.String("format")
	if err := convert.CheckFormat(format); err != nil {
		return usagef("convert: %v", err)
	}
	out := c.String("out")
	if out == "" {
		return usagef("convert: --out is required (the file to write)")
	}
	opts := convert.Options{Model: mpath, Profile: c.String("profile"), Format: format, Out: out, Threads: nthreads,
		PerColumn: c.Bool("per-column"), Log: stderr(c)}
	if format != convert.FormatTernary && (c.IsSet("per-column") || c.IsSet("check-text")) {
		return usagef("convert: --per-column and --check-text apply to --format ternary only")
	}
	if p := c.String("check-text"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("convert: --check-text: %w", err)
		}
		opts.CheckText = string(b)
	}
	errw := stderr(c)
	var bar *progressbar.ProgressBar
	if isTerminal(errw) {
		opts.Progress = func(done, total int64) {
			if bar == nil {
				bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(errw),
					progressbar.OptionSetDescription("writing "+out), progressbar.OptionShowBytes(true),
					progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish(),
					progressbar.OptionThrottle(100_000_000))
			}
			_ = bar.Set64(done)
		}
	}
	// Converting streams the source tensor by tensor (pooled chunk buffers): the live heap is the
	// tokenizer, the chunks in flight and, for ternary, the packs. Collect garbage early so the
	// peak stays near that (the default GOGC=100 lets the heap grow to twice it).
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	fmt.Fprintf(errw, "convert: %s -> %s (%s)\n", mpath, out, format)
	res, err := convert.Run(c.Context, opts)
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		if errors.Is(err, convert.ErrSameFile) || errors.Is(err, convert.ErrBadOutput) {
			return usagef("convert: %v", err)
		}
		return err
	}
	fmt.Fprintf(errw, "convert: loaded in %.2f s, wrote %d tensors in %.2f s\n", res.Load.Seconds(), res.Tensors, res.Write.Seconds())
	fmt.Fprintf(stdout(c), "%s: %s, %d tensors, %.1f MB\n", res.Out, res.Format, res.Tensors, float64(res.Bytes)/1e6)
	return nil
}
