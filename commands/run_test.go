package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
)

// runAppIn is runApp with stdin.
func runAppIn(t *testing.T, in string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	app := NewApp()
	app.Reader, app.Writer, app.ErrWriter = strings.NewReader(in), &out, &errb
	err := app.RunContext(context.Background(), append([]string{"qsparse"}, args...))
	return out.String(), errb.String(), err
}

func TestRunPromptSources(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	want, _, err := runApp(t, "run", "-m", mp, "-p", "Once upon a time", "-n", "8", "--temp", "0")
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := runAppIn(t, "Once upon a time\n", "run", "-m", mp, "-p", "-", "-n", "8", "--temp", "0")
	if err != nil || got != want {
		t.Fatalf("-p -: %v\n%q\nwant %q", err, got, want)
	}
	pf := filepath.Join(t.TempDir(), "prompt.txt")
	os.WriteFile(pf, []byte("Once upon a time\n"), 0o644)
	got, _, err = runApp(t, "run", "-f", pf, "-m", mp, "-n", "8", "--temp", "0")
	if err != nil || got != want {
		t.Fatalf("-f: %v\n%q\nwant %q", err, got, want)
	}
	// flags after a stray positional are still parsed, the positional refused
	if _, _, err := runApp(t, "run", "-m", mp, "extra", "-p", "x"); !errUsage(err) {
		t.Fatalf("positional: %v", err)
	}
}

func TestRunStops(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	// -n reached
	_, errs, err := runApp(t, "run", "-m", mp, "-p", "Once upon a time", "-n", "8", "--temp", "0")
	if err != nil || !strings.Contains(errs, "stopped: -n 8 tokens reached") {
		t.Fatalf("%v\n%s", err, errs)
	}
	// context full
	_, errs, err = runApp(t, "run", "-m", mp, "-p", "Once upon a time", "-n", "-1", "--temp", "0", "-c", "16")
	if err != nil || !strings.Contains(errs, "stopped: the context of 16 tokens is full") {
		t.Fatalf("%v\n%s", err, errs)
	}
	// --stop: the greedy text is refGreedy; stop before "Lily"
	out, errs, err := runApp(t, "run", "-m", mp, "-p", "Once upon a time", "-n", "64", "--temp", "0", "--stop", "Lily", "--stop", "zzz")
	if err != nil || strings.TrimRight(out, "\n") != refGreedy[:strings.Index(refGreedy, "Lily")] ||
		!strings.Contains(errs, `stopped: --stop "Lily"`) {
		t.Fatalf("--stop: %v\n%q\n%s", err, out, errs)
	}
	// --stop with an escape; commas do not split it
	out, _, err = runApp(t, "run", "-m", mp, "-p", "Once upon a time", "-n", "64", "--temp", "0", "--stop", `\n`, "--stop", "x,y")
	if err != nil || strings.TrimRight(out, "\n") != refGreedy[:strings.Index(refGreedy, "\n")] {
		t.Fatalf("--stop \\n: %v\n%q", err, out)
	}
	// -n 0: the prompt only
	out, errs, err = runApp(t, "run", "-m", mp, "-p", "Once upon a time", "-n", "0")
	if err != nil || out != "Once upon a time\n" || !strings.Contains(errs, "prompt eval:") || strings.Contains(errs, "\neval:") {
		t.Fatalf("-n 0: %v %q\n%s", err, out, errs)
	}
	// --quiet: nothing on stderr
	_, errs, err = runApp(t, "run", "-m", mp, "-p", "Once", "-n", "4", "-s", "1", "--quiet")
	if err != nil || errs != "" {
		t.Fatalf("--quiet: %v %q", err, errs)
	}
}

func TestRunJSON(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	out, errs, err := runApp(t, "run", "-m", mp, "-p", "Once upon a time", "-n", "64", "--temp", "0", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, errs)
	}
	var r runResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if "Once upon a time"+r.Text != refGreedy || r.Stop != "limit" || r.Generated != 64 || r.PromptTokens != 5 || r.EvalTokens != 63 || r.EvalTPS <= 0 {
		t.Fatalf("%+v", r)
	}
	// seed: the same seed, the same text; -1 picks one and reports it
	a, _, _ := runApp(t, "run", "-m", mp, "-p", "Once", "-n", "16", "-s", "7", "--json")
	b, _, _ := runApp(t, "run", "-m", mp, "-p", "Once", "-n", "16", "--seed", "7", "--json")
	var ra, rb runResult
	json.Unmarshal([]byte(a), &ra)
	json.Unmarshal([]byte(b), &rb)
	if ra.Text != rb.Text || ra.Seed != 7 || ra.Text == "" {
		t.Errorf("seeded runs differ: %+v %+v", ra, rb)
	}
	_, errs, _ = runApp(t, "run", "-m", mp, "-p", "Once", "-n", "2")
	if !strings.Contains(errs, "seed ") {
		t.Errorf("random seed not printed:\n%s", errs)
	}
	// repeat penalty and min-p change the sampling but still run
	if _, _, err := runApp(t, "run", "-m", mp, "-p", "Once", "-n", "16", "--temp", "0", "--repeat-penalty", "1.3", "--min-p", "0.05"); err != nil {
		t.Fatal(err)
	}
}

func TestRunLongCtx(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf") // trained on 2048 tokens
	_, _, err := runApp(t, "run", "-m", mp, "-p", "Once", "-n", "2", "-c", "4096")
	if !errUsage(err) || !strings.Contains(err.Error(), "training context of 2048") || !strings.Contains(err.Error(), "--allow-long-ctx") {
		t.Fatalf("long ctx: %v", err)
	}
	_, errs, err := runApp(t, "run", "-m", mp, "-p", "Once", "-n", "2", "-c", "4096", "--allow-long-ctx")
	if err != nil || !strings.Contains(errs, "warning: --ctx 4096") {
		t.Fatalf("--allow-long-ctx: %v\n%s", err, errs)
	}
}

func TestRunInteractive(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the 135M-parameter SmolLM2")
	}
	mp := testenv.SmolLM2Path(t)
	out, errs, err := runAppIn(t, "What is the capital of France?\n\n", "run", "-m", mp, "--chat", "-i", "--temp", "0", "-n", "24", "-c", "256")
	if err != nil {
		t.Fatalf("%v\n%s", err, errs)
	}
	if !strings.HasPrefix(out, "The capital of France is Paris.") {
		t.Errorf("reply %q", out)
	}
	if !strings.Contains(errs, "> ") || !strings.Contains(errs, `end-of-generation token "<|im_end|>"`) {
		t.Errorf("stderr:\n%s", errs)
	}
}

func TestEvalOddValues(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	full, err := os.ReadFile(testenv.Path(t, "tinystories_valid_first1000.txt"))
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "short.txt")
	os.WriteFile(data, full[:4000], 0o644) // a few chunks of 128 tokens
	_, errs, err := runApp(t, "eval", "-m", mp, "-f", data, "-c", "128", "--chunks", "1000")
	if err != nil || !strings.Contains(errs, "warning: --chunks 1000: ") {
		t.Fatalf("%v\n%s", err, errs)
	}
	_, errs, err = runApp(t, "eval", "-m", mp, "-f", data, "-c", "128", "--chunks", "2", "--quiet")
	if err != nil || strings.Contains(errs, "Final estimate") {
		t.Errorf("--quiet printed progress: %v\n%s", err, errs)
	}
	_, _, err = runApp(t, "eval", "-m", mp, "-f", data, "-c", "4096")
	if !errUsage(err) || !strings.Contains(err.Error(), "training context") {
		t.Fatalf("eval long ctx: %v", err)
	}
}
