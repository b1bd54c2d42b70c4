package commands

import (
	"strings"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
)

// The demo on stories260K prints a table of at least three sparsity levels and generates text
// dense and at 50%, with tokens/s.
func TestDemo(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	out, errs, err := runApp(t, "demo", "--model", mp, "-p", "Once upon a time", "-n", "16", "-t", "2")
	if err != nil {
		t.Fatalf("%v\n%s", err, errs)
	}
	levels := 0
	for _, l := range []string{"│ dense ", "│ 25.0%", "│ 40.0%", "│ 50.0%"} {
		if strings.Contains(out, l) {
			levels++
		}
	}
	if levels < 3 || !strings.Contains(out, "same top-1") {
		t.Errorf("%d sparsity levels in the table:\n%s", levels, out)
	}
	for _, run := range []string{"[dense] ", "[50% calibrated] "} {
		i := strings.Index(out, run)
		if i < 0 {
			t.Fatalf("no %q answer:\n%s", run, out)
		}
		answer, _, _ := strings.Cut(out[i+len(run):], "\n")
		if len(strings.TrimSpace(answer)) == 0 || !strings.Contains(out, run+"16 tokens, ") || !strings.Contains(out, "tokens/s") {
			t.Errorf("%s answer %q:\n%s", run, answer, out)
		}
	}
	if _, _, err := runApp(t, "demo", "--model", mp, "--ctx", "4096"); err == nil {
		t.Error("demo --ctx 4096 on a 256-context model: no error")
	}
}
