package commands

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
	"github.com/qsparse/qsparse/pull"
)

func TestFlagsAfterArgs(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	for _, args := range [][]string{
		{"inspect", mp, "--json"},
		{"inspect", "--json", mp},
		{"inspect", mp, "--json=true"},
		{"inspect", "-m", mp, "--json"},
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
	if !errUsage(err) || !strings.Contains(err.Error(), "got 2") {
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

func TestPullCommand(t *testing.T) {
	// The built-in lands where ../shared/scripts/fetch-smollm2 puts it; a cached file of the
	// right size is not fetched again (a sparse file stands in for the 98 MB model).
	dir := t.TempDir()
	want := filepath.Join(dir, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
	if err := os.MkdirAll(filepath.Dir(want), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(want)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(pull.Lookup("smollm2").Size)
	f.Close()
	t.Setenv("HF_ENDPOINT", "http://127.0.0.1:1")
	out, _, err := runApp(t, "pull", "smollm2", "--cache-dir", dir, "--quiet")
	if err != nil || out != want+"\n" {
		t.Fatalf("pull smollm2: %v %q, want %q", err, out, want)
	}
	// QSPARSE_CACHE is the default cache folder.
	t.Setenv("QSPARSE_CACHE", dir)
	out, _, err = runApp(t, "pull", "--json", "SmolLM2-135M-Instruct")
	if err != nil || !strings.Contains(out, `"path": "`+want+`"`) {
		t.Fatalf("pull --json: %v %s", err, out)
	}
	// An HF file through $HF_ENDPOINT, with flags after the name.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/org/repo/resolve/main/m.gguf" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("GGUF"))
	}))
	defer srv.Close()
	t.Setenv("HF_ENDPOINT", srv.URL)
	out, errs, err := runApp(t, "pull", "org/repo:m.gguf", "--cache-dir", dir)
	if err != nil || out != filepath.Join(dir, "hf", "org", "repo", "m.gguf")+"\n" || !strings.Contains(errs, "pull org/repo: m.gguf") {
		t.Fatalf("pull org/repo:m.gguf: %v %q\n%s", err, out, errs)
	}
	_, _, err = runApp(t, "pull", "org/repo:nope.gguf", "--cache-dir", dir)
	if err == nil || errUsage(err) || !strings.HasPrefix(Message(err), "qsparse pull: ") || !strings.Contains(err.Error(), "404") {
		t.Fatalf("404: %v", err)
	}
	if _, _, err := runApp(t, "pull", "nosuch", "--cache-dir", dir); err == nil || !strings.Contains(err.Error(), "smollm2") {
		t.Fatalf("unknown name: %v", err)
	}
}

func TestBuiltinModelName(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("QSPARSE_CACHE", dir)
	_, _, err := runApp(t, "inspect", "smollm2")
	if !errUsage(err) || !strings.Contains(err.Error(), "qsparse pull smollm2") {
		t.Fatalf("not downloaded: %v", err)
	}
	// Once in the cache, the name stands for the file.
	src := testenv.SmolLM2Path(t)
	os.MkdirAll(filepath.Join(dir, "models"), 0o755)
	if err := os.Symlink(src, filepath.Join(dir, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")); err != nil {
		t.Fatal(err)
	}
	out, _, err := runApp(t, "inspect", "-m", "smollm2", "--json")
	if err != nil || !strings.Contains(out, `"chat_template_kind": "chatml"`) {
		t.Fatalf("inspect -m smollm2: %v", err)
	}
}
