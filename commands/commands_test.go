package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/qsparse/qsparse/eval"
	"github.com/qsparse/qsparse/gguf"
	"github.com/qsparse/qsparse/internal/testenv"
	"github.com/qsparse/qsparse/model"
)

// refGreedy is llama-completion -m stories260K.gguf -p "Once upon a time" -n 64 --temp 0 -c 256
// (../shared/refs/README.md), without the leading space of the decoded prompt.
const refGreedy = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily's mom said"

// runApp runs the qsparse app in-process and returns its stdout and stderr.
func runApp(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	app := NewApp()
	app.Writer, app.ErrWriter = &out, &errb
	err := app.RunContext(context.Background(), append([]string{"qsparse"}, args...))
	return out.String(), errb.String(), err
}

func TestInspect(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	out, _, err := runApp(t, "inspect", "--json", mp)
	if err != nil {
		t.Fatal(err)
	}
	var info inspectJSON
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, out)
	}
	if info.Arch != "llama" || info.Dim != 64 || info.Layers != 5 || info.Vocab != 512 || info.KVHeads != 4 ||
		info.Tokenizer != "llama" || info.TokenizerVocab != 512 || len(info.Tensors) != 48 || info.Params != 292800 ||
		info.ChatTemplate || info.FileType != "F32" || info.Tensors[0].Name != "token_embd.weight" {
		t.Fatalf("inspect --json: %+v", info)
	}
	out, _, err = runApp(t, "inspect", mp)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"arch:", "llama", "blk.0.attn_q.weight", "dense bytes/token:", "chat template:"} {
		if !strings.Contains(out, s) {
			t.Errorf("inspect output lacks %q:\n%s", s, out)
		}
	}
}

func TestEvalCommand(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	data := testenv.Path(t, "tinystories_valid_first1000.txt")
	ref, err := os.ReadFile(testenv.Ref(t, "stories260K.tinystories.c256.50chunks.ppl"))
	if err != nil {
		t.Fatal(err)
	}
	out, errs, err := runApp(t, "eval", "--model", mp, "--data", data, "--ctx", "256", "--chunks", "5", "--threads", "2", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, errs)
	}
	var rep eval.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("eval --json: %v\n%s", err, out)
	}
	if len(rep.Rows) != 1 || rep.Rows[0].Chunks != 5 || rep.Ctx != 256 {
		t.Fatalf("report %+v", rep)
	}
	// The running value after 5 chunks is llama.cpp's [5].
	m := regexp.MustCompile(`\[5\]([0-9.]+),`).FindSubmatch(ref)
	want, _ := strconv.ParseFloat(string(m[1]), 64)
	if got := rep.Rows[0].PPL; (got-want)/want > 0.001 || (want-got)/want > 0.001 {
		t.Errorf("PPL over 5 chunks = %.4f, llama.cpp [5]%.4f", got, want)
	}
	if !strings.Contains(errs, "[1]") || !strings.Contains(errs, "[5]") || !strings.Contains(errs, "Final estimate: PPL = ") {
		t.Errorf("stderr:\n%s", errs)
	}
	// table output
	out, _, err = runApp(t, "eval", "-m", mp, "-f", data, "-c", "128", "--chunks", "2")
	if err != nil || !strings.Contains(out, "dense") {
		t.Fatalf("%v\n%s", err, out)
	}
}

func TestEvalSparsity(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	data := testenv.Path(t, "tinystories_valid_first1000.txt")
	out, errs, err := runApp(t, "eval", "-m", mp, "-f", data, "-c", "256", "--chunks", "3", "--sparsity", "0,0.5", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, errs)
	}
	var rep eval.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("eval --json: %v\n%s", err, out)
	}
	if len(rep.Rows) != 2 {
		t.Fatalf("%d rows, want 2: %+v", len(rep.Rows), rep)
	}
	d, s := rep.Rows[0], rep.Rows[1]
	if d.Label != "dense" || d.Sparsity != 0 || s.Label != "top-K |x|" || s.Sparsity != 0.5 ||
		d.Chunks != 3 || s.Chunks != 3 || len(s.Running) != 3 || !(s.PPL > d.PPL) {
		t.Fatalf("rows %+v", rep.Rows)
	}
	if strings.Count(errs, "Final estimate: PPL = ") != 2 || strings.Count(errs, "[3]") != 2 {
		t.Errorf("stderr:\n%s", errs)
	}
	// table output, and the sparse row against the dense model as base
	out, errs, err = runApp(t, "eval", "-m", mp, "-f", data, "-c", "128", "--chunks", "2", "--sparsity", "0.25", "--base", mp)
	if err != nil || !strings.Contains(out, "model, top-K |x|") || !strings.Contains(out, "25.0%") || !strings.Contains(out, "base") {
		t.Fatalf("%v\n%s\n%s", err, out, errs)
	}
}

func TestEvalTooShort(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	short := filepath.Join(t.TempDir(), "short.txt")
	if err := os.WriteFile(short, []byte("Once upon a time there was a cat."), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := runApp(t, "eval", "--model", mp, "--data", short, "--ctx", "256")
	if !errors.Is(err, eval.ErrTooFewTokens) || !strings.Contains(err.Error(), "need at least 2*ctx = 512 tokens") || errUsage(err) {
		t.Fatalf("err = %v", err)
	}
	_, _, err = runApp(t, "eval", "--model", mp, "--data", filepath.Join(t.TempDir(), "missing.txt"))
	if err == nil || errUsage(err) {
		t.Fatalf("missing data: %v", err)
	}
}

func TestRunGreedy(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	out, errs, err := runApp(t, "run", "--model", mp, "-p", "Once upon a time", "-n", "8", "--temp", "0")
	if err != nil {
		t.Fatalf("%v\n%s", err, errs)
	}
	got := strings.TrimRight(out, "\n")
	if len(got) <= len("Once upon a time") || !strings.HasPrefix(refGreedy, got) {
		t.Fatalf("run output %q is not a prefix of llama.cpp's %q", got, refGreedy)
	}
	if !strings.Contains(errs, "prompt eval:") || !strings.Contains(errs, "eval: 7 tokens") {
		t.Errorf("stderr:\n%s", errs)
	}
	// 64 tokens: the whole reference
	out, _, err = runApp(t, "run", "--model", mp, "-p", "Once upon a time", "-n", "64", "--temp", "0", "--ctx", "256")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimRight(out, "\n"); got != refGreedy {
		t.Errorf("64 greedy tokens:\n%q\nllama.cpp:\n%q", got, refGreedy)
	}
	// sampling runs and is reproducible with a seed
	a, _, err := runApp(t, "run", "--model", mp, "-p", "Once", "-n", "16", "--seed", "42")
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := runApp(t, "run", "--model", mp, "-p", "Once", "-n", "16", "--seed", "42")
	if a != b {
		t.Errorf("same seed, different text:\n%q\n%q", a, b)
	}
}

func TestRunErrors(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	// stories260K has no chat template
	_, _, err := runApp(t, "run", "--model", mp, "-p", "hi", "--chat")
	if err == nil || !strings.Contains(err.Error(), "chat template") || errUsage(err) {
		t.Fatalf("--chat without template: %v", err)
	}
	// prompt longer than the context
	_, _, err = runApp(t, "run", "--model", mp, "-p", strings.Repeat("Once upon a time. ", 40), "--ctx", "16", "-n", "4")
	if !errors.Is(err, eval.ErrPromptTooLong) {
		t.Fatalf("long prompt: %v", err)
	}
	// cancelled context stops cleanly
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	app := NewApp()
	app.Writer, app.ErrWriter = &bytes.Buffer{}, &bytes.Buffer{}
	err = app.RunContext(ctx, []string{"qsparse", "run", "--model", mp, "-p", "Once", "-n", "50"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
}

func TestBenchCommand(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	out, _, err := runApp(t, "bench", "--model", mp, "-p", "32", "-n", "8", "-r", "2")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "| model") || !strings.Contains(lines[0], " t/s |") ||
		!strings.Contains(lines[2], "pp32") || !strings.Contains(lines[3], "tg8") || !strings.Contains(lines[2], " ± ") {
		t.Fatalf("bench:\n%s", out)
	}
	out, _, err = runApp(t, "bench", "--model", mp, "-p", "16", "-n", "0", "-r", "1", "--json", "--weight-type", "f16")
	if err != nil {
		t.Fatal(err)
	}
	var rep eval.BenchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Rows) != 1 || rep.Rows[0].Test != "pp16" || rep.Rows[0].AvgTS <= 0 ||
		!strings.Contains(rep.Rows[0].Backend, "f16") {
		t.Fatalf("bench --json: %v\n%s", err, out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"inspect"},
		{"inspect", "a", "b"},
		{"inspect", "--bogus", "x"},
		{"eval", "--data", "x.txt"},
		{"eval", "--model", "m.gguf"},
		{"eval", "--model", "m.gguf", "--data", "x", "--ctx", "2"},
		{"eval", "--model", "m.gguf", "--data", "x", "--ctx", "abc"},
		{"eval", "--model", "m.gguf", "--data", "x", "--chunks", "-1"},
		{"run", "--model", "m.gguf"},
		{"run", "--model", "m.gguf", "-p", "x", "--top-p", "2"},
		{"run", "--model", "m.gguf", "-p", "x", "--temp", "-1"},
		{"run", "--model", "m.gguf", "-p", "x", "--system", "s"},
		{"run", "--model", "m.gguf", "-p", "x", "-n", "-2"},
		{"run", "--model", "m.gguf", "-p", "x", "--seed", "-5"},
		{"run", "--model", "m.gguf", "-p", "x", "-f", "y"},
		{"run", "--model", "m.gguf", "-p", "x", "--min-p", "2"},
		{"run", "--model", "m.gguf", "-p", "x", "--repeat-penalty", "0"},
		{"run", "--model", "m.gguf", "-p", "x", "--stop", ""},
		{"run", "--model", "m.gguf", "-i"},
		{"eval", "--model", "m.gguf", "--data", "x", "--sparsity", "0,0.5,0.5"},
		{"pull"},
		{"pull", "smollm2", "--source", "ftp"},
		{"bench", "--model", "m.gguf", "-r", "0"},
		{"bench", "--model", "m.gguf", "-p", "0", "-n", "0"},
		{"bench", "-p", "8"},
		{"bench", "--model", "m.gguf", "--threads", "-2"},
		{"eval", "--model", "m.gguf", "--data", "x", "--weight-type", "q4"},
		{"eval", "--model", "m.gguf", "--data", "x", "--sparsity", "1"},
		{"eval", "--model", "m.gguf", "--data", "x", "--sparsity", "0,abc"},
		{"eval", "--model", "m.gguf", "--data", "x", "--sparsity", "0,,0.5"},
		{"eval", "--model", "m.gguf", "--data", "x", "--sparsity", "-0.1"},
	} {
		_, _, err := runApp(t, args...)
		if !errUsage(err) {
			t.Errorf("%q: err = %v, want a UsageError", args, err)
		}
	}
}

// writeVariant copies stories260K.gguf with its metadata edited by edit.
func writeVariant(t *testing.T, src string, edit func([]gguf.KV) []gguf.KV) string {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ts []gguf.WriteTensor
	for _, ti := range f.Tensors {
		ts = append(ts, gguf.WriteTensor{Name: ti.Name, Type: ti.Type, Shape: ti.Shape, Data: ti.Data})
	}
	dst := filepath.Join(t.TempDir(), "variant.gguf")
	if err := gguf.WriteFile(dst, edit(append([]gguf.KV(nil), f.KV...)), ts, 0); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestBadModels(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	data := testenv.Path(t, "tinystories_valid_first1000.txt")
	gptneox := writeVariant(t, mp, func(kv []gguf.KV) []gguf.KV {
		for i := range kv {
			if kv[i].Key == "general.architecture" {
				kv[i] = gguf.String("general.architecture", "gptneox")
			}
		}
		return kv
	})
	notok := writeVariant(t, mp, func(kv []gguf.KV) []gguf.KV {
		var out []gguf.KV
		for _, k := range kv {
			if !strings.HasPrefix(k.Key, "tokenizer.") {
				out = append(out, k)
			}
		}
		return out
	})
	for _, c := range []struct {
		args []string
		want error
	}{
		{[]string{"inspect", gptneox}, model.ErrUnsupportedArch},
		{[]string{"run", "--model", gptneox, "-p", "hi", "-n", "2"}, model.ErrUnsupportedArch},
		{[]string{"eval", "--model", gptneox, "--data", data}, model.ErrUnsupportedArch},
		{[]string{"bench", "--model", gptneox, "-p", "4", "-n", "2", "-r", "1"}, model.ErrUnsupportedArch},
		{[]string{"run", "--model", notok, "-p", "hi", "-n", "2"}, model.ErrNoTokenizer},
		{[]string{"eval", "--model", notok, "--data", data}, model.ErrNoTokenizer},
		{[]string{"inspect", filepath.Join(t.TempDir(), "nope.gguf")}, fs.ErrNotExist},
	} {
		args := c.args
		_, _, err := runApp(t, args...)
		if !errors.Is(err, c.want) || errUsage(err) {
			t.Errorf("%q: err = %v, want a plain error wrapping %v", args, err, c.want)
		} else {
			t.Logf("%s: %v", args[0], err)
		}
	}
}

// TestRunChatSmolLM2: the ChatML template with SmolLM2's default system prompt, greedy, stopping
// at <|im_end|>. llama-completion -no-cnv --temp 0 -fa off -ctk f32 -ctv f32 on the F16 and F32
// conversions of this file, given the same rendered prompt, prints the same reply.
func TestRunChatSmolLM2(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the 135M-parameter SmolLM2")
	}
	mp := testenv.SmolLM2Path(t)
	out, errs, err := runApp(t, "run", "--model", mp, "--chat", "-p", "What is the capital of France?", "-n", "24", "--temp", "0", "--ctx", "256")
	if err != nil {
		t.Fatalf("%v\n%s", err, errs)
	}
	if out != "The capital of France is Paris.\n" {
		t.Errorf("reply %q, llama.cpp: %q", out, "The capital of France is Paris.\n")
	}
	if !strings.Contains(errs, "prompt eval: 37 tokens") {
		t.Errorf("stderr:\n%s", errs)
	}
}

func TestEvalBaseKL(t *testing.T) {
	mp := testenv.Path(t, "stories260K.gguf")
	data := testenv.Path(t, "tinystories_valid_first1000.txt")
	// F16 weights against the F32 original: tiny but non-zero KL divergence.
	out, errs, err := runApp(t, "eval", "--model", mp, "--weight-type", "f16", "--base", mp, "--data", data,
		"--ctx", "128", "--chunks", "3", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, errs)
	}
	var rep eval.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Base != mp || len(rep.Rows) != 2 || rep.Rows[0].Label != "base" || rep.Rows[1].Label != "model" {
		t.Fatalf("report %+v", rep)
	}
	b, m := rep.Rows[0], rep.Rows[1]
	if m.KLD <= 0 || m.KLD > 1e-3 || m.SameTop < 0.99 || b.PPL == m.PPL || (b.PPL-m.PPL)/b.PPL > 1e-3 || (m.PPL-b.PPL)/b.PPL > 1e-3 {
		t.Errorf("base %+v\nmodel %+v", b, m)
	}
	if !strings.Contains(errs, "Mean    KLD:") || !strings.Contains(errs, "Same top p:") {
		t.Errorf("stderr:\n%s", errs)
	}
	if _, _, err := runApp(t, "eval", "--model", mp, "--base", mp, "--base-weight-type", "int8", "--data", data); !errUsage(err) {
		t.Errorf("bad --base-weight-type: %v", err)
	}
}
