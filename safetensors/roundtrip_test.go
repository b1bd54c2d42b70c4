package safetensors

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func testValues(n int, seed float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(math.Sin(float64(i)*0.37+float64(seed))) * (1 + float32(i%7))
	}
	return v
}

// rounded returns what values become after a round trip through dtype.
func rounded(t testing.TB, dtype DType, values []float32) []float32 {
	t.Helper()
	tt, err := FromFloat32("x", dtype, []int{len(values)}, values)
	if err != nil {
		t.Fatal(err)
	}
	out, err := tt.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sampleTensors(t testing.TB) ([]Tensor, map[string][]float32) {
	t.Helper()
	want := map[string][]float32{}
	var ts []Tensor
	add := func(name string, dt DType, shape []int) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := testValues(n, float32(len(ts)))
		tt, err := FromFloat32(name, dt, shape, v)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tt)
		want[name] = rounded(t, dt, v)
	}
	add("token_embd.weight", BF16, []int{16, 8})
	add("blk.0.attn_q.weight", F16, []int{8, 8})
	add("blk.0.attn_norm.weight", F32, []int{8})
	add("blk.0.attn_q.bias", F32, []int{8})
	add("blk.0.ffn_up.weight", F16, []int{12, 8})
	add("blk.0.ffn_down.weight", BF16, []int{8, 12})
	add("output_norm.weight", F32, []int{8})
	add("scalar", F32, []int{})
	add("empty", F16, []int{0, 8})
	ts = append(ts, Tensor{Name: "packed", DType: U8, Shape: []int{2, 3}, Data: []byte{0, 1, 2, 253, 254, 255}})
	want["packed"] = []float32{0, 1, 2, 253, 254, 255}
	return ts, want
}

func checkTensors(t *testing.T, got []Tensor, lookup func(string) (Tensor, bool), in []Tensor, want map[string][]float32) {
	t.Helper()
	if len(got) != len(in) {
		t.Fatalf("got %d tensors, want %d", len(got), len(in))
	}
	for _, src := range in {
		g, ok := lookup(src.Name)
		if !ok {
			t.Fatalf("tensor %q missing", src.Name)
		}
		if g.DType != src.DType || !slices.Equal(g.Shape, src.Shape) || string(g.Data) != string(src.Data) {
			t.Errorf("tensor %q: got %s %v (%d bytes), want %s %v (%d bytes)", src.Name,
				g.DType, g.Shape, len(g.Data), src.DType, src.Shape, len(src.Data))
		}
		f, err := g.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(f, want[src.Name]) {
			t.Errorf("tensor %q: values differ", src.Name)
		}
	}
}

func TestRoundTripFile(t *testing.T) {
	in, want := sampleTensors(t)
	p := filepath.Join(t.TempDir(), "x.safetensors")
	if err := WriteFile(p, in, map[string]string{"format": "pt", "k": "v"}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	n := int(raw[0]) | int(raw[1])<<8
	if n%8 != 0 || raw[8] != '{' {
		t.Errorf("header length %d not 8-aligned or not an object", n)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Metadata["format"] != "pt" || f.Metadata["k"] != "v" {
		t.Errorf("metadata %v", f.Metadata)
	}
	checkTensors(t, f.Tensors, f.Tensor, in, want)
	// The temporary file is gone.
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Errorf("folder holds %d entries, want 1", len(ents))
	}
}

const tinyConfig = `{"architectures":["LlamaForCausalLM"],"hidden_size":8,"intermediate_size":12,
"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"vocab_size":16,
"rms_norm_eps":1e-5,"tie_word_embeddings":true}`

func TestRoundTripDir(t *testing.T) {
	in, want := sampleTensors(t)
	for _, tc := range []struct {
		name   string
		max    int64
		shards int
	}{{"one", 1 << 30, 1}, {"many", 300, 0}, {"each", 1, len(in)}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(tinyConfig), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := WriteSharded(dir, in, tc.max); err != nil {
				t.Fatal(err)
			}
			d, err := OpenDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if tc.shards > 0 && len(d.Files) != tc.shards {
				t.Errorf("%d shards, want %d", len(d.Files), tc.shards)
			}
			if tc.shards == 0 && len(d.Files) < 2 {
				t.Errorf("%d shards, want several", len(d.Files))
			}
			if !slices.IsSortedFunc(d.Tensors, func(a, b Tensor) int {
				if a.Name < b.Name {
					return -1
				}
				return 1
			}) {
				t.Error("Dir.Tensors not sorted by name")
			}
			checkTensors(t, d.Tensors, d.Tensor, in, want)
			if d.Config.HiddenSize != 8 || !d.Config.TieWordEmbeddings {
				t.Errorf("config %+v", d.Config)
			}
			ix, err := ReadIndex(filepath.Join(dir, IndexFile))
			if err != nil {
				t.Fatal(err)
			}
			var total int64
			for _, tt := range in {
				total += tt.Bytes()
			}
			if ts, _ := ix.Metadata["total_size"].(float64); ts != float64(total) {
				t.Errorf("total_size %v, want %d", ix.Metadata["total_size"], total)
			}
		})
	}
}

func TestFloat32Conversions(t *testing.T) {
	cases := []struct {
		v        float32
		f16, b16 uint16
	}{
		{0, 0, 0},
		{1, 0x3c00, 0x3f80},
		{-2, 0xc000, 0xc000},
		{65504, 0x7bff, 0x4780},
		{1e6, 0x7c00, 0x4974},
		{float32(math.Inf(-1)), 0xfc00, 0xff80},
		{1 + 1.0/2048, 0x3c00, 0x3f80},                     // f16 tie -> even
		{1 + 3.0/2048, 0x3c02, 0x3f80},                     // f16 tie -> even (up)
		{math.Float32frombits(0x3f808000), 0x3c04, 0x3f80}, // bf16 tie -> even (down)
		{math.Float32frombits(0x3f818000), 0x3c0c, 0x3f82}, // bf16 tie -> even (up)
		{math.Float32frombits(0x3f80c000), 0x3c06, 0x3f81},
	}
	for _, c := range cases {
		if g := F16Bits(c.v); g != c.f16 {
			t.Errorf("F16Bits(%g) = %#04x, want %#04x", c.v, g, c.f16)
		}
		if g := BF16Bits(c.v); g != c.b16 {
			t.Errorf("BF16Bits(%g) = %#04x, want %#04x", c.v, g, c.b16)
		}
	}
	nan := float32(math.NaN())
	for _, dt := range []DType{F32, F16, BF16} {
		out := rounded(t, dt, []float32{nan, 0.5})
		if !math.IsNaN(float64(out[0])) || out[1] != 0.5 {
			t.Errorf("%s: NaN/0.5 became %v", dt, out)
		}
	}
	ints := []struct {
		dt   DType
		data []byte
		want []float32
	}{
		{I8, []byte{0xff, 0x7f, 0x80}, []float32{-1, 127, -128}},
		{U8, []byte{0xff, 3}, []float32{255, 3}},
		{I32, []byte{0xfe, 0xff, 0xff, 0xff, 5, 0, 0, 0}, []float32{-2, 5}},
		{BOOL, []byte{0, 1}, []float32{0, 1}},
		{I16, []byte{0xff, 0xff}, []float32{-1}},
		{F64, []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f}, []float32{1}},
	}
	for _, c := range ints {
		tt := Tensor{Name: "i", DType: c.dt, Shape: []int{len(c.want)}, Data: c.data}
		got, err := tt.Float32s()
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, %v; want %v", c.dt, got, err, c.want)
		}
	}
	bad := Tensor{Name: "b", DType: F32, Shape: []int{3}, Data: make([]byte, 8)}
	if err := bad.Float32(make([]float32, 3)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short data: %v", err)
	}
	ok := Tensor{Name: "o", DType: F32, Shape: []int{2}, Data: make([]byte, 8)}
	if err := ok.Float32(make([]float32, 3)); err == nil {
		t.Error("wrong dst length accepted")
	}
	if _, err := FromFloat32("x", I8, []int{1}, []float32{1}); !errors.Is(err, ErrUnsupportedDType) {
		t.Errorf("FromFloat32 I8: %v", err)
	}
}
