// Package tinyhf writes tiny Hugging Face model folders for tests (config.json, the SmolLM2
// fixture's tokenizer, F32 safetensors), so that every package tests HF loading the same way.
package tinyhf

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
	"github.com/qsparse/qsparse/safetensors"
)

// Tensor is one F32 tensor of a Hugging Face test folder: value i is Value(i).
type Tensor struct {
	Name  string
	Shape []int
	Value func(i int) float32
}

// Write writes a Hugging Face model folder into a new temporary directory: config.json
// from cfg, the SmolLM2 test fixture's tokenizer.json, and model.safetensors holding tensors
// as F32; it returns the folder. Tests build tiny models of any architecture with it.
func Write(tb testing.TB, cfg map[string]any, tensors []Tensor) string {
	tb.Helper()
	dir := tb.TempDir()
	tj, err := os.ReadFile(testenv.Path(tb, "smollm2-hf/tokenizer.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tj, 0o644); err != nil {
		tb.Fatal(err)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		tb.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, t := range tensors {
		n := 1
		for _, d := range t.Shape {
			n *= d
		}
		data := make([]byte, 4*n)
		for i := range n {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(t.Value(i)))
		}
		ts = append(ts, safetensors.Tensor{Name: t.Name, DType: safetensors.F32, Shape: append([]int(nil), t.Shape...), Data: data})
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		tb.Fatal(err)
	}
	return dir
}
