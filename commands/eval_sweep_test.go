package commands

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/qsparse/qsparse/eval"
	"github.com/qsparse/qsparse/internal/testenv"
	"github.com/qsparse/qsparse/model"
)

func TestEvalSweepFormats(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	data := testenv.Path(t, "tinystories_valid_first1000.txt")
	plot := filepath.Join(t.TempDir(), "sweep.svg")
	args := []string{"eval", "-m", mp, "-f", data, "-c", "128", "--chunks", "2", "--sparsity", "0,0.5",
		"--scoring", "magnitude,weighted", "--block", "2:4"}
	out, errs, err := runApp(t, append(args, "--json", "--plot", plot)...)
	if err != nil {
		t.Fatalf("%v\n%s", err, errs)
	}
	var rep eval.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	labels := []string{}
	for _, r := range rep.Rows {
		labels = append(labels, r.Label)
	}
	if strings.Join(labels, ";") != "dense;top-K |x|;top-K |x|·‖W‖₂;2:4 |x|;2:4 |x|·‖W‖₂" || rep.DenseBytes == 0 {
		t.Fatalf("rows %q", labels)
	}
	for _, r := range rep.Rows[1:] {
		if r.Sparsity != 0.5 || !(r.KLD > 0) || !(r.PPL > rep.Rows[0].PPL) || r.BytesFrac >= 1 || r.Chunks != 2 {
			t.Errorf("row %+v", r)
		}
	}
	if strings.Count(errs, "Final estimate: PPL = ") != 5 || !strings.Contains(errs, "row 5 of 5: 2:4 |x|·‖W‖₂") {
		t.Errorf("stderr:\n%s", errs)
	}
	svg, err := os.ReadFile(plot)
	if err != nil || !bytes.Contains(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("2:4 |x|·‖W‖₂")) {
		t.Fatalf("plot: %v\n%s", err, svg)
	}
	out, _, err = runApp(t, append(args, "--csv")...)
	recs, cerr := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || cerr != nil || len(recs) != 6 || recs[0][3] != "sparsity" {
		t.Fatalf("csv: %v %v\n%s", err, cerr, out)
	}
	out, _, err = runApp(t, append(args, "--markdown")...)
	if err != nil || !strings.HasPrefix(out, "| config | requested |") || strings.Count(out, "\n") != 7 {
		t.Fatalf("markdown: %v\n%s", err, out)
	}
}

func TestEvalSweepUsage(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	data := testenv.Path(t, "tinystories_valid_first1000.txt")
	for _, args := range [][]string{
		{"--sparsity", "0,0.5,0.5"},
		{"--sparsity", "0.25,0.250"},
		{"--scoring", "magnitude,magnitude"},
		{"--scoring", "wina"},
		{"--scoring", ""},
		{"--block", "4:2"},
		{"--block", "2-4"},
		{"--block", "2:4,2:4"},
		{"--block", "3:7"}, // 7 does not divide the widths (after loading the model)
		{"--profile", "a.json", "--profile", "a.json"},
		{"--json", "--csv"},
		{"--markdown", "--json"},
	} {
		_, _, err := runApp(t, append([]string{"eval", "-m", mp, "-f", data, "-c", "128"}, args...)...)
		if !errUsage(err) {
			t.Errorf("%q: err = %v, want a usage error", args, err)
		}
	}
	_, _, err := runApp(t, "eval", "-m", mp, "-f", data, "-c", "128", "--profile", filepath.Join(t.TempDir(), "missing.json"))
	if err == nil || errUsage(err) || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing profile: %v", err)
	}
	// More chunks than the text holds: a warning, then all of them.
	_, errs, err := runApp(t, "eval", "-m", mp, "-f", data, "-c", "128", "--chunks", "100000", "--json")
	if err != nil || !strings.Contains(errs, "warning: --chunks 100000:") {
		t.Errorf("%v\n%s", err, errs)
	}
}

// cancelWriter cancels a context the first time "Final estimate" is written to it.
type cancelWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	cancel context.CancelFunc
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if strings.Contains(w.buf.String(), "Final estimate") {
		w.cancel()
	}
	return n, err
}

// Ctrl-C (a cancelled context) after the first row: that row is printed, the error is
// context.Canceled (main exits 130).
func TestEvalSweepInterrupted(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	data := testenv.Path(t, "tinystories_valid_first1000.txt")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	errw := &cancelWriter{cancel: cancel}
	app := NewApp()
	app.Writer, app.ErrWriter = &out, errw
	err := app.RunContext(ctx, []string{"qsparse", "eval", "-m", mp, "-f", data, "-c", "128", "--chunks", "2",
		"--sparsity", "0,0.25,0.5", "--markdown"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if s := out.String(); !strings.Contains(s, "| dense |") || strings.Contains(s, "top-K") {
		t.Errorf("stdout:\n%s", s)
	}
	if !strings.Contains(errw.buf.String(), "interrupted: the table holds the 1 finished row(s)") {
		t.Errorf("stderr:\n%s", errw.buf.String())
	}
}

// A calibrated profile file is a row labelled by its name, requested sparsity its target.
func TestEvalSweepProfile(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	data := testenv.Path(t, "tinystories_valid_first1000.txt")
	m, err := model.Load(mp, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := model.UniformProfile(&m.Spec, 0.3)
	if err != nil {
		t.Fatal(err)
	}
	p.Keep[0][model.MLPDown] = 0
	p.Calibration = &model.Calibration{Method: "test", Target: 0.35}
	path := filepath.Join(t.TempDir(), "calib-35.json")
	if err := model.WriteProfile(path, &m.Spec, p); err != nil {
		t.Fatal(err)
	}
	want := p.ByteSparsity(&m.Spec)
	m.Close()
	out, errs, err := runApp(t, "eval", "-m", mp, "-f", data, "-c", "128", "--chunks", "2", "--profile", path, "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, errs)
	}
	var rep eval.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 2 || rep.Rows[1].Label != "calib-35" || rep.Rows[1].Sparsity != 0.35 || rep.Rows[1].ByteSparsity != want || !(rep.Rows[1].KLD > 0) {
		t.Fatalf("rows %+v", rep.Rows)
	}
}
