package commands

import (
	"runtime"

	"github.com/urfave/cli/v2"
)

// Shared flags: every command that takes one of these uses the same name, alias, default and
// help text. Each command gets its own flag values.
func modelFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "GGUF file, Hugging Face model folder, or a pulled built-in name (smollm2)"}
}

func threadsFlag() *cli.IntFlag {
	return &cli.IntFlag{Name: "threads", Aliases: []string{"t"}, Value: 0, Usage: "worker threads (0: all CPUs)"}
}

func weightTypeFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "weight-type", Value: "auto", Usage: "compute type of the weight matrices: auto (F32 files stay F32, others become F16), f32 or f16"}
}

func jsonFlag() *cli.BoolFlag {
	return &cli.BoolFlag{Name: "json", Usage: "write the result as JSON"}
}

// threads returns the --threads value, checked.
func threads(c *cli.Context) (int, error) {
	t := c.Int("threads")
	if t < 0 {
		return 0, usagef("--threads must be >= 0, got %d", t)
	}
	if t == 0 {
		t = runtime.NumCPU()
	}
	return t, nil
}

// weightType returns the --weight-type value, checked.
func weightType(c *cli.Context) (string, error) {
	wt := c.String("weight-type")
	switch wt {
	case "", "auto", "f32", "f16":
		return wt, nil
	}
	return "", usagef("--weight-type must be auto, f32 or f16, got %q", wt)
}

func quietFlag() *cli.BoolFlag {
	return &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress or timings on stderr (warnings and errors still)"}
}

func allowLongCtxFlag() *cli.BoolFlag {
	return &cli.BoolFlag{Name: "allow-long-ctx", Usage: "allow a --ctx longer than the model's training context (quality degrades past it)"}
}
