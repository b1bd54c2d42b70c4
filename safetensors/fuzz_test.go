package safetensors

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

func FuzzOpen(f *testing.F) {
	for _, tc := range hostileFiles {
		if len(tc.file) < 4096 { // the 40 KB deep-nesting case makes minimization crawl
			f.Add(tc.file)
		}
	}
	in, _ := sampleTensors(f)
	var buf bytes.Buffer
	if err := Encode(&buf, in, map[string]string{"format": "pt"}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]},"b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, []byte{1, 2}))
	f.Add(rawFile(`{"s":{"dtype":"I32","shape":[],"data_offsets":[0,4]},"__metadata__":{"x":"y"}}`, []byte{7, 0, 0, 0}))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Parse("fuzz", b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrUnsupportedDType) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		var total int
		for _, tt := range file.Tensors {
			if tt.NumElements()*tt.DType.Size() != len(tt.Data) {
				t.Fatalf("tensor %q: %d elements of %s but %d bytes", tt.Name, tt.NumElements(), tt.DType, len(tt.Data))
			}
			total += len(tt.Data)
			v, err := tt.Float32s()
			if err != nil || len(v) != tt.NumElements() {
				t.Fatalf("tensor %q: Float32s: %d values, %v", tt.Name, len(v), err)
			}
			if got, ok := file.Tensor(tt.Name); !ok || got.Name != tt.Name {
				t.Fatalf("lookup of %q failed", tt.Name)
			}
		}
		if total > len(b) {
			t.Fatalf("tensors hold %d bytes, file has %d", total, len(b))
		}
		// Re-encode and parse again: same tensors.
		var out bytes.Buffer
		if err := Encode(&out, file.Tensors, file.Metadata); err != nil {
			if file.Tensors != nil && slices.ContainsFunc(file.Tensors, func(t Tensor) bool { return t.Name == "" }) {
				return // empty names are readable but not writable
			}
			t.Fatalf("re-encode: %v", err)
		}
		again, err := Parse("again", out.Bytes())
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if len(again.Tensors) != len(file.Tensors) {
			t.Fatalf("re-parse: %d tensors, want %d", len(again.Tensors), len(file.Tensors))
		}
		for _, tt := range file.Tensors {
			g, ok := again.Tensor(tt.Name)
			if !ok || g.DType != tt.DType || !slices.Equal(g.Shape, tt.Shape) || !bytes.Equal(g.Data, tt.Data) {
				t.Fatalf("re-parse: tensor %q differs", tt.Name)
			}
		}
	})
}

// FuzzOpenHeader fuzzes the JSON header alone (the length prefix and the data section are built
// to match), so mutations reach the offset, shape and dtype checks more often than FuzzOpen's.
func FuzzOpenHeader(f *testing.F) {
	f.Add(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, uint16(8))
	f.Add(`{"a":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]},"b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, uint16(2))
	f.Add(`{"__metadata__":{"format":"pt"},"s":{"dtype":"BF16","shape":[],"data_offsets":[0,2]},"t":{"dtype":"I8","shape":[1,1],"data_offsets":[2,3]}}`, uint16(3))
	f.Add(`{"a":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]},"b":{"dtype":"F64","shape":[1],"data_offsets":[12,20]}}`, uint16(20))
	f.Fuzz(func(t *testing.T, header string, dataLen uint16) {
		b := rawFile(header, make([]byte, dataLen))
		file, err := Parse("fuzz", b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrUnsupportedDType) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		covered := 0
		for _, tt := range file.Tensors {
			if tt.NumElements()*tt.DType.Size() != len(tt.Data) {
				t.Fatalf("tensor %q: %d elements of %s but %d bytes", tt.Name, tt.NumElements(), tt.DType, len(tt.Data))
			}
			covered += len(tt.Data)
			if _, err := tt.Float32s(); err != nil {
				t.Fatal(err)
			}
		}
		if covered != int(dataLen) {
			t.Fatalf("tensors cover %d of %d data bytes", covered, dataLen)
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(qwen2Config))
	f.Add([]byte(llama32Config))
	f.Add([]byte(mistralConfig))
	f.Add([]byte(tinyConfig))
	f.Add([]byte(`{"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,
"num_attention_heads":4,"vocab_size":100,"dtype":"float16","rope_parameters":{"rope_type":"linear","factor":2.0,"rope_theta":50000}}`))
	f.Add([]byte(`{"model_type":"qwen2","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,
"vocab_size":100,"use_sliding_window":true,"sliding_window":16,"eos_token_id":[1,2],"bos_token_id":null}`))
	// Short valid configs mutate into more valid ones than the long real ones do.
	f.Add([]byte(`{"model_type":"llama","hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":4}`))
	f.Add([]byte(`{"model_type":"mistral","hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":4,"sliding_window":null}`))
	f.Add([]byte(`{"model_type":"llama","hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":4,` +
		`"rope_scaling":{"rope_type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":64}}`))
	f.Add([]byte(`{"model_type":"qwen2","hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"head_dim":4,"vocab_size":4,"eos_token_id":[1,2]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error without ErrConfig: %v", err)
			}
			return
		}
		for _, d := range []int{c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, c.NumAttentionHeads,
			c.NumKeyValueHeads, c.HeadDim, c.VocabSize, max(c.MaxPositionEmbeddings, 1)} {
			if d <= 0 || d > maxPositions {
				t.Fatalf("dimension %d out of range in %+v", d, c)
			}
		}
		if c.NumAttentionHeads%c.NumKeyValueHeads != 0 || c.HeadDim%2 != 0 {
			t.Fatalf("bad head layout %+v", c)
		}
		if !(c.RMSNormEps >= 0 && c.RMSNormEps < 1) || !(c.RopeTheta > 0) || c.MaxWindowLayers < 0 {
			t.Fatalf("bad config %+v", c)
		}
		if rs := c.RopeScaling; rs != nil && rs.Type == "llama3" && !(rs.HighFreqFactor > rs.LowFreqFactor) {
			t.Fatalf("bad llama3 scaling %+v", rs)
		}
		if c.SlidingWindow < 0 {
			t.Fatalf("bad sliding window %+v", c)
		}
	})
}
