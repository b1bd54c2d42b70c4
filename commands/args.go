package commands

import (
	"context"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

type argsKey struct{}

// cmdArgs returns the positional arguments of a command (flags given after them removed).
func cmdArgs(c *cli.Context) []string {
	if a, ok := c.Context.Value(argsKey{}).([]string); ok {
		return a
	}
	return c.Args().Slice()
}

// intersperse lets flags follow positional arguments (qsparse inspect PATH --json). urfave/cli,
// like Go's flag package, stops parsing at the first positional argument; intersperse walks the
// command's raw arguments, sets the flags found after that point on c, and returns the
// positional arguments. A "--" ends the flags; what follows is positional.
func intersperse(c *cli.Context) ([]string, error) {
	left := c.Args().Slice()
	lin := c.Lineage()
	if len(left) == 0 || len(lin) < 2 {
		return left, nil
	}
	raw := lin[1].Args().Tail() // the parent's arguments after the command name
	k := len(raw) - len(left)
	if k < 0 || !slices.Equal(raw[k:], left) {
		return left, nil // not the layout expected: leave the arguments alone
	}
	var pos []string
	done := false
	for i := 0; i < len(raw); i++ {
		a := raw[i]
		switch {
		case done:
			if i >= k {
				pos = append(pos, a)
			}
			continue
		case a == "--":
			done = true
			continue
		case len(a) < 2 || a[0] != '-':
			if i >= k {
				pos = append(pos, a)
			}
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := lookupFlag(c.Command.Flags, name)
		if f == nil {
			if i < k {
				continue // parsed already (the flag package would have refused it)
			}
			return nil, flagUsageError(c.Command, c.Command.Flags, raw, errUndefined(name))
		}
		if takesValue(f) && !hasVal {
			if i+1 >= len(raw) {
				if i < k {
					continue
				}
				return nil, flagUsageError(c.Command, c.Command.Flags, raw, errNeedsArg(name))
			}
			i++
			val = raw[i]
		} else if !hasVal {
			val = "true"
		}
		if i < k {
			continue
		}
		if err := c.Set(f.Names()[0], val); err != nil {
			return nil, flagUsageError(c.Command, c.Command.Flags, raw,
				errInvalid(val, name, err))
		}
	}
	return pos, nil
}

type flagErr string

func (e flagErr) Error() string { return string(e) }

func errUndefined(name string) error { return flagErr("flag provided but not defined: -" + name) }
func errNeedsArg(name string) error  { return flagErr("flag needs an argument: -" + name) }
func errInvalid(val, name string, err error) error {
	return flagErr("invalid value \"" + val + "\" for flag -" + name + ": " + err.Error())
}

func lookupFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

func takesValue(f cli.Flag) bool {
	if _, ok := f.(*cli.BoolFlag); ok {
		return false
	}
	if d, ok := f.(cli.DocGenerationFlag); ok {
		return d.TakesValue()
	}
	return true
}

// withArgs returns ctx carrying the positional arguments cmdArgs returns.
func withArgs(ctx context.Context, pos []string) context.Context {
	return context.WithValue(ctx, argsKey{}, pos)
}
