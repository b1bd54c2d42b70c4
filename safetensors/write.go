package safetensors

import (
	"encoding/json"
	"fmt"
	"github.com/qsparse/qsparse/internal/atomicfile"
	"io"
	"os"
	"path/filepath"

	hf "github.com/nlpodyssey/safetensors"
)

// view adapts a Tensor to the library's View interface.
type view struct {
	dt    hf.DType
	shape []uint64
	data  []byte
}

func (v view) DType() hf.DType { return v.dt }
func (v view) Shape() []uint64 { return v.shape }
func (v view) Data() []byte    { return v.data }
func (v view) DataLen() uint64 { return uint64(len(v.data)) }

// views checks the tensors (known dtype, shape matching the data, unique non-empty names) and
// converts them for the library's serializer.
func views(tensors []Tensor) (map[string]view, error) {
	m := make(map[string]view, len(tensors))
	for _, t := range tensors {
		if t.Name == "" || t.Name == "__metadata__" {
			return nil, fmt.Errorf("safetensors: invalid tensor name %q", t.Name)
		}
		if _, dup := m[t.Name]; dup {
			return nil, fmt.Errorf("safetensors: tensor %q given twice", t.Name)
		}
		if err := t.check(); err != nil {
			return nil, fmt.Errorf("safetensors: %w", err)
		}
		dt, err := hf.ParseDType(string(t.DType))
		if err != nil {
			return nil, fmt.Errorf("safetensors: tensor %q: %v: %w", t.Name, err, ErrUnsupportedDType)
		}
		shape := make([]uint64, len(t.Shape)) // never nil: a scalar is written as "shape":[]
		for i, d := range t.Shape {
			shape[i] = uint64(d)
		}
		m[t.Name] = view{dt: dt, shape: shape, data: t.Data}
	}
	return m, nil
}

// WriteFile writes tensors to a .safetensors file the way Hugging Face does (header padded with
// spaces to a multiple of 8 bytes; data ordered by dtype size, then name). metadata becomes the
// header's "__metadata__" (omitted when empty). The write is atomic: a temporary file in the
// same folder is written, fsynced and renamed over path.
func WriteFile(path string, tensors []Tensor, metadata map[string]string) error {
	m, err := views(tensors)
	if err != nil {
		return fmt.Errorf("%w (writing %s)", err, path)
	}
	return writeAtomic(path, func(w io.Writer) error { return serialize(m, metadata, w) })
}

// Encode writes tensors in the safetensors format to w (see WriteFile; not atomic).
func Encode(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	m, err := views(tensors)
	if err != nil {
		return err
	}
	if err := serialize(m, metadata, w); err != nil {
		return fmt.Errorf("safetensors: encode: %w", err)
	}
	return nil
}

func serialize(m map[string]view, metadata map[string]string, w io.Writer) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("serializer panic: %v", r)
		}
	}()
	return hf.SerializeToWriter(m, metadata, w)
}

// WriteSharded writes tensors to dir as model-00001-of-0000N.safetensors ... (each at most
// maxShardBytes of tensor data, except a single tensor larger than that, which gets a shard of
// its own), in the order given, plus model.safetensors.index.json
// ({"metadata":{"total_size":...},"weight_map":{name: shard}}), which is written last. Every
// file is written atomically. The folder is created if needed; other files in it are left alone.
func WriteSharded(dir string, tensors []Tensor, maxShardBytes int64) error {
	if maxShardBytes <= 0 {
		return fmt.Errorf("safetensors: WriteSharded: maxShardBytes %d must be positive", maxShardBytes)
	}
	if len(tensors) == 0 {
		return fmt.Errorf("safetensors: WriteSharded: no tensors")
	}
	if _, err := views(tensors); err != nil {
		return err
	}
	var groups [][]Tensor
	var cur []Tensor
	var curBytes, total int64
	for _, t := range tensors {
		n := t.Bytes()
		if len(cur) > 0 && curBytes+n > maxShardBytes {
			groups = append(groups, cur)
			cur, curBytes = nil, 0
		}
		cur = append(cur, t)
		curBytes += n
		total += n
	}
	groups = append(groups, cur)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("safetensors: WriteSharded: %w", err)
	}
	weightMap := make(map[string]string, len(tensors))
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(groups))
		if err := WriteFile(filepath.Join(dir, names[i]), g, map[string]string{"format": "pt"}); err != nil {
			return err
		}
		for _, t := range g {
			weightMap[t.Name] = names[i]
		}
	}
	ix := struct {
		Metadata  map[string]int64  `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}{map[string]int64{"total_size": total}, weightMap}
	b, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return fmt.Errorf("safetensors: WriteSharded: %w", err)
	}
	b = append(b, '\n')
	err = writeAtomic(filepath.Join(dir, IndexFile), func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	return nil
}

// writeAtomic writes path atomically (internal/atomicfile); errors name the package and path.
func writeAtomic(path string, write func(io.Writer) error) error {
	if err := atomicfile.Write(path, write); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	return nil
}
