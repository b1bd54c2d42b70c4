package commands

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qsparse/qsparse/eval"
	"github.com/qsparse/qsparse/internal/testenv"
	"github.com/qsparse/qsparse/model"
)

func TestBenchSparsity(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	out, _, err := runApp(t, "bench", "--model", mp, "-p", "16", "-n", "8", "-r", "2", "--sparsity", "0,0.5", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep eval.BenchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Rows) != 4 {
		t.Fatalf("bench --sparsity 0,0.5 --json: %v\n%s", err, out)
	}
	for i, want := range []string{"dense", "0.5", "dense", "0.5"} {
		r := rep.Rows[i]
		if r.Sparsity != want || len(r.Samples) != 2 || r.MedianTS <= 0 || !strings.Contains(r.Backend, "cols") {
			t.Fatalf("row %d: %+v, want sparsity %s, 2 samples, layout cols", i, r, want)
		}
	}
	out, _, err = runApp(t, "bench", "--model", mp, "-p", "0", "-n", "4", "-r", "1", "--sparsity", "0,0.5", "--block", "2:4", "--scoring", "weighted", "--rescale")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "| sparsity |") || !strings.Contains(out, "2:4") || !strings.Contains(out, "dense") {
		t.Fatalf("bench --block 2:4:\n%s", out)
	}
}

func TestRunSparsity(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	dense, _, err := runApp(t, "run", "--model", mp, "-p", "Once upon a time", "-n", "12", "--temp", "0")
	if err != nil {
		t.Fatal(err)
	}
	zero, _, err := runApp(t, "run", "--model", mp, "-p", "Once upon a time", "-n", "12", "--temp", "0", "--sparsity", "0", "--layout", "cols")
	if err != nil {
		t.Fatal(err)
	}
	if dense != zero {
		t.Errorf("run --sparsity 0 --layout cols: %q, dense %q", zero, dense)
	}
	_, errs, err := runApp(t, "run", "--model", mp, "-p", "Once upon a time", "-n", "8", "--temp", "0", "--sparsity", "0.5")
	if err != nil || !strings.Contains(errs, "sparsity: 0.5") || !strings.Contains(errs, "layout cols") {
		t.Fatalf("run --sparsity 0.5: %v\n%s", err, errs)
	}
}

// TestSparsityBadInput: flags out of range are usage errors (exit 2); a profile or block that
// does not fit the model is a model.ErrBadProfile error (exit 1).
func TestSparsityBadInput(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	for _, args := range [][]string{
		{"run", "--model", mp, "-p", "x", "--sparsity", "1"},
		{"run", "--model", mp, "-p", "x", "--sparsity", "-0.5"},
		{"run", "--model", mp, "-p", "x", "--scoring", "loud"},
		{"run", "--model", mp, "-p", "x", "--block", "4:2"},
		{"run", "--model", mp, "-p", "x", "--block", "x"},
		{"run", "--model", mp, "-p", "x", "--layout", "diagonal"},
		{"bench", "--model", mp, "--sparsity", "0,1"},
		{"bench", "--model", mp, "--scoring", "loud"},
	} {
		if _, _, err := runApp(t, args...); !errUsage(err) {
			t.Errorf("%q: err = %v, want a UsageError", args[3:], err)
		}
	}
	// A profile for another model (stories260K has 5 layers; one with 3 fails), and N:M
	// whose M does not divide a width.
	m, err := model.Load(mp, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	sp := m.Spec
	sp.NLayers = 3
	p, _ := model.UniformProfile(&sp, 0.5)
	other := filepath.Join(t.TempDir(), "other.json")
	if err := model.WriteProfile(other, &sp, p); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"run", "--model", mp, "-p", "x", "--profile", other},
		{"bench", "--model", mp, "-n", "2", "-p", "0", "--profile", other},
		{"run", "--model", mp, "-p", "x", "--block", "3:7"},
	} {
		_, _, err := runApp(t, args...)
		if err == nil || errUsage(err) || !errors.Is(err, model.ErrBadProfile) {
			t.Errorf("%q: err = %v, want a model.ErrBadProfile error", args[3:], err)
		}
	}
}
