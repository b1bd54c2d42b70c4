package gguf

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
)

func wantUint(t *testing.T, f *File, key string, want uint64) {
	t.Helper()
	got, ok := f.Uint(key)
	if !ok || got != want {
		v, _ := f.Lookup(key)
		t.Errorf("%s = %v (ok=%v), want %d", key, v, ok, want)
	}
}

func TestStories260K(t *testing.T) {
	f, err := Open(testenv.Path(t, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Arch() != "llama" {
		t.Errorf("arch %q, want llama", f.Arch())
	}
	wantUint(t, f, "llama.embedding_length", 64)
	wantUint(t, f, "llama.block_count", 5)
	wantUint(t, f, "llama.attention.head_count", 8)
	wantUint(t, f, "llama.attention.head_count_kv", 4)
	wantUint(t, f, "llama.feed_forward_length", 172)
	toks, ok := f.Strings("tokenizer.ggml.tokens")
	if !ok || len(toks) != 512 {
		t.Errorf("tokenizer.ggml.tokens: %d tokens (ok=%v), want 512", len(toks), ok)
	}
	if sc, ok := f.Float32s("tokenizer.ggml.scores"); !ok || len(sc) != 512 {
		t.Errorf("tokenizer.ggml.scores: %d (ok=%v)", len(sc), ok)
	}
	if ty, ok := f.Int32s("tokenizer.ggml.token_type"); !ok || len(ty) != 512 {
		t.Errorf("tokenizer.ggml.token_type: %d (ok=%v)", len(ty), ok)
	}
	emb, ok := f.Tensor("token_embd.weight")
	if !ok {
		t.Fatal("token_embd.weight missing")
	}
	if emb.Shape[0] != 64 || emb.Shape[1] != 512 {
		t.Errorf("token_embd.weight shape %v, want [64 512]", emb.Shape)
	}
	// Every tensor decodes.
	for _, ti := range f.Tensors {
		dst := make([]float32, ti.NumElements())
		if err := ti.Dequantize(dst); err != nil {
			t.Errorf("%s: %v", ti.Name, err)
		}
	}
	t.Logf("%d tensors, %d KV, version %d, alignment %d", len(f.Tensors), len(f.KV), f.Version, f.Alignment)
}

func TestSmolLM2(t *testing.T) {
	f, err := Open(testenv.SmolLM2Path(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Arch() != "llama" {
		t.Errorf("arch %q, want llama", f.Arch())
	}
	wantUint(t, f, "llama.block_count", 30)
	wantUint(t, f, "llama.embedding_length", 576)
	wantUint(t, f, "llama.attention.head_count", 9)
	wantUint(t, f, "llama.attention.head_count_kv", 3)
	wantUint(t, f, "llama.feed_forward_length", 1536)
	toks, ok := f.Strings("tokenizer.ggml.tokens")
	if !ok || len(toks) != 49152 {
		t.Errorf("vocab %d (ok=%v), want 49152", len(toks), ok)
	}
	counts := map[Type]int{}
	for _, ti := range f.Tensors {
		counts[ti.Type]++
		if ti.Type != Q4_1 && ti.Type != F32 {
			t.Logf("tensor %s is %s %v", ti.Name, ti.Type, ti.Shape)
		}
	}
	t.Logf("%d tensors, types %v", len(f.Tensors), counts)
	for _, ti := range f.Tensors {
		if !ti.Type.CanDequantize() {
			t.Errorf("tensor %s has type %s that cannot be dequantized", ti.Name, ti.Type)
		}
	}
	// Decode a few rows of each distinct type.
	seen := map[Type]bool{}
	for _, ti := range f.Tensors {
		if seen[ti.Type] {
			continue
		}
		seen[ti.Type] = true
		n := min(2, int(ti.Rows()))
		dst := make([]float32, uint64(n)*ti.Cols())
		if err := ti.DequantizeRows(dst, int(ti.Rows())-n, n); err != nil {
			t.Errorf("%s: %v", ti.Name, err)
		}
	}
}

// TestOpenDoesNotReadData checks that opening the 98 MB SmolLM2 allocates only metadata.
func TestOpenDoesNotReadData(t *testing.T) {
	path := testenv.SmolLM2Path(t)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	f, err := Open(path)
	runtime.ReadMemStats(&ms1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	alloc := ms1.TotalAlloc - ms0.TotalAlloc
	t.Logf("Open allocated %d bytes for a %d-byte file", alloc, f.Size)
	if alloc > uint64(f.Size)/8 {
		t.Errorf("Open allocated %d bytes for a %d-byte file: tensor data read into the heap?", alloc, f.Size)
	}
}

func TestVersion2AndRows(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "v.gguf")
	if err := WriteFile(p, allValueKVs(), testTensors(), 0); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	b[4] = 2
	p2 := filepath.Join(dir, "v2.gguf")
	os.WriteFile(p2, b, 0o644)
	f, err := Open(p2)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Version != 2 || len(f.Tensors) != 5 {
		t.Fatalf("version %d, %d tensors", f.Version, len(f.Tensors))
	}
	ti, _ := f.Tensor("a.f32")
	if ti.Rows() != 4 || ti.Cols() != 64 || ti.NumElements() != 256 || ti.Bytes() != 1024 {
		t.Errorf("rows %d cols %d n %d bytes %d", ti.Rows(), ti.Cols(), ti.NumElements(), ti.Bytes())
	}
	for _, c := range [][2]int{{-1, 1}, {0, 5}, {4, 1}, {3, 2}} {
		if err := ti.DequantizeRows(make([]float32, c[1]*64), c[0], c[1]); !errors.Is(err, ErrSize) {
			t.Errorf("rows %v accepted", c)
		}
	}
	if err := ti.DequantizeRows(make([]float32, 63), 0, 1); !errors.Is(err, ErrSize) {
		t.Error("short dst accepted")
	}
	if err := ti.Dequantize(make([]float32, 255)); !errors.Is(err, ErrSize) {
		t.Error("short dst accepted")
	}
	if _, ok := f.Tensor("nope"); ok {
		t.Error("missing tensor found")
	}
}
