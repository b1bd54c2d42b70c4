package gguf

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
)

func allValueKVs() []KV {
	return []KV{
		String("general.architecture", "test"),
		String("s.empty", ""),
		String("s.utf8", "héllo\x00wörld"),
		Uint8("u8", 200), Int8("i8", -100), Uint16("u16", 60000), Int16("i16", -30000),
		Uint32("u32", 4000000000), Int32("i32", -2000000000), Uint64("u64", math.MaxUint64),
		Int64("i64", math.MinInt64), Float32("f32", -1.5e-30), Float64("f64", math.Pi),
		Float32("f32.nan", float32(math.NaN())), Bool("b.t", true), Bool("b.f", false),
		Uint8Array("a.u8", []uint8{1, 2, 255}), Int8Array("a.i8", []int8{-1, 0, 1}),
		Uint16Array("a.u16", []uint16{1, 65535}), Int16Array("a.i16", []int16{-32768}),
		Uint32Array("a.u32", []uint32{7}), Int32Array("a.i32", []int32{-5, 5}),
		Uint64Array("a.u64", []uint64{1 << 63}), Int64Array("a.i64", []int64{-1 << 62}),
		Float32Array("a.f32", []float32{0.5, -0, float32(math.Inf(1))}),
		Float64Array("a.f64", []float64{1e300}), BoolArray("a.bool", []bool{true, false}),
		Strings("a.str", []string{"a", "", "ccc"}), Strings("a.empty", nil),
		Array("a.nested", Int32Array("", []int32{1, 2}).Value, Strings("", []string{"x"}).Value,
			Array("", Uint8Array("", []uint8{9}).Value).Value),
	}
}

func testTensors() []WriteTensor {
	src := make([]float32, 64*4)
	for i := range src {
		src[i] = float32(math.Sin(float64(i))) * 0.1
	}
	f16, _ := Quantize(F16, src)
	bf16, _ := Quantize(BF16, src)
	q8, _ := Quantize(Q8_0, src)
	f32, _ := Quantize(F32, src)
	return []WriteTensor{
		{Name: "a.f32", Type: F32, Shape: []uint64{64, 4}, Data: f32},
		{Name: "b.f16", Type: F16, Shape: []uint64{64, 2, 2}, Data: f16},
		{Name: "c.bf16", Type: BF16, Shape: []uint64{256}, Data: bf16},
		{Name: "d.q8", Type: Q8_0, Shape: []uint64{64, 4, 1, 1}, Data: q8},
		{Name: "e.odd", Type: F32, Shape: []uint64{3}, Data: f32[:12]},
	}
}

func TestWriteRoundTrip(t *testing.T) {
	for _, align := range []uint64{0, 1, 64, 4096} {
		path := filepath.Join(t.TempDir(), "rt.gguf")
		kv, tensors := allValueKVs(), testTensors()
		if err := WriteFile(path, kv, tensors, align); err != nil {
			t.Fatal(err)
		}
		f, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		want := align
		if want == 0 {
			want = DefaultAlignment
		}
		if f.Version != 3 || f.Alignment != want {
			t.Errorf("version %d alignment %d, want 3 %d", f.Version, f.Alignment, want)
		}
		for _, e := range kv {
			v, ok := f.Lookup(e.Key)
			if !ok {
				t.Errorf("key %s missing", e.Key)
				continue
			}
			if v.Type() != e.Value.Type() || v.ElemType() != e.Value.ElemType() {
				t.Errorf("key %s: type %s/%s, want %s/%s", e.Key, v.Type(), v.ElemType(), e.Value.Type(), e.Value.ElemType())
			}
			if got, w := v.String(), e.Value.String(); got != w {
				t.Errorf("key %s: %s, want %s", e.Key, got, w)
			}
			if e.Key != "f32.nan" && !reflect.DeepEqual(v.Raw(), e.Value.Raw()) {
				t.Errorf("key %s: %#v, want %#v", e.Key, v.Raw(), e.Value.Raw())
			}
		}
		if x, _ := f.Float("f32.nan"); !math.IsNaN(x) {
			t.Errorf("f32.nan = %v", x)
		}
		if len(f.Tensors) != len(tensors) {
			t.Fatalf("%d tensors, want %d", len(f.Tensors), len(tensors))
		}
		for i, wt := range tensors {
			ti := f.Tensors[i]
			if ti.Name != wt.Name || ti.Type != wt.Type || !reflect.DeepEqual(ti.Shape, wt.Shape) || string(ti.Data) != string(wt.Data) {
				t.Errorf("tensor %d: %s %s %v differs from %s %s %v", i, ti.Name, ti.Type, ti.Shape, wt.Name, wt.Type, wt.Shape)
			}
			if ti.Offset%want != 0 {
				t.Errorf("tensor %s offset %d not aligned to %d", ti.Name, ti.Offset, want)
			}
		}
		f.Close()
		// No temporary files left behind.
		ents, _ := os.ReadDir(filepath.Dir(path))
		if len(ents) != 1 {
			t.Errorf("directory holds %d entries after WriteFile, want 1", len(ents))
		}
	}
}

func TestAccessors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acc.gguf")
	if err := WriteFile(path, allValueKVs(), nil, 0); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if v, ok := f.Uint("u8"); !ok || v != 200 {
		t.Error("Uint(u8)", v, ok)
	}
	if _, ok := f.Uint("i8"); ok {
		t.Error("Uint of a negative int8 should fail")
	}
	if v, ok := f.Int("i64"); !ok || v != math.MinInt64 {
		t.Error("Int(i64)", v, ok)
	}
	if _, ok := f.Int("u64"); ok {
		t.Error("Int of MaxUint64 should fail")
	}
	if v, ok := f.Float("u32"); !ok || v != 4e9 {
		t.Error("Float(u32)", v, ok)
	}
	if v, ok := f.Bool("b.t"); !ok || !v {
		t.Error("Bool", v, ok)
	}
	if _, ok := f.String("u8"); ok {
		t.Error("String of a uint8 should fail")
	}
	if v, ok := f.Int32s("a.u8"); !ok || !reflect.DeepEqual(v, []int32{1, 2, 255}) {
		t.Error("Int32s(a.u8)", v, ok)
	}
	if _, ok := f.Int32s("a.u32"); !ok {
		t.Error("Int32s(a.u32) should convert 7")
	}
	if _, ok := f.Int32s("a.u64"); ok {
		t.Error("Int32s of 2^63 should fail")
	}
	if v, ok := f.Float32s("a.i32"); !ok || !reflect.DeepEqual(v, []float32{-5, 5}) {
		t.Error("Float32s(a.i32)", v, ok)
	}
	if v, ok := f.Strings("a.empty"); !ok || len(v) != 0 {
		t.Error("Strings(a.empty)", v, ok)
	}
	nv, _ := f.Lookup("a.nested")
	if nv.Len() != 3 || nv.Index(2).Index(0).Len() != 1 {
		t.Errorf("nested array: %v", nv)
	}
	if _, ok := f.Lookup("missing"); ok {
		t.Error("missing key found")
	}
}

func TestQuantizeMatchesLlamaQuantize(t *testing.T) {
	f, err := Open(testenv.Path(t, "quant-vectors/quants.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src32, _ := f.Tensor("F32")
	src := make([]float32, src32.NumElements())
	if err := src32.Dequantize(src); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []Type{F32, F16, BF16, Q8_0} {
		got, err := Quantize(typ, src)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := f.Tensor(typ.String())
		if string(got) != string(want.Data) {
			n := 0
			for i := range got {
				if got[i] != want.Data[i] {
					n++
				}
			}
			t.Errorf("%s: %d of %d bytes differ from llama-quantize", typ, n, len(got))
		}
	}
	if _, err := Quantize(Q4_K, src); !errors.Is(err, ErrUnsupportedType) {
		t.Errorf("Quantize(Q4_K): %v", err)
	}
}

func TestWriteFileRejects(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.gguf")
	good := testTensors()
	cases := map[string]struct {
		fn   func() error
		want error
	}{
		"dup key":       {func() error { return WriteFile(p, []KV{Bool("a", true), Bool("a", false)}, nil, 0) }, ErrInvalidWrite},
		"dup tensor":    {func() error { return WriteFile(p, nil, []WriteTensor{good[0], good[0]}, 0) }, ErrInvalidWrite},
		"bad align":     {func() error { return WriteFile(p, nil, nil, 48) }, ErrInvalidWrite},
		"short data":    {func() error { g := good[0]; g.Data = g.Data[1:]; return WriteFile(p, nil, []WriteTensor{g}, 0) }, ErrSize},
		"block misfit":  {func() error { g := good[3]; g.Shape = []uint64{48}; return WriteFile(p, nil, []WriteTensor{g}, 0) }, ErrCorrupt},
		"no dims":       {func() error { g := good[0]; g.Shape = nil; return WriteFile(p, nil, []WriteTensor{g}, 0) }, ErrInvalidWrite},
		"invalid value": {func() error { return WriteFile(p, []KV{{Key: "z"}}, nil, 0) }, ErrInvalidWrite},
		"nested scalar": {func() error { return WriteFile(p, []KV{Array("n", Uint8("", 1).Value)}, nil, 0) }, ErrInvalidWrite},
	}
	for name, c := range cases {
		if err := c.fn(); !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want one wrapping %v", name, err, c.want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed writes left %d files", len(ents))
	}
}

func TestSplit(t *testing.T) {
	dir := t.TempDir()
	kv := allValueKVs()
	var tensors []WriteTensor
	for _, n := range []string{"blk.0.w", "blk.1.w", "blk.2.w", "blk.3.w", "blk.4.w", "out"} {
		wt := testTensors()[0]
		wt.Name = n
		tensors = append(tensors, wt)
	}
	for _, shards := range []int{2, 3} {
		prefix := filepath.Join(dir, "model"+string(rune('0'+shards)))
		paths, err := WriteSplit(prefix, kv, tensors, 64, shards)
		if err != nil {
			t.Fatal(err)
		}
		if len(paths) != shards || filepath.Base(paths[0]) != filepath.Base(prefix)+"-00001-of-0000"+string(rune('0'+shards))+".gguf" {
			t.Fatalf("paths %v", paths)
		}
		// Opening any shard opens the whole model.
		for _, p := range paths {
			f, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Shards) != shards || len(f.Tensors) != len(tensors) || f.Path != paths[0] {
				t.Fatalf("%d shards, %d tensors, path %s", len(f.Shards), len(f.Tensors), f.Path)
			}
			if f.Arch() != "test" || f.Alignment != 64 {
				t.Errorf("metadata of the first shard not used: arch %q align %d", f.Arch(), f.Alignment)
			}
			for i, ti := range f.Tensors {
				if ti.Name != tensors[i].Name || string(ti.Data) != string(tensors[i].Data) {
					t.Errorf("tensor %d: %s differs", i, ti.Name)
				}
			}
			if f.Tensors[len(f.Tensors)-1].Shard != shards-1 {
				t.Errorf("last tensor in shard %d", f.Tensors[len(f.Tensors)-1].Shard)
			}
			f.Close()
		}
		// A missing shard is a clear error.
		os.Remove(paths[shards-1])
		_, err = Open(paths[0])
		if !errors.Is(err, ErrMissingShard) || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("missing shard: %v", err)
		} else {
			t.Logf("missing shard: %v", err)
		}
	}
}
