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
		UsageText: "qsparse COMMAND [flags] [args]   (qsparse COMMAND --help for one command)\n\n" +
			"M=$(qsparse pull smollm2)                               # SmolLM2-135M-Instruct, cached\n" +
			"qsparse demo                                            # pull, accuracy vs sparsity, answers\n" +
			"qsparse run -m $M --chat -p \"What is the capital of France?\"\n" +
			"qsparse eval -m $M -f wiki.test.raw --chunks 40 --sparsity 0,0.25,0.5\n" +
			"qsparse inspect $M --json",
		Description: "Flags may come before or after the positional arguments; \"--\" ends the flags. The shared flags\n" +
			"mean the same in every command: --model/-m, --data/-f (eval), --ctx/-c, --threads/-t (0: all\n" +
			"CPUs), --json (result as JSON on stdout), --quiet/-q (no progress on stderr).\n" +
			"Exit status: 0 ok, 1 error, 2 usage error, 130 interrupted (Ctrl-C).\n" +
			"Shell completion: source <(qsparse completion bash), or qsparse completion zsh.",
		// Every subcommand, in the order --help lists them.
		Commands: []*cli.Command{
			demoCommand(),
			inspectCommand(),
			evalCommand(),
			mergeCommand(),
			runCommand(),
			benchCommand(),
			calibrateCommand(),
			convertCommand(),
			pullCommand(),
			completionCommand(),
		},
		EnableBashCompletion: true,
		// --stop "a, b" is one stop string: repeat a slice flag instead of splitting on commas.
		DisableSliceFlagSeparator: true,
		Suggest:                   true,
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
