package gguf

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// raw builds GGUF bytes field by field, for inputs the writer refuses to produce.
type raw struct{ b []byte }

func (r *raw) u32(v uint32) *raw   { r.b = binary.LittleEndian.AppendUint32(r.b, v); return r }
func (r *raw) u64(v uint64) *raw   { r.b = binary.LittleEndian.AppendUint64(r.b, v); return r }
func (r *raw) str(s string) *raw   { r.u64(uint64(len(s))); r.b = append(r.b, s...); return r }
func (r *raw) bytes(p []byte) *raw { r.b = append(r.b, p...); return r }
func (r *raw) pad(a int) *raw {
	for len(r.b)%a != 0 {
		r.b = append(r.b, 0)
	}
	return r
}

// header starts a v3 file with the given counts.
func header(nTensors, nKV uint64) *raw {
	r := &raw{}
	return r.u32(Magic).u32(3).u64(nTensors).u64(nKV)
}

// tinfo appends one tensor info.
func (r *raw) tinfo(name string, typ Type, off uint64, shape ...uint64) *raw {
	r.str(name).u32(uint32(len(shape)))
	for _, ne := range shape {
		r.u64(ne)
	}
	return r.u32(uint32(typ)).u64(off)
}

// oneTensor is a file with one F32 tensor of n elements at offset off and data of dataLen bytes.
func oneTensor(off uint64, n uint64, dataLen int) []byte {
	r := header(1, 1).str("general.architecture").u32(uint32(ValueString)).str("x").
		tinfo("blk.3.attn_q.weight", F32, off, n).pad(32)
	return r.bytes(make([]byte, dataLen)).b
}

func validFile(t testing.TB) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "v.gguf")
	if err := WriteFile(p, allValueKVs(), testTensors(), 0); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHostile(t *testing.T) {
	valid := validFile(t)
	nested := header(0, 1).str("deep").u32(uint32(ValueArray))
	for i := 0; i < 100; i++ {
		nested.u32(uint32(ValueArray)).u64(1)
	}
	nested.u32(uint32(ValueUint8)).u64(0)

	cases := []struct {
		name string
		data []byte
		want error
		msg  string // substring of the error message
	}{
		{"empty file", nil, ErrTruncated, "less than the 24-byte"},
		{"wrong magic", append([]byte("GGUG"), valid[4:]...), ErrBadMagic, `"GGUG"`},
		{"safetensors", append([]byte{8, 0, 0, 0, 0, 0, 0, 0}, `{"a":1}                 `...), ErrBadMagic, "not \"GGUF\""},
		{"version 1", (&raw{}).u32(Magic).u32(1).u64(0).u64(0).b, ErrVersion, "version 1"},
		{"version 4", (&raw{}).u32(Magic).u32(4).u64(0).u64(0).b, ErrVersion, "version 4"},
		{"big endian", (&raw{}).u32(Magic).u32(0x03000000).u64(0).u64(0).b, ErrVersion, "big-endian"},
		{"truncated header", valid[:20], ErrTruncated, ""},
		{"truncated metadata", valid[:100], ErrTruncated, ""},
		{"truncated tensor data", valid[:len(valid)-40], ErrTruncated, "data ends at byte"},
		{"offset past end", oneTensor(1<<40, 8, 64), ErrTruncated, "data ends at byte 1,099,511,627,"},
		{"offset+size overflow", oneTensor(1<<64-32, 8, 64), ErrTruncated, "beyond 2^64"},
		{"size past end", oneTensor(0, 1000, 64), ErrTruncated, "but file has"},
		{"2^60 tensors", header(1<<60, 0).b, ErrTruncated, "1,152,921,504,606,846,976 tensors"},
		{"2^60 kv", header(0, 1<<60).b, ErrTruncated, "metadata entries"},
		{"2^40-byte key", header(0, 1).u64(1 << 40).bytes(make([]byte, 64)).b, ErrTruncated, "length 1,099,511,627,776"},
		{"2^40-byte string", header(0, 1).str("k").u32(uint32(ValueString)).u64(1 << 40).bytes(make([]byte, 64)).b, ErrTruncated, `key "k"`},
		{"2^60 array", header(0, 1).str("k").u32(uint32(ValueArray)).u32(uint32(ValueUint32)).u64(1 << 60).b, ErrTruncated, "array of"},
		{"2^40 strings", header(0, 1).str("k").u32(uint32(ValueArray)).u32(uint32(ValueString)).u64(1 << 40).b, ErrTruncated, "array of"},
		{"2^58 nested", header(0, 1).str("k").u32(uint32(ValueArray)).u32(uint32(ValueArray)).u64(1 << 58).b, ErrTruncated, "array of"},
		{"deep nesting", nested.b, ErrCorrupt, "nested deeper"},
		{"unknown value type", header(0, 1).str("k").u32(13).u64(0).b, ErrCorrupt, "unknown value type 13"},
		{"unknown elem type", header(0, 1).str("k").u32(uint32(ValueArray)).u32(99).u64(0).b, ErrCorrupt, "element type 99"},
		{"duplicate key", header(0, 2).str("k").u32(uint32(ValueUint8)).bytes([]byte{1}).str("k").u32(uint32(ValueUint8)).bytes([]byte{1}).b, ErrCorrupt, "twice"},
		{"alignment 48", header(0, 1).str("general.alignment").u32(uint32(ValueUint32)).u32(48).b, ErrCorrupt, "power of two"},
		{"alignment 0", header(0, 1).str("general.alignment").u32(uint32(ValueUint32)).u32(0).b, ErrCorrupt, "power of two"},
		{"alignment 2^40", header(0, 1).str("general.alignment").u32(uint32(ValueUint64)).u64(1 << 40).b, ErrCorrupt, "power of two"},
		{"alignment string", header(0, 1).str("general.alignment").u32(uint32(ValueString)).str("32").b, ErrCorrupt, "positive integer"},
		{"misaligned data", oneTensor(8, 2, 64), ErrCorrupt, "not a multiple of the alignment"},
		{"shape not fitting block", header(1, 0).tinfo("w", Q8_0, 0, 48, 2).pad(32).bytes(make([]byte, 128)).b, ErrCorrupt, "not a multiple of the Q8_0 block size 32"},
		{"zero dims", header(1, 0).str("w").u32(0).u32(0).u64(0).pad(32).b, ErrCorrupt, "0 dimensions"},
		{"five dims", header(1, 0).tinfo("w", F32, 0, 1, 1, 1, 1, 1).pad(32).bytes(make([]byte, 32)).b, ErrCorrupt, "5 dimensions"},
		{"huge dim", header(1, 0).tinfo("w", F32, 0, 1<<63).pad(32).b, ErrCorrupt, "more than 2^63-1"},
		{"element overflow", header(1, 0).tinfo("w", F32, 0, 1<<32, 1<<32).pad(32).b, ErrCorrupt, "more than 2^63-1 elements"},
		{"byte overflow", header(1, 0).tinfo("w", F32, 0, 1<<62).pad(32).b, ErrCorrupt, "bytes"},
		{"unknown tensor type", header(1, 0).tinfo("w", 99, 0, 32).pad(32).bytes(make([]byte, 128)).b, ErrUnsupportedType, "unknown tensor type id 99"},
		{"duplicate tensor", header(2, 0).tinfo("w", F32, 0, 8).tinfo("w", F32, 32, 8).pad(32).bytes(make([]byte, 64)).b, ErrCorrupt, "tensor w appears twice"},
		{"overlap", header(2, 0).tinfo("a", F32, 0, 16).tinfo("b", F32, 32, 8).pad(32).bytes(make([]byte, 64)).b, ErrCorrupt, "overlap"},
		{"split count 0", header(0, 1).str(KeySplitCount).u32(uint32(ValueUint16)).bytes([]byte{0, 0}).b, ErrCorrupt, "split.count"},
		{"split name", header(0, 1).str(KeySplitCount).u32(uint32(ValueUint16)).bytes([]byte{2, 0}).b, ErrMissingShard, "does not follow"},
		{"split no too big", header(0, 2).str(KeySplitCount).u32(uint32(ValueUint16)).bytes([]byte{2, 0}).str(KeySplitNo).u32(uint32(ValueUint16)).bytes([]byte{5, 0}).b, ErrCorrupt, "split.no"},
	}
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			p := filepath.Join(dir, "hostile.gguf")
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			f, err := Open(p)
			runtime.ReadMemStats(&ms1)
			if err == nil {
				f.Close()
				t.Fatalf("no error")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %q does not wrap %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "hostile.gguf") || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q lacks the file name or %q", err, tc.msg)
			}
			if alloc := ms1.TotalAlloc - ms0.TotalAlloc; alloc > 1<<20 {
				t.Errorf("Open allocated %d bytes for a %d-byte file", alloc, len(tc.data))
			}
			t.Log(err)
		})
	}
}

func TestUnsupportedDequant(t *testing.T) {
	p := filepath.Join(t.TempDir(), "q8k.gguf")
	err := WriteFile(p, nil, []WriteTensor{{Name: "blk.0.ffn_up.weight", Type: Q8_K, Shape: []uint64{256, 2}, Data: make([]byte, 2*292)}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	ti := f.Tensors[0]
	err = ti.Dequantize(make([]float32, 512))
	if !errors.Is(err, ErrUnsupportedType) || !strings.Contains(err.Error(), "unsupported tensor type Q8_K in tensor blk.0.ffn_up.weight") {
		t.Errorf("got %v", err)
	}
	if err := Dequantize(Q4_0, make([]byte, 17), make([]float32, 32)); !errors.Is(err, ErrSize) {
		t.Error("short src accepted")
	}
	if err := Dequantize(Q4_0, make([]byte, 18), make([]float32, 31)); !errors.Is(err, ErrSize) {
		t.Error("partial block accepted")
	}
	f.Close()
	if err := ti.DequantizeRows(make([]float32, 0), 0, 0); err == nil {
		// zero rows is fine even after close; but reading rows must fail cleanly
	}
	w := filepath.Join(t.TempDir(), "f32.gguf")
	WriteFile(w, nil, testTensors(), 0)
	g, err := Open(w)
	if err != nil {
		t.Fatal(err)
	}
	tt := g.Tensors[0]
	g.Close()
	if err := tt.Dequantize(make([]float32, tt.NumElements())); !errors.Is(err, ErrClosed) {
		t.Error("Dequantize after Close succeeded")
	}
	if err := g.Close(); err != nil {
		t.Error("second Close:", err)
	}
}
