package commands

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
)

func TestFlagsAfterArgs(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	for _, args := range [][]string{
		{"inspect", mp, "--json"},
		{"inspect", "--json", mp},
		{"inspect", mp, "--json=true"},
	} {
		out, _, err := runApp(t, args...)
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		var info inspectJSON
		if err := json.Unmarshal([]byte(out), &info); err != nil || info.Arch != "llama" {
			t.Fatalf("%q: not JSON: %v\n%.200s", args, err, out)
		}
	}
	// After "--" everything is positional.
	_, _, err := runApp(t, "inspect", mp, "--", "--json")
	if !errUsage(err) || !strings.Contains(err.Error(), "got 2 arguments") {
		t.Fatalf("-- then --json: %v", err)
	}
	// A flag with a value after a positional, and a value that looks like a flag ("-").
	_, _, err = runApp(t, "run", "stray", "-m", mp, "-p", "x")
	if !errUsage(err) || !strings.Contains(err.Error(), `"stray"`) {
		t.Fatalf("run stray: %v", err)
	}
	// --help after a positional shows the help.
	out, _, err := runApp(t, "inspect", mp, "--help")
	if err != nil || !strings.Contains(out, "USAGE") {
		t.Fatalf("inspect PATH --help: %v\n%s", err, out)
	}
}

func TestErrorMessages(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"evl"}, []string{"qsparse: unknown command \"evl\"", `did you mean "eval"?`}},
		{[]string{"frobnicate"}, []string{"qsparse: unknown command \"frobnicate\" (see qsparse --help)"}},
		{[]string{"inspect", "--jsn", "x"}, []string{"qsparse inspect: unknown flag --jsn", "did you mean --json?", "qsparse inspect --help"}},
		{[]string{"inspect", "x", "--jsn"}, []string{"qsparse inspect: unknown flag --jsn", "did you mean --json?"}},
		{[]string{"eval", "-m", "x", "--ctx", "abc"}, []string{"qsparse eval: invalid value \"abc\" for flag --ctx", "qsparse eval --help"}},
		{[]string{"eval", "-m", "x", "-c", "abc"}, []string{"qsparse eval: invalid value \"abc\" for flag -c"}},
		{[]string{"run", "-m", "x", "-p"}, []string{"qsparse run: flag needs an argument: -p"}},
		{[]string{"run", "-m", "x"}, []string{"qsparse run: "}},
		{[]string{"--bogus"}, []string{"qsparse: unknown flag --bogus"}},
	} {
		_, _, err := runApp(t, tc.args...)
		if !errUsage(err) {
			t.Errorf("%q: %v, want a usage error", tc.args, err)
			continue
		}
		msg := Message(err)
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%q: %q lacks %q", tc.args, msg, w)
			}
		}
		if c := strings.Count(msg, "qsparse"); c > 2 {
			t.Errorf("%q: %q names qsparse %d times", tc.args, msg, c)
		}
	}
	// The command is named once, however the command body words its error.
	for _, e := range []error{
		commandError("eval", errors.New("eval: x")),
		commandError("eval", errors.New("eval wiki.txt: x")),
		commandError("eval", errors.New("x")),
	} {
		if m := Message(e); strings.Count(m, "eval") != 1 || !strings.HasPrefix(m, "qsparse eval: ") {
			t.Errorf("message %q", m)
		}
	}
	if m := Message(commandError("run", context.Canceled)); m != "qsparse run: interrupted" {
		t.Errorf("cancel message %q", m)
	}
}

func TestHelpAndCompletion(t *testing.T) {
	app := NewApp()
	for _, c := range app.Commands {
		out, _, err := runApp(t, c.Name, "--help")
		if err != nil || !strings.Contains(out, c.Name) {
			t.Errorf("%s --help: %v", c.Name, err)
		}
		if c.UsageText == "" {
			t.Errorf("%s: no examples (UsageText)", c.Name)
		}
	}
	for _, sh := range []string{"bash", "zsh"} {
		out, _, err := runApp(t, "completion", sh)
		if err != nil || !strings.Contains(out, "--generate-bash-completion") {
			t.Errorf("completion %s: %v\n%s", sh, err, out)
		}
	}
	if _, _, err := runApp(t, "completion", "fish"); !errUsage(err) {
		t.Errorf("completion fish: %v", err)
	}
	// urfave's completion reads os.Args to see the word being completed.
	saved := os.Args
	os.Args = []string{"qsparse", "--generate-bash-completion"}
	out, _, err := runApp(t, "--generate-bash-completion")
	os.Args = saved
	if err != nil || !strings.Contains(out, "inspect") || !strings.Contains(out, "pull") {
		t.Errorf("command completion: %v\n%s", err, out)
	}
}
