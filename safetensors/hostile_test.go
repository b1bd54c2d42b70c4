package safetensors

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rawFile builds a safetensors file from a literal header and data section.
func rawFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func withLen(n uint64, rest string) []byte {
	return append(binary.LittleEndian.AppendUint64(nil, n), rest...)
}

var hostileFiles = []struct {
	name     string
	file     []byte
	sentinel error
	want     string
}{
	{"empty", nil, ErrTruncated, "less than the 8-byte header length"},
	{"truncated length", []byte{1, 0, 0}, ErrTruncated, "file has 3 bytes"},
	{"header past EOF", withLen(100, `{}`), ErrTruncated, "header length 100 runs past the end of the 10-byte file"},
	{"huge header length", withLen(1<<62, `{}`), ErrCorrupt, "header length 4611686018427387904 exceeds"},
	{"max header length", withLen(^uint64(0), `{}`), ErrCorrupt, "exceeds the 100000000-byte limit"},
	{"not json", rawFile(`{"a":`, nil), ErrCorrupt, "not a JSON object"},
	{"json array", rawFile(`[1,2]`, nil), ErrCorrupt, "not an object"},
	{"trailing json", rawFile(`{} {}`, nil), ErrCorrupt, "trailing data"},
	{"trailing garbage", rawFile(`{}x`, nil), ErrCorrupt, "header JSON"},
	{"duplicate name", rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{1, 2}),
		ErrCorrupt, `lists "a" twice`},
	{"offsets past end", rawFile(`{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, make([]byte, 8)),
		ErrTruncated, `tensor "w": data_offsets [0, 16] run past the 8-byte data section`},
	{"offsets near 2^64", rawFile(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551615,0]}}`, nil),
		ErrCorrupt, "end before begin"},
	{"overlap", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12)),
		ErrCorrupt, `tensor "b": data_offsets [4, 12] overlap tensor "a" ending at 8`},
	{"same range", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)),
		ErrCorrupt, "overlap"},
	{"gap", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, make([]byte, 12)),
		ErrCorrupt, "leave a gap after offset 4"},
	{"trailing bytes", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 6)),
		ErrCorrupt, "tensors cover 4 bytes but the data section has 6"},
	{"wrong byte count", rawFile(`{"w":{"dtype":"F16","shape":[2,3],"data_offsets":[0,8]}}`, make([]byte, 8)),
		ErrCorrupt, `tensor "w": F16 shape [2 3] needs 12 bytes but data_offsets [0, 8] hold 8`},
	{"unknown dtype", rawFile(`{"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}`, make([]byte, 1)),
		ErrUnsupportedDType, `tensor "w": dtype "F8_E4M3"`},
	{"negative dim", rawFile(`{"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}`, nil),
		ErrCorrupt, "shape has negative value -1"},
	{"float dim", rawFile(`{"w":{"dtype":"U8","shape":[1.5],"data_offsets":[0,0]}}`, nil),
		ErrCorrupt, "shape has non-integer value 1.5"},
	{"string dim", rawFile(`{"w":{"dtype":"U8","shape":["1"],"data_offsets":[0,1]}}`, make([]byte, 1)),
		ErrCorrupt, "non-integer"},
	{"dim beyond 64 bits", rawFile(`{"w":{"dtype":"U8","shape":[99999999999999999999],"data_offsets":[0,0]}}`, nil),
		ErrCorrupt, "does not fit in 64 bits"},
	{"dim beyond int", rawFile(`{"w":{"dtype":"U8","shape":[18446744073709551615,0],"data_offsets":[0,0]}}`, nil),
		ErrCorrupt, "too large"},
	{"element overflow", rawFile(`{"w":{"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}`, nil),
		ErrCorrupt, "element count of shape [4294967296 4294967296 0] overflows"},
	{"byte overflow", rawFile(`{"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}}`, nil),
		ErrCorrupt, "byte size"},
	{"shape not array", rawFile(`{"w":{"dtype":"U8","shape":3,"data_offsets":[0,0]}}`, nil), ErrCorrupt, "shape is not an array"},
	{"shape null", rawFile(`{"w":{"dtype":"U8","shape":null,"data_offsets":[0,1]}}`, make([]byte, 1)), ErrCorrupt, "shape is not an array"},
	{"three offsets", rawFile(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}`, make([]byte, 1)), ErrCorrupt, "data_offsets has 3 numbers"},
	{"missing dtype", rawFile(`{"w":{"shape":[1],"data_offsets":[0,1]}}`, make([]byte, 1)), ErrCorrupt, `missing "dtype"`},
	{"extra key", rawFile(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}}`, make([]byte, 1)), ErrCorrupt, `unexpected key "x"`},
	{"dtype not string", rawFile(`{"w":{"dtype":4,"shape":[1],"data_offsets":[0,1]}}`, make([]byte, 1)), ErrCorrupt, "dtype is not a string"},
	{"entry not object", rawFile(`{"w":5}`, nil), ErrCorrupt, `tensor "w": entry is not a JSON object`},
	{"entry null", rawFile(`{"w":null}`, nil), ErrCorrupt, `missing`},
	{"metadata not strings", rawFile(`{"__metadata__":{"a":1}}`, nil), ErrCorrupt, "__metadata__ must map strings to strings"},
	{"deep nesting", rawFile(`{"w":`+strings.Repeat("[", 20000)+strings.Repeat("]", 20000)+`}`, nil), ErrCorrupt, "exceeded max depth"},
}

func TestHostileFiles(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range hostileFiles {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".safetensors")
			if err := os.WriteFile(p, tc.file, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := Open(p)
			if err == nil {
				f.Close()
				t.Fatal("Open: no error")
			}
			if !errors.Is(err, tc.sentinel) {
				t.Errorf("Open error %q does not wrap %v", err, tc.sentinel)
			}
			if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open error %q does not mention the file and %q", err, tc.want)
			}
			if _, err2 := Parse("mem", tc.file); err2 == nil || !errors.Is(err2, tc.sentinel) {
				t.Errorf("Parse: %v", err2)
			}
		})
	}
}

func TestOpenValidEdgeCases(t *testing.T) {
	cases := []struct {
		name string
		file []byte
		n    int
	}{
		{"no tensors", rawFile(`{}`, nil), 0},
		{"only metadata", rawFile(`{"__metadata__":{"format":"pt"}}    `, nil), 0},
		{"null metadata", rawFile(`{"__metadata__":null}`, nil), 0},
		{"zero-size tensors", rawFile(`{"a":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]},"b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"c":{"dtype":"BF16","shape":[0],"data_offsets":[2,2]}}`, []byte{1, 2}), 3},
		{"scalar", rawFile(`{"s":{"dtype":"I32","shape":[],"data_offsets":[0,4]}}`, []byte{7, 0, 0, 0}), 1},
		{"unsorted offsets", rawFile(`{"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{1, 2}), 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("mem", tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Tensors) != tc.n {
				t.Errorf("%d tensors, want %d", len(f.Tensors), tc.n)
			}
			for _, tt := range f.Tensors {
				if _, err := tt.Float32s(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	f, _ := Parse("mem", cases[4].file)
	if s, _ := f.Tensor("s"); s.NumElements() != 1 {
		t.Errorf("scalar has %d elements", s.NumElements())
	}
	if v, _ := f.Tensors[0].Float32s(); len(v) != 1 || v[0] != 7 {
		t.Errorf("scalar value %v", v)
	}
	if _, err := Open(t.TempDir()); err == nil {
		t.Error("Open of a folder succeeded")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "nope.safetensors")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open of a missing file: %v", err)
	}
}

// writeTestDir writes config.json plus files into a temp folder.
func writeTestDir(t *testing.T, config string, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	if config != "" {
		if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestHostileDirs(t *testing.T) {
	a := rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{1})
	ab := rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{1, 2})
	b := rawFile(`{"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{2})
	index := func(m string) []byte { return []byte(`{"metadata":{"total_size":2},"weight_map":{` + m + `}}`) }
	cases := []struct {
		name     string
		config   string
		files    map[string][]byte
		sentinel error
		want     string
	}{
		{"no config", "", map[string][]byte{SingleFile: a}, ErrConfig, "config.json"},
		{"bad config", `{"architectures":["BertModel"]}`, map[string][]byte{SingleFile: a}, ErrConfig, "hidden_size is missing"},
		{"config not json", `{{`, map[string][]byte{SingleFile: a}, ErrConfig, "not a JSON object"},
		{"no weights", tinyConfig, nil, ErrMissingShard, "has neither model.safetensors nor model.safetensors.index.json"},
		{"corrupt single", tinyConfig, map[string][]byte{SingleFile: a[:len(a)-1]}, ErrTruncated, "model.safetensors"},
		{"missing shard", tinyConfig, map[string][]byte{IndexFile: index(`"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"`),
			"model-00001-of-00002.safetensors": a}, ErrMissingShard, `shard model-00002-of-00002.safetensors (holding 1 tensors, e.g. "b") is missing`},
		{"tensor not in shard", tinyConfig, map[string][]byte{IndexFile: index(`"a":"s1.safetensors","c":"s1.safetensors"`),
			"s1.safetensors": a}, ErrMissingShard, `tensor "c" is listed in shard s1.safetensors but not found there`},
		{"duplicate across shards", tinyConfig, map[string][]byte{IndexFile: index(`"a":"s1.safetensors","b":"s2.safetensors"`),
			"s1.safetensors": ab, "s2.safetensors": b}, ErrCorrupt, `tensor "b" is in both`},
		{"path traversal", tinyConfig, map[string][]byte{IndexFile: index(`"a":"../s1.safetensors"`)}, ErrCorrupt, "not a plain file name"},
		{"absolute shard", tinyConfig, map[string][]byte{IndexFile: index(`"a":"/etc/passwd"`)}, ErrCorrupt, "not a plain file name"},
		{"index not json", tinyConfig, map[string][]byte{IndexFile: []byte(`{"weight_map":`)}, ErrCorrupt, "not a valid index"},
		{"index empty", tinyConfig, map[string][]byte{IndexFile: []byte(`{"weight_map":{}}`)}, ErrCorrupt, "weight_map is empty"},
		{"index wrong types", tinyConfig, map[string][]byte{IndexFile: []byte(`{"weight_map":{"a":1}}`)}, ErrCorrupt, "not a valid index"},
		{"corrupt shard", tinyConfig, map[string][]byte{IndexFile: index(`"a":"s1.safetensors"`), "s1.safetensors": withLen(1<<62, "{}")},
			ErrCorrupt, "s1.safetensors: header length"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTestDir(t, tc.config, tc.files)
			d, err := OpenDir(dir)
			if err == nil {
				d.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, tc.sentinel) {
				t.Errorf("error %q does not wrap %v", err, tc.sentinel)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
	// Both files: model.safetensors wins, the index is not read.
	dir := writeTestDir(t, tinyConfig, map[string][]byte{SingleFile: a, IndexFile: []byte("garbage")})
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Tensors) != 1 || d.Tensors[0].Name != "a" {
		t.Errorf("tensors %v", d.Tensors)
	}
	if err := d.Close(); err != nil {
		t.Error(err)
	}
	// Extra tensors in a shard that the index does not list are still loaded.
	dir = writeTestDir(t, tinyConfig, map[string][]byte{IndexFile: index(`"a":"s1.safetensors"`), "s1.safetensors": ab})
	if d, err = OpenDir(dir); err != nil || len(d.Tensors) != 2 {
		t.Fatalf("extra tensors: %v", err)
	}
	d.Close()
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	good := Tensor{Name: "a", DType: U8, Shape: []int{1}, Data: []byte{1}}
	cases := []struct {
		name    string
		tensors []Tensor
	}{
		{"dup", []Tensor{good, good}},
		{"empty name", []Tensor{{Name: "", DType: U8, Shape: []int{1}, Data: []byte{1}}}},
		{"metadata name", []Tensor{{Name: "__metadata__", DType: U8, Shape: []int{1}, Data: []byte{1}}}},
		{"short data", []Tensor{{Name: "x", DType: F32, Shape: []int{2}, Data: []byte{1}}}},
		{"bad dtype", []Tensor{{Name: "x", DType: "Q4", Shape: []int{1}, Data: []byte{1}}}},
		{"negative", []Tensor{{Name: "x", DType: U8, Shape: []int{-1}, Data: nil}}},
	}
	for _, tc := range cases {
		if err := WriteFile(filepath.Join(dir, "x.safetensors"), tc.tensors, nil); err == nil {
			t.Errorf("%s: WriteFile accepted", tc.name)
		}
		if err := WriteSharded(dir, tc.tensors, 10); err == nil {
			t.Errorf("%s: WriteSharded accepted", tc.name)
		}
	}
	if err := WriteSharded(dir, []Tensor{good}, 0); err == nil {
		t.Error("maxShardBytes 0 accepted")
	}
	if err := WriteFile(filepath.Join(dir, "missing", "x.safetensors"), []Tensor{good}, nil); err == nil {
		t.Error("write into a missing folder succeeded")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed writes left %d files", len(ents))
	}
}

// The Hugging Face cache stores snapshot files as symlinks into a blobs folder.
func TestOpenDirSymlinks(t *testing.T) {
	root := t.TempDir()
	blobs := filepath.Join(root, "blobs")
	snap := filepath.Join(root, "snapshots", "abc")
	for _, d := range []string{blobs, snap} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	in, want := sampleTensors(t)
	if err := WriteFile(filepath.Join(blobs, "w"), in, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(blobs, "c"), []byte(tinyConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, blob := range map[string]string{SingleFile: "w", ConfigFile: "c"} {
		if err := os.Symlink(filepath.Join("..", "..", "blobs", blob), filepath.Join(snap, name)); err != nil {
			t.Skip("no symlinks:", err)
		}
	}
	d, err := OpenDir(snap)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	checkTensors(t, d.Tensors, d.Tensor, in, want)
}

// The reference serialization from the upstream safetensors test suite.
func TestParseReferenceBytes(t *testing.T) {
	b := []byte("\x59\x00\x00\x00\x00\x00\x00\x00" +
		`{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]},"__metadata__":{"foo":"bar"}}` +
		"\x01\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00\xff\xff\xff\xff")
	f, err := Parse("ref", b)
	if err != nil {
		t.Fatal(err)
	}
	tt, ok := f.Tensor("test")
	if !ok || tt.DType != I32 || !slices.Equal(tt.Shape, []int{2, 2}) || f.Metadata["foo"] != "bar" || f.HeaderSize != 0x59 {
		t.Fatalf("parsed %+v", f)
	}
	if v, err := tt.Float32s(); err != nil || !slices.Equal(v, []float32{1, 2, 3, -1}) {
		t.Errorf("values %v, %v", v, err)
	}
}
