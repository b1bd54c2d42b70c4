package commands

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
	"github.com/qsparse/qsparse/model"
)

func TestCalibrateCommand(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	data := testenv.Path(t, "tinystories_valid_first1000.txt")
	out := filepath.Join(t.TempDir(), "p.json")
	args := []string{"calibrate", "-m", mp, "-f", data, "--target", "0.4", "--tokens", "2048", "--kl-tokens", "256", "--ctx", "256", "-o", out}
	stdout, _, err := runApp(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "byte-weighted sparsity 40.") || !strings.Contains(stdout, "mlp_down") {
		t.Errorf("calibrate output:\n%s", stdout)
	}
	first, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := runApp(t, args...); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(out)
	if string(first) != string(again) {
		t.Error("the same inputs gave a different profile file")
	}
	p, err := model.ReadProfile(out)
	if err != nil {
		t.Fatal(err)
	}
	if c := p.Calibration; c == nil || c.Method != "kl" || c.Tokens != 2048 || len(c.DataSHA) != 64 || c.Data != filepath.Base(data) {
		t.Errorf("calibration record: %+v", p.Calibration)
	}

	table, _, err := runApp(t, "inspect", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"method:", "kl", "target:", "40.00% sparsity", "data sha256:", "MLP DOWN K", "held-out KL:"} {
		if !strings.Contains(strings.ToUpper(table), strings.ToUpper(s)) {
			t.Errorf("inspect profile lacks %q:\n%s", s, table)
		}
	}
	if js, _, err := runApp(t, "inspect", "--json", out); err != nil || js != string(first) {
		t.Errorf("inspect --json: %v", err)
	}
}

func TestCalibrateCommandBadInput(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	data := testenv.Path(t, "tinystories_valid_first1000.txt")
	out := filepath.Join(t.TempDir(), "p.json")
	small := filepath.Join(t.TempDir(), "small.txt")
	if err := os.WriteFile(small, []byte("Once upon a time there was a cat."), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--target", "1.2", "-f", data}, "outside (0, 1)"},
		{[]string{"--target", "0", "-f", data}, "outside (0, 1)"},
		{[]string{"--target", "0.5", "-f", small}, "--tokens asks for"},
		{[]string{"--target", "0.5", "--max-kl", "0.1", "-f", data}, "exactly one"},
		{[]string{"--max-ppl-increase", "ten", "-f", data}, "not a number"},
		{[]string{"--target", "0.5", "--method", "magic", "-f", data, "--tokens", "1024", "--kl-tokens", "256"}, "unknown method"},
	} {
		args := append([]string{"calibrate", "-m", mp, "-o", out}, tc.args...)
		_, _, err := runApp(t, args...)
		if err == nil || errUsage(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want a plain error (exit 1) saying %q", tc.args, err, tc.want)
		}
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Error("a failed calibration wrote a profile")
	}
}
