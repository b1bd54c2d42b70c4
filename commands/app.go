// Package commands holds one file per qsparse subcommand. Each command parses its flags, calls
// into a use-case package and prints; it never calls os.Exit (main maps errors to exit codes).
package commands

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"
)

// Version is the qsparse version string printed by --version.
var Version = "0.1.0-dev"

// UsageError marks an error in how the command was called (exit status 2).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// commandList is filled by each command file's init.
var commandList []*cli.Command

func register(c *cli.Command) { commandList = append(commandList, c) }

// NewApp builds the qsparse CLI. It never exits the process: errors are returned from Run.
func NewApp() *cli.App {
	return &cli.App{
		Name:                 "qsparse",
		Usage:                "sparse activation for LLM checkpoints on the CPU",
		Version:              Version,
		Commands:             commandList,
		EnableBashCompletion: true,
		// Only main decides exit codes: never let cli call os.Exit.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return &UsageError{Msg: err.Error()}
		},
	}
}

// errUsage reports whether err is a usage error.
func errUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}
