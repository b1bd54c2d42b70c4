package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"github.com/qsparse/qsparse/internal/atomicfile"
	"math"
	"path/filepath"
)

// WriteTensor is one tensor to write. Data holds exactly the tensor's bytes in its type's layout.
type WriteTensor struct {
	Name  string
	Type  Type
	Shape []uint64 // ne: innermost (columns) first
	Data  []byte
}

// WriteFile writes a GGUF v3 file holding kv (in order) and tensors (in order), each tensor's
// data aligned to alignment (0 means general.alignment from kv, else DefaultAlignment). A
// general.alignment key is added when the alignment is not the default. The file is written to
// a temporary file in the same directory, synced, and renamed over path.
func WriteFile(path string, kv []KV, tensors []WriteTensor, alignment uint64) error {
	kv, alignment, err := checkWrite(kv, tensors, alignment)
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return writeAtomic(path, func(w *bufio.Writer) error { return encode(w, kv, tensors, alignment) })
}

func checkWrite(kv []KV, tensors []WriteTensor, alignment uint64) ([]KV, uint64, error) {
	keys := make(map[string]bool, len(kv))
	var kvAlign uint64
	for _, e := range kv {
		if keys[e.Key] {
			return nil, 0, fmt.Errorf("key %q given twice: %w", e.Key, ErrInvalidWrite)
		}
		keys[e.Key] = true
		if err := checkValue(e.Value, 0); err != nil {
			return nil, 0, fmt.Errorf("key %q: %w", e.Key, err)
		}
		if e.Key == "general.alignment" {
			a, ok := e.Value.Uint()
			if !ok || e.Value.Type() != ValueUint32 {
				return nil, 0, fmt.Errorf("general.alignment must be a uint32, got %s %v: %w", e.Value.Type(), e.Value, ErrInvalidWrite)
			}
			kvAlign = a
		}
	}
	if alignment == 0 {
		alignment = kvAlign
		if alignment == 0 {
			alignment = DefaultAlignment
		}
	}
	if alignment&(alignment-1) != 0 || alignment > MaxAlignment {
		return nil, 0, fmt.Errorf("alignment %d is not a power of two up to %d: %w", alignment, MaxAlignment, ErrInvalidWrite)
	}
	if kvAlign != 0 && kvAlign != alignment {
		return nil, 0, fmt.Errorf("alignment %d differs from general.alignment %d: %w", alignment, kvAlign, ErrInvalidWrite)
	}
	if kvAlign == 0 && alignment != DefaultAlignment {
		kv = append(append([]KV(nil), kv...), Uint32("general.alignment", uint32(alignment)))
	}
	names := make(map[string]bool, len(tensors))
	for _, t := range tensors {
		if names[t.Name] {
			return nil, 0, fmt.Errorf("tensor %s given twice: %w", t.Name, ErrInvalidWrite)
		}
		names[t.Name] = true
		if len(t.Shape) < 1 || len(t.Shape) > MaxDims {
			return nil, 0, fmt.Errorf("tensor %s has %d dimensions; GGUF allows 1 to %d: %w", t.Name, len(t.Shape), MaxDims, ErrInvalidWrite)
		}
		if !t.Type.Known() {
			return nil, 0, fmt.Errorf("tensor %s: unknown type %s: %w", t.Name, t.Type, ErrUnsupportedType)
		}
		rb, err := t.Type.RowBytes(t.Shape[0])
		if err != nil {
			return nil, 0, fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		n := rb
		for _, ne := range t.Shape[1:] {
			if ne != 0 && n > math.MaxInt64/ne {
				return nil, 0, fmt.Errorf("tensor %s: shape %v is too large: %w", t.Name, t.Shape, ErrInvalidWrite)
			}
			n *= ne
		}
		if uint64(len(t.Data)) != n {
			return nil, 0, fmt.Errorf("tensor %s: %s %v needs %d bytes, Data has %d: %w", t.Name, t.Type, t.Shape, n, len(t.Data), ErrSize)
		}
	}
	return kv, alignment, nil
}

func checkValue(v Value, depth int) error {
	if !v.Valid() || !v.Type().valid() {
		return fmt.Errorf("invalid value: %w", ErrInvalidWrite)
	}
	if !v.IsArray() {
		return nil
	}
	if depth >= MaxArrayDepth {
		return fmt.Errorf("arrays nested deeper than %d levels: %w", MaxArrayDepth, ErrInvalidWrite)
	}
	if a, ok := v.arr.([]Value); ok {
		for i, e := range a {
			if !e.IsArray() {
				return fmt.Errorf("element %d of an array of arrays is a %s: %w", i, e.Type(), ErrInvalidWrite)
			}
			if err := checkValue(e, depth+1); err != nil {
				return fmt.Errorf("element %d: %w", i, err)
			}
		}
	}
	return nil
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) / a * a }

func encode(w *bufio.Writer, kv []KV, tensors []WriteTensor, alignment uint64) error {
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, Magic)
	b = binary.LittleEndian.AppendUint32(b, 3)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(tensors)))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(kv)))
	for _, e := range kv {
		b = appendString(b, e.Key)
		b = binary.LittleEndian.AppendUint32(b, uint32(e.Value.Type()))
		b = appendValue(b, e.Value)
	}
	off := uint64(0)
	for _, t := range tensors {
		b = appendString(b, t.Name)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(t.Shape)))
		for _, ne := range t.Shape {
			b = binary.LittleEndian.AppendUint64(b, ne)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(t.Type))
		b = binary.LittleEndian.AppendUint64(b, off)
		off = alignUp(off+uint64(len(t.Data)), alignment)
	}
	b = append(b, make([]byte, alignUp(uint64(len(b)), alignment)-uint64(len(b)))...)
	if _, err := w.Write(b); err != nil {
		return err
	}
	zeros := make([]byte, alignment)
	for _, t := range tensors {
		if _, err := w.Write(t.Data); err != nil {
			return err
		}
		n := uint64(len(t.Data))
		if _, err := w.Write(zeros[:alignUp(n, alignment)-n]); err != nil {
			return err
		}
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

func appendScalar(b []byte, t ValueType, num uint64) []byte {
	switch t.scalarSize() {
	case 1:
		return append(b, byte(num))
	case 2:
		return binary.LittleEndian.AppendUint16(b, uint16(num))
	case 4:
		return binary.LittleEndian.AppendUint32(b, uint32(num))
	}
	return binary.LittleEndian.AppendUint64(b, num)
}

func appendValue(b []byte, v Value) []byte {
	switch v.typ {
	case ValueString:
		return appendString(b, v.str)
	case ValueArray:
	default:
		return appendScalar(b, v.typ, v.num)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(v.elem))
	b = binary.LittleEndian.AppendUint64(b, uint64(v.Len()))
	switch a := v.arr.(type) {
	case []uint8:
		return append(b, a...)
	case []string:
		for _, s := range a {
			b = appendString(b, s)
		}
		return b
	case []Value:
		for _, e := range a {
			b = appendValue(b, e)
		}
		return b
	}
	for i, n := 0, v.Len(); i < n; i++ {
		e := v.Index(i)
		b = appendScalar(b, e.typ, e.num)
	}
	return b
}

// writeAtomic writes path atomically (internal/atomicfile); fill's errors name path.
func writeAtomic(path string, fill func(*bufio.Writer) error) error {
	return atomicfile.WriteBuffered(path, func(w *bufio.Writer) error {
		if err := fill(w); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	})
}

// WriteSplit writes tensors as a split model of shards files named SplitPath(prefix, i, shards),
// as llama.cpp's gguf-split does: the first shard holds kv, every shard holds split.no,
// split.count and split.tensors.count, and tensors are spread in order so shards hold about
// the same number of bytes. It returns the paths written.
func WriteSplit(prefix string, kv []KV, tensors []WriteTensor, alignment uint64, shards int) ([]string, error) {
	if shards < 1 || shards > MaxSplitShards || shards > max(1, len(tensors)) {
		return nil, fmt.Errorf("write split %s: %d shards for %d tensors: %w", prefix, shards, len(tensors), ErrInvalidWrite)
	}
	for _, e := range kv {
		if e.Key == KeySplitNo || e.Key == KeySplitCount || e.Key == KeySplitTensorsCount {
			return nil, fmt.Errorf("write split %s: kv must not contain %s: %w", prefix, e.Key, ErrInvalidWrite)
		}
	}
	var total uint64
	for _, t := range tensors {
		total += uint64(len(t.Data))
	}
	// Cut points: shard i ends once cumulative bytes pass (i+1)/shards of the total, keeping at
	// least one tensor per shard.
	parts := make([][]WriteTensor, shards)
	var acc uint64
	start := 0
	for i := 0; i < shards && len(tensors) > 0; i++ {
		end := start + 1
		acc += uint64(len(tensors[start].Data))
		for end < len(tensors)-(shards-1-i) && (i == shards-1 || acc+uint64(len(tensors[end].Data))/2 <= total*uint64(i+1)/uint64(shards)) {
			acc += uint64(len(tensors[end].Data))
			end++
		}
		if i == shards-1 {
			end = len(tensors)
		}
		parts[i] = tensors[start:end]
		start = end
	}
	var paths []string
	for i, part := range parts {
		var skv []KV
		if i == 0 {
			skv = append(skv, kv...)
		} else {
			for _, e := range kv {
				if e.Key == "general.alignment" {
					skv = append(skv, e)
				}
			}
		}
		skv = append(skv, Uint16(KeySplitNo, uint16(i)), Uint16(KeySplitCount, uint16(shards)),
			Int32(KeySplitTensorsCount, int32(len(tensors))))
		p := SplitPath(prefix, i, shards)
		if err := WriteFile(p, skv, part, alignment); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}
