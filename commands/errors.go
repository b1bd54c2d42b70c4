package commands

import (
	"errors"
	"fmt"

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

// commandUsageError turns flag-parsing errors of a subcommand into UsageErrors (exit 2); urfave
// does not pass a subcommand's parse errors to App.OnUsageError.
func commandUsageError(_ *cli.Context, err error, _ bool) error {
	return &UsageError{Msg: err.Error()}
}
