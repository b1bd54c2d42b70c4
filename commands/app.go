// Package commands holds one file per qsparse subcommand. Each command parses its flags, calls
// into a use-case package and prints; it never calls os.Exit (main maps errors to exit codes).
package commands

import (
	"github.com/urfave/cli/v2"
)

// Version is the qsparse version string printed by --version.
var Version = "0.1.0-dev"

// NewApp builds the qsparse CLI. It never exits the process: errors are returned from Run, and
// every error's message starts with "qsparse CMD: " (see CommandError).
func NewApp() *cli.App {
	app := &cli.App{
		Name:    "qsparse",
		Usage:   "sparse activation for LLM checkpoints on the CPU",
		Version: Version,
		// Every subcommand, in the order --help lists them.
		Commands: []*cli.Command{
			inspectCommand(),
			evalCommand(),
			runCommand(),
			benchCommand(),
			pullCommand(),
			completionCommand(),
		},
		EnableBashCompletion: true,
		Suggest:              true,
		// Only main decides exit codes: never let cli call os.Exit.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return flagUsageError(nil, c.App.Flags, nil, err)
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return cli.ShowAppHelp(c)
			}
			return unknownCommand(c, c.Args().First())
		},
	}
	for _, cmd := range app.Commands {
		plumb(cmd)
	}
	return app
}

// plumb gives a command the behaviour every qsparse command shares: flags may follow positional
// arguments, flag errors name the flag as typed and point at --help, and errors are prefixed
// with "qsparse CMD: " once.
func plumb(cmd *cli.Command) {
	name, act := cmd.Name, cmd.Action
	cmd.OnUsageError = func(c *cli.Context, err error, _ bool) error {
		var raw []string
		if lin := c.Lineage(); len(lin) > 1 {
			raw = lin[1].Args().Tail()
		}
		return flagUsageError(cmd, cmd.Flags, raw, err)
	}
	if act == nil {
		return
	}
	cmd.Action = func(c *cli.Context) error {
		pos, err := intersperse(c)
		if err != nil {
			return err
		}
		if c.Bool("help") {
			return cli.ShowCommandHelp(c.Lineage()[1], name)
		}
		c.Context = withArgs(c.Context, pos)
		return commandError(name, act(c))
	}
}

// unknownCommand is the usage error for `qsparse NAME` when no command is called NAME.
func unknownCommand(c *cli.Context, name string) error {
	var names []string
	for _, cmd := range c.App.Commands {
		if !cmd.Hidden {
			names = append(names, cmd.Names()...)
		}
	}
	if near := nearest(name, names); near != "" {
		return commandError("", usagef("unknown command %q; did you mean %q? (see qsparse --help)", name, near))
	}
	return commandError("", usagef("unknown command %q (see qsparse --help)", name))
}
