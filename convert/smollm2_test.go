package convert

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
	"github.com/qsparse/qsparse/model"
	"github.com/qsparse/qsparse/safetensors"
)

// smolHF writes the SmolLM2 HF folder fixture: the config and tokenizer files of
// ../shared/data/smollm2-hf and a model.safetensors (F32, HF names, rotate-half q/k rows)
// holding the test GGUF's weights. QSPARSE_CONVERT_HF=dir keeps it in dir (for llama.cpp
// checks by hand).
func smolHF(t *testing.T) (dir, ggufPath string) {
	ggufPath = testenv.SmolLM2Path(t)
	dir = os.Getenv("QSPARSE_CONVERT_HF")
	if dir == "" {
		dir = memTempDir(t)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"} {
		b, err := os.ReadFile(testenv.Path(t, filepath.Join("smollm2-hf", name)))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := load(t, ggufPath, "f32")
	var ts []safetensors.Tensor
	for _, spec := range m.Spec.Tensors() {
		name, ok := model.CanonicalToHF(spec.Name)
		if !ok {
			t.Fatalf("no HF name for %s", spec.Name)
		}
		var v []float32
		if spec.Matrix {
			v = m.W.Matrix(spec.Name).F32
		} else {
			v = vector(m, spec.Name)
		}
		b := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
		ts = append(ts, safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: slices.Clone(spec.Shape), Data: b})
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir, ggufPath
}

// memTempDir returns a temporary folder in /dev/shm when there is one, else t.TempDir().
func memTempDir(t *testing.T) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "qsparse-convert-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// TestSmolLM2HF converts the SmolLM2 HF folder: the gguf-f16 export carries the tokenizer keys
// llama.cpp's converter wrote into the reference GGUF and loads back to the folder's weights;
// the fp16 pack round-trips.
func TestSmolLM2HF(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 540 MB checkpoint")
	}
	hf, ref := smolHF(t)
	dir := memTempDir(t)
	out := filepath.Join(dir, "smol-f16.gguf")
	res := run(t, Options{Model: hf, Format: FormatGGUFF16, Out: out})
	t.Logf("gguf-f16: %d bytes, load %v, write %v", res.Bytes, res.Load, res.Write)
	f, rf := openGGUF(t, out), openGGUF(t, ref)
	for _, e := range rf.KV {
		if !strings.HasPrefix(e.Key, "tokenizer.") {
			continue
		}
		v, ok := f.Lookup(e.Key)
		switch {
		case !ok:
			t.Errorf("tokenizer key %s (%s) missing", e.Key, e.Value.Type())
		case !v.Equal(e.Value):
			s, r := v.String(), e.Value.String()
			t.Errorf("tokenizer key %s = %.80s, reference GGUF %.80s", e.Key, s, r)
		}
	}
	for _, e := range f.KV {
		if _, ok := rf.Lookup(e.Key); !ok {
			t.Logf("key %s = %.60s is not in the reference GGUF", e.Key, e.Value.String())
		}
	}
	a, b := load(t, out, "f16"), load(t, hf, "f16")
	sa, sb := a.Spec, b.Spec
	sa.Name, sb.Name = "", ""
	if sa != sb {
		t.Errorf("spec %+v, want %+v", sa, sb)
	}
	for _, ts := range b.Spec.Tensors() {
		if ts.Matrix && !slices.Equal(a.W.Matrix(ts.Name).F16, b.W.Matrix(ts.Name).F16) ||
			!ts.Matrix && !slices.Equal(vector(a, ts.Name), vector(b, ts.Name)) {
			t.Fatalf("%s differs after the round trip", ts.Name)
		}
	}
	if a.ChatTemplate != b.ChatTemplate {
		t.Error("chat template differs")
	}
	a.Close()

	pack := filepath.Join(dir, "smol-pack.gguf")
	res = run(t, Options{Model: hf, Format: FormatFP16, Out: pack})
	t.Logf("fp16 pack: %d bytes, load %v, write %v", res.Bytes, res.Load, res.Write)
	checkPackF16(t, pack, hf, b)
}
