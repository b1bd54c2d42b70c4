package commands

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/qsparse/qsparse/model"
)

// stdout is where a command writes its results (App.Writer, so tests can capture it).
func stdout(c *cli.Context) io.Writer {
	if c.App.Writer != nil {
		return c.App.Writer
	}
	return os.Stdout
}

// stderr is where a command writes progress and timings (App.ErrWriter).
func stderr(c *cli.Context) io.Writer {
	if c.App.ErrWriter != nil {
		return c.App.ErrWriter
	}
	return os.Stderr
}

// isTerminal reports whether w is a terminal (progress bars are drawn only there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// commandUsageError turns flag-parsing errors of a subcommand into UsageErrors (exit 2); urfave
// does not pass a subcommand's parse errors to App.OnUsageError.
func commandUsageError(_ *cli.Context, err error, _ bool) error {
	return &UsageError{Msg: err.Error()}
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newBar returns a progress bar of n steps drawn on w when w is a terminal, else nil.
func newBar(w io.Writer, n int, desc string) *progressbar.ProgressBar {
	if !isTerminal(w) {
		return nil
	}
	return progressbar.NewOptions(n,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionThrottle(100_000_000),
	)
}

// Shared flags. Each command gets its own flag values.
func modelFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "GGUF file or Hugging Face model folder"}
}

func threadsFlag(def int) *cli.IntFlag {
	return &cli.IntFlag{Name: "threads", Aliases: []string{"t"}, Value: def, Usage: "worker threads (0: all CPUs)"}
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

// checkModelFlags checks --model, --threads and --weight-type before any work is done.
func checkModelFlags(c *cli.Context) error {
	if _, err := modelPath(c); err != nil {
		return err
	}
	if _, err := threads(c); err != nil {
		return err
	}
	_, err := weightType(c)
	return err
}

// modelPath returns the --model value or a usage error.
func modelPath(c *cli.Context) (string, error) {
	p := c.String("model")
	if p == "" {
		return "", usagef("%s: --model is required (a GGUF file or a Hugging Face model folder)", c.Command.Name)
	}
	return p, nil
}

// loadModel loads the --model checkpoint.
func loadModel(c *cli.Context, ctxLen int) (*model.Model, error) {
	p, err := modelPath(c)
	if err != nil {
		return nil, err
	}
	t, err := threads(c)
	if err != nil {
		return nil, err
	}
	wt, err := weightType(c)
	if err != nil {
		return nil, err
	}
	m, err := model.Load(p, model.LoadOptions{WeightType: wt, Threads: t, Ctx: ctxLen})
	if err != nil {
		return nil, fmt.Errorf("loading model: %w", err)
	}
	return m, nil
}
