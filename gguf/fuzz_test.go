package gguf

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

// seedFiles returns small valid GGUF files covering every value type, every dequantizable
// tensor type, version 2, an empty model and a split shard.
func seedFiles(t testing.TB) map[string][]byte {
	dir := t.TempDir()
	out := map[string][]byte{}
	write := func(name string, kv []KV, ts []WriteTensor, align uint64) {
		p := filepath.Join(dir, name+".gguf")
		if err := WriteFile(p, kv, ts, align); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
	write("values", allValueKVs(), testTensors(), 0)
	write("empty", nil, nil, 0)
	write("align1", []KV{String("general.architecture", "llama")}, testTensors()[4:], 1)
	rng := rand.New(rand.NewPCG(1, 2))
	var quant []WriteTensor
	for typ := Type(0); typ < 40; typ++ {
		if !typ.CanDequantize() {
			continue
		}
		data := make([]byte, 256/typ.BlockSize()*typ.BlockBytes())
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		quant = append(quant, WriteTensor{Name: typ.String(), Type: typ, Shape: []uint64{256, 1}, Data: data})
	}
	write("quants", []KV{Uint32("general.alignment", 32)}, quant, 0)
	v2 := append([]byte(nil), out["align1"]...)
	v2[4] = 2
	out["version2"] = v2
	paths, err := WriteSplit(filepath.Join(dir, "split"), []KV{String("general.architecture", "llama")}, testTensors()[:2], 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	out["split_shard0"], _ = os.ReadFile(paths[0])
	return out
}

// TestWriteFuzzCorpus regenerates testdata/fuzz/FuzzOpen/seed-* when QSPARSE_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("QSPARSE_WRITE_CORPUS") != "1" {
		t.Skip("set QSPARSE_WRITE_CORPUS=1 to regenerate the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzOpen")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seedFiles(t) {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var sentinels = []error{ErrBadMagic, ErrVersion, ErrTruncated, ErrUnsupportedType, ErrCorrupt, ErrMissingShard}

// FuzzOpen opens arbitrary bytes as a GGUF file: it must return an error wrapping a sentinel, or
// a File whose tensors all decode, whose values all read, and that round-trips through WriteFile.
func FuzzOpen(f *testing.F) {
	for _, b := range seedFiles(f) {
		f.Add(b)
	}
	dir := f.TempDir()
	n := 0
	f.Fuzz(func(t *testing.T, data []byte) {
		n++
		// The name looks like a shard so the split code runs (shard 2 never exists).
		p := filepath.Join(dir, fmt.Sprintf("m%d-00001-of-00002.gguf", n))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(p)
		file, err := Open(p)
		if err != nil {
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		defer file.Close()
		for _, e := range file.KV {
			v := e.Value
			_ = v.String()
			v.Strings()
			v.Float32s()
			v.Int32s()
			v.Int64s()
			v.Values()
			v.Uint()
			v.Int()
			v.Float()
			_ = v.Raw()
		}
		var wts []WriteTensor
		for _, ti := range file.Tensors {
			if uint64(len(ti.Data)) != ti.Bytes() {
				t.Fatalf("tensor %s: %d data bytes, want %d", ti.Name, len(ti.Data), ti.Bytes())
			}
			if ti.Type.CanDequantize() && ti.NumElements() <= 1<<20 {
				if err := ti.Dequantize(make([]float32, ti.NumElements())); err != nil {
					t.Fatalf("tensor %s: %v", ti.Name, err)
				}
			}
			wts = append(wts, WriteTensor{Name: ti.Name, Type: ti.Type, Shape: ti.Shape, Data: ti.Data})
		}
		// Round trip (the writer requires general.alignment to be a uint32).
		if v, ok := file.Lookup("general.alignment"); ok && v.Type() != ValueUint32 {
			return
		}
		if _, ok := file.Lookup(KeySplitCount); ok {
			return
		}
		// Encode in memory and parse the bytes (WriteFile's fsyncs would slow the fuzzer down).
		kv, align, err := checkWrite(file.KV, wts, file.Alignment)
		if err != nil {
			t.Fatalf("rewrite: %v", err)
		}
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		if err := encode(w, kv, wts, align); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		g, err := parse("rt.gguf", buf.Bytes())
		if err != nil {
			t.Fatalf("reparse: %v", err)
		}
		if len(g.kv) != len(file.KV) || len(g.tensors) != len(file.Tensors) {
			t.Fatalf("round trip: %d KV %d tensors, want %d %d", len(g.kv), len(g.tensors), len(file.KV), len(file.Tensors))
		}
		for i, e := range file.KV {
			if g.kv[i].Key != e.Key || !g.kv[i].Value.Equal(e.Value) {
				t.Fatalf("round trip: key %q differs", e.Key)
			}
		}
		for i, ti := range file.Tensors {
			gt := g.tensors[i]
			if gt.Name != ti.Name || gt.Type != ti.Type || !reflect.DeepEqual(gt.Shape, ti.Shape) || string(gt.Data) != string(ti.Data) {
				t.Fatalf("round trip: tensor %s differs", ti.Name)
			}
		}
	})
}
