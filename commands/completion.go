package commands

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// completionCommand builds the completion subcommand: shell scripts that ask qsparse itself
// (urfave/cli's --generate-bash-completion) for the words that can come next.
func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash or zsh)",
		ArgsUsage: "bash|zsh",
		UsageText: "source <(qsparse completion bash)        # bash, this shell\n" +
			"qsparse completion zsh > \"${fpath[1]}/_qsparse\"   # zsh, then restart it",
		Description: "The script completes command names and flags by running\n" +
			"`qsparse ... --generate-bash-completion`, so it follows the installed qsparse.",
		Action: runCompletion,
	}
}

const bashCompletion = `# bash completion for qsparse
_qsparse_complete() {
	local cur words
	COMPREPLY=()
	cur="${COMP_WORDS[COMP_CWORD]}"
	if [[ "$cur" == "-"* ]]; then
		words=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
	else
		words=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
	fi
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
	if [[ ${#COMPREPLY[@]} -eq 0 ]]; then
		COMPREPLY=($(compgen -f -- "$cur"))
	fi
	return 0
}
complete -o default -F _qsparse_complete qsparse
`

const zshCompletion = `#compdef qsparse
# zsh completion for qsparse
_qsparse() {
	local -a opts
	local cur=${words[-1]}
	if [[ "$cur" == "-"* ]]; then
		opts=("${(@f)$(${words[@]:0:#words[@]-1} "$cur" --generate-bash-completion 2>/dev/null)}")
	else
		opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
	fi
	if [[ -n "${opts[1]}" ]]; then
		_describe 'values' opts
	else
		_files
	fi
}
compdef _qsparse qsparse
`

func runCompletion(c *cli.Context) error {
	args := cmdArgs(c)
	if len(args) != 1 {
		return usagef("want one shell: bash or zsh")
	}
	var s string
	switch args[0] {
	case "bash":
		s = bashCompletion
	case "zsh":
		s = zshCompletion
	default:
		return usagef("unsupported shell %q: want bash or zsh", args[0])
	}
	_, err := fmt.Fprint(stdout(c), s)
	return err
}
