package commands

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"
)

// UsageError marks an error in how the command was called (exit status 2).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// errUsage reports whether err is a usage error.
func errUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}

// CommandError is an error of one subcommand; its message starts with "qsparse CMD: " (just
// "qsparse: " outside a subcommand), and an interrupted command says "interrupted".
type CommandError struct {
	Cmd string // subcommand name, "" for the app itself
	Err error
}

func (e *CommandError) Error() string {
	prefix := "qsparse: "
	if e.Cmd != "" {
		prefix = "qsparse " + e.Cmd + ": "
	}
	if errors.Is(e.Err, context.Canceled) {
		return prefix + "interrupted"
	}
	return prefix + trimCommand(e.Err.Error(), e.Cmd)
}

func (e *CommandError) Unwrap() error { return e.Err }

// trimCommand drops a leading "CMD: " or "CMD " from msg, so the command is named once.
func trimCommand(msg, cmd string) string {
	if cmd == "" {
		return msg
	}
	if rest, ok := strings.CutPrefix(msg, cmd+": "); ok {
		return rest
	}
	if rest, ok := strings.CutPrefix(msg, cmd+" "); ok && rest != "" {
		return rest
	}
	return msg
}

// commandError wraps err of command cmd (nil stays nil; a CommandError is not wrapped twice).
func commandError(cmd string, err error) error {
	var ce *CommandError
	if err == nil || errors.As(err, &ce) {
		return err
	}
	return &CommandError{Cmd: cmd, Err: err}
}

// Message is the line main prints for an error returned by the app.
func Message(err error) string {
	var ce *CommandError
	if errors.As(err, &ce) {
		return ce.Error()
	}
	return (&CommandError{Err: err}).Error()
}

// flagNameInErr finds the flag the standard flag package names in its errors ("-name").
var flagNameInErr = regexp.MustCompile(`(?:defined: |for flag |argument: )-([^\s:]+)`)

// flagUsageError rewrites a flag-parsing error of command cmd (nil: the app) so that it names the
// flag as it was typed in args, suggests a near flag name, and points at --help.
func flagUsageError(cmd *cli.Command, flags []cli.Flag, args []string, err error) error {
	msg := err.Error()
	help := "qsparse --help"
	name := ""
	if cmd != nil {
		help = "qsparse " + cmd.Name + " --help"
		name = cmd.Name
	}
	m := flagNameInErr.FindStringSubmatchIndex(msg)
	if m == nil {
		return commandError(name, usagef("%s (see %s)", msg, help))
	}
	flag := msg[m[2]:m[3]]
	typed := dashed(flag) // as most people type it, when args do not tell
	for _, a := range args {
		if a == "--" {
			break
		}
		if n, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); n == flag && strings.HasPrefix(a, "-") {
			typed, _, _ = strings.Cut(a, "=")
			break
		}
	}
	if strings.HasPrefix(msg, "flag provided but not defined") {
		s := fmt.Sprintf("unknown flag %s", typed)
		if near := nearest(flag, flagNames(flags)); near != "" {
			s += fmt.Sprintf("; did you mean %s?", dashed(near))
		}
		return commandError(name, usagef("%s (see %s)", s, help))
	}
	msg = msg[:m[2]-1] + typed + msg[m[3]:]
	return commandError(name, usagef("%s (see %s)", msg, help))
}

func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

func flagNames(flags []cli.Flag) []string {
	var n []string
	for _, f := range flags {
		n = append(n, f.Names()...)
	}
	return n
}

// nearest returns the candidate closest to s in edit distance, if it is close enough to be a typo.
func nearest(s string, cands []string) string {
	best, bestD := "", 1<<30
	for _, c := range cands {
		if len(c) < 2 && len(s) > 2 {
			continue
		}
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= max(1, min(3, len(s)/3)) || (best != "" && strings.HasPrefix(best, s) && len(s) >= 3) {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance (adjacent transpositions count 1).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// commandUsageError turns flag-parsing errors of a subcommand into UsageErrors (exit 2). NewApp
// replaces every command's OnUsageError with a richer one (flagUsageError); this stays for
// commands built outside NewApp.
func commandUsageError(_ *cli.Context, err error, _ bool) error {
	return &UsageError{Msg: err.Error()}
}
