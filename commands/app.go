// Package commands holds one file per qsparse subcommand. Each command parses its flags, calls
// into a use-case package and prints; it never calls os.Exit (main maps errors to exit codes).
package commands

import (
	"github.com/urfave/cli/v2"
)

// Version is the qsparse version string printed by --version.
var Version = "0.1.0-dev"

// NewApp builds the qsparse CLI. It never exits the process: errors are returned from Run.
func NewApp() *cli.App {
	return &cli.App{
		Name:    "qsparse",
		Usage:   "sparse activation for LLM checkpoints on the CPU",
		Version: Version,
		// Every subcommand, in the order --help lists them.
		Commands: []*cli.Command{
			inspectCommand(),
			evalCommand(),
			runCommand(),
			benchCommand(),
		},
		EnableBashCompletion: true,
		// Only main decides exit codes: never let cli call os.Exit.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return &UsageError{Msg: err.Error()}
		},
	}
}
