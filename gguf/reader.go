package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/qsparse/qsparse/internal/pages"
)

// Sentinel errors. Every error returned by Open (and by the decoders and writers) wraps one of
// them (test with errors.Is);
// the message names the file, the key or tensor, and the numbers involved.
var (
	ErrBadMagic        = errors.New("not a GGUF file (bad magic)")
	ErrVersion         = errors.New("unsupported GGUF version")
	ErrTruncated       = errors.New("file truncated or corrupt")
	ErrUnsupportedType = errors.New("unsupported type")
	ErrCorrupt         = errors.New("corrupt GGUF file")
	ErrMissingShard    = errors.New("split shard missing")
	// ErrSize: a buffer passed to Dequantize, DequantizeRows, Quantize or WriteFile does not have
	// the length the tensor or the rows asked for need.
	ErrSize = errors.New("size mismatch")
	// ErrClosed: the tensor's file has been closed.
	ErrClosed = errors.New("GGUF file closed")
	// ErrInvalidWrite: WriteFile / WriteSplit were given keys, values, tensors or an alignment
	// that a GGUF file cannot hold (duplicates, bad shapes, nesting too deep).
	ErrInvalidWrite = errors.New("invalid GGUF write request")
)

const (
	// Magic is the first four bytes of a GGUF file, "GGUF", read as a little-endian uint32.
	Magic = 0x46554747
	// DefaultAlignment is the data alignment used when general.alignment is absent.
	DefaultAlignment = 32
	// MaxDims is the largest number of tensor dimensions (GGML_MAX_DIMS).
	MaxDims = 4
	// MaxArrayDepth bounds the nesting of arrays of arrays in metadata.
	MaxArrayDepth = 8
	// MaxAlignment bounds general.alignment.
	MaxAlignment = 1 << 30

	headerBytes = 4 + 4 + 8 + 8
	minKVBytes  = 8 + 4 + 1         // empty key, type, 1-byte value
	minTIBytes  = 8 + 4 + 8 + 4 + 8 // empty name, n_dims, one dim, type, offset
)

// TensorInfo describes one tensor. Data is a read-only view of the memory-mapped file (exactly
// the tensor's bytes); it is valid until File.Close and must not be written to.
type TensorInfo struct {
	Name   string
	Type   Type
	Shape  []uint64 // ne: innermost (columns) first
	Offset uint64   // offset of the data inside its shard's data section
	Data   []byte
	Shard  int // index into File.Shards

	nelem uint64
}

// NumElements returns the number of elements (product of Shape).
func (t *TensorInfo) NumElements() uint64 { return t.nelem }

// Cols returns Shape[0], the length of a row.
func (t *TensorInfo) Cols() uint64 { return t.Shape[0] }

// Rows returns the number of rows: NumElements / Shape[0] (0 for an empty tensor).
func (t *TensorInfo) Rows() uint64 {
	if t.Shape[0] == 0 {
		return 0
	}
	return t.nelem / t.Shape[0]
}

// Bytes returns the size of the tensor data in bytes.
func (t *TensorInfo) Bytes() uint64 {
	rb, _ := t.Type.RowBytes(t.Shape[0])
	return rb * t.Rows()
}

// File is an open GGUF model: one file or all shards of a split model.
type File struct {
	Path       string   // the first (or only) shard
	Shards     []string // every shard, in order (one entry when not split)
	Version    uint32   // GGUF version of the first shard (2 or 3)
	Alignment  uint64   // data alignment of the first shard
	DataOffset uint64   // start of the data section in the first shard
	Size       int64    // total bytes of all shards
	KV         []KV     // metadata of the first shard, in file order
	Tensors    []*TensorInfo

	kvIndex     map[string]int
	tensorIndex map[string]*TensorInfo
	unmaps      []func() error
	maps        [][]byte // the shards' file mappings (none where files are read into memory)
	mapPaths    []string // the file of each of maps
}

// Lookup returns the value stored under key.
func (f *File) Lookup(key string) (Value, bool) {
	if i, ok := f.kvIndex[key]; ok {
		return f.KV[i].Value, true
	}
	return Value{}, false
}

// String returns a string value.
func (f *File) String(key string) (string, bool) { v, _ := f.Lookup(key); return v.Str() }

// Uint returns a non-negative value of any integer type.
func (f *File) Uint(key string) (uint64, bool) { v, _ := f.Lookup(key); return v.Uint() }

// Int returns a value of any integer type that fits in int64.
func (f *File) Int(key string) (int64, bool) { v, _ := f.Lookup(key); return v.Int() }

// Float returns a value of any float or integer type.
func (f *File) Float(key string) (float64, bool) { v, _ := f.Lookup(key); return v.Float() }

// Bool returns a bool value.
func (f *File) Bool(key string) (bool, bool) { v, _ := f.Lookup(key); return v.Bool() }

// Strings returns a copy of an array of strings.
func (f *File) Strings(key string) ([]string, bool) { v, _ := f.Lookup(key); return v.Strings() }

// Float32s returns a numeric array as float32 (a copy).
func (f *File) Float32s(key string) ([]float32, bool) { v, _ := f.Lookup(key); return v.Float32s() }

// Int32s returns an integer array as int32 (a copy); false if an element does not fit.
func (f *File) Int32s(key string) ([]int32, bool) { v, _ := f.Lookup(key); return v.Int32s() }

// Arch returns general.architecture ("" when absent).
func (f *File) Arch() string { s, _ := f.String("general.architecture"); return s }

// Tensor returns the tensor with the given name.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	t, ok := f.tensorIndex[name]
	return t, ok
}

// Close unmaps the file(s). Tensor Data slices become nil; using bytes taken from them earlier
// after Close crashes the program. Close is idempotent.
func (f *File) Close() error {
	var first error
	for _, t := range f.Tensors {
		t.Data = nil
	}
	for _, u := range f.unmaps {
		if err := u(); err != nil && first == nil {
			first = err
		}
	}
	f.unmaps, f.maps, f.mapPaths = nil, nil, nil
	return first
}

// Release drops the pages of the file mapping that hold b (a sub-slice of a tensor's Data, rounded
// out to whole pages) from the process's resident set; b stays readable (a later read faults the
// pages back in from the page cache). A converter that reads each tensor once calls it after
// each tensor, so the mapped file does not pile up in its memory. It does nothing for bytes
// outside the file's mappings or where the file was read into memory instead of mapped.
func (f *File) Release(b []byte) {
	for _, m := range f.maps {
		pages.Release(m, b)
	}
}

// Open opens a GGUF file (version 2 or 3) and memory-maps its tensor data read-only; no tensor
// data is read. A split model (PREFIX-00001-of-0000N.gguf with split.count > 1) is opened whole
// whichever shard is named. The header is fully validated (see the package documentation).
func Open(path string) (*File, error) {
	s, err := openShard(path)
	if err != nil {
		return nil, err
	}
	f := &File{unmaps: []func() error{s.unmap}}
	if s.mapped != nil {
		f.maps, f.mapPaths = append(f.maps, s.mapped), append(f.mapPaths, s.path)
	}
	if err := f.assemble(s); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// shard is one parsed, mapped file.
type shard struct {
	path       string
	name       string // base name, for errors
	size       int64
	version    uint32
	alignment  uint64
	dataOffset uint64
	kv         []KV
	kvIndex    map[string]int
	tensors    []*TensorInfo
	unmap      func() error
	mapped     []byte // the file mapping (nil where mapFile reads the file into memory)
}

func openShard(path string) (*shard, error) {
	name := filepath.Base(path)
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open GGUF: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("open GGUF: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file: %w", name, ErrCorrupt)
	}
	if st.Size() < headerBytes {
		return nil, fmt.Errorf("%s: file has %d bytes, less than the %d-byte GGUF header: %w",
			name, st.Size(), headerBytes, ErrTruncated)
	}
	data, unmap, err := mapFile(fh, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s, err := parse(name, data)
	if err != nil {
		unmap()
		return nil, err
	}
	s.path, s.size, s.unmap = path, st.Size(), unmap
	if mapsFiles {
		s.mapped = data
	}
	return s, nil
}

// decoder reads little-endian fields from b with bounds checks.
type decoder struct {
	name string
	b    []byte
	off  uint64
}

func (d *decoder) errf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", d.name, fmt.Sprintf(format, args...), sentinel)
}

func (d *decoder) remaining() uint64 { return uint64(len(d.b)) - d.off }

func (d *decoder) need(n uint64, what string) error {
	if n > d.remaining() {
		return d.errf(ErrTruncated, "%s needs %s bytes at offset %s but the file has %s bytes",
			what, commas(n), commas(d.off), commas(uint64(len(d.b))))
	}
	return nil
}

func (d *decoder) u32(what string) (uint32, error) {
	if err := d.need(4, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v, nil
}

func (d *decoder) u64(what string) (uint64, error) {
	if err := d.need(8, what); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v, nil
}

func (d *decoder) str(what string) (string, error) {
	n, err := d.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > d.remaining() {
		return "", d.errf(ErrTruncated, "%s has length %s but only %s bytes remain after offset %s",
			what, commas(n), commas(d.remaining()), commas(d.off))
	}
	s := string(d.b[d.off : d.off+n])
	d.off += n
	return s, nil
}

func parse(name string, b []byte) (*shard, error) {
	d := &decoder{name: name, b: b}
	if len(b) < headerBytes {
		return nil, d.errf(ErrTruncated, "file has %d bytes, less than the %d-byte GGUF header", len(b), headerBytes)
	}
	if binary.LittleEndian.Uint32(b) != Magic {
		return nil, d.errf(ErrBadMagic, "file starts with %q, not \"GGUF\"", b[:4])
	}
	d.off = 4
	version, _ := d.u32("version")
	switch {
	case version == 2 || version == 3:
	case version == 1:
		return nil, d.errf(ErrVersion, "GGUF version 1 is not supported (need 2 or 3); reconvert the model with a current llama.cpp")
	case bits.ReverseBytes32(version) == 2 || bits.ReverseBytes32(version) == 3:
		return nil, d.errf(ErrVersion, "big-endian GGUF (version %d byte-swapped) is not supported", bits.ReverseBytes32(version))
	default:
		return nil, d.errf(ErrVersion, "GGUF version %d is not supported (need 2 or 3)", version)
	}
	nTensors, _ := d.u64("tensor count")
	nKV, _ := d.u64("metadata count")
	if nKV > d.remaining()/minKVBytes {
		return nil, d.errf(ErrTruncated, "header claims %s metadata entries, but at least %d bytes each do not fit in the %s bytes that remain",
			commas(nKV), minKVBytes, commas(d.remaining()))
	}
	if nTensors > d.remaining()/minTIBytes {
		return nil, d.errf(ErrTruncated, "header claims %s tensors, but at least %d bytes each do not fit in the %s bytes that remain",
			commas(nTensors), minTIBytes, commas(d.remaining()))
	}
	s := &shard{name: name, version: version, alignment: DefaultAlignment}
	s.kv = make([]KV, 0, nKV)
	s.kvIndex = make(map[string]int, nKV)
	for i := uint64(0); i < nKV; i++ {
		key, err := d.str(fmt.Sprintf("metadata key %d", i))
		if err != nil {
			return nil, err
		}
		where := fmt.Sprintf("key %q", key)
		if j, dup := s.kvIndex[key]; dup {
			return nil, d.errf(ErrCorrupt, "%s appears twice (entries %d and %d)", where, j, i)
		}
		t, err := d.u32(where + " type")
		if err != nil {
			return nil, err
		}
		v, err := d.value(ValueType(t), 0, where)
		if err != nil {
			return nil, err
		}
		s.kvIndex[key] = len(s.kv)
		s.kv = append(s.kv, KV{Key: key, Value: v})
	}
	if i, ok := s.kvIndex["general.alignment"]; ok {
		v := s.kv[i].Value
		a, ok := v.Uint()
		if !ok {
			return nil, d.errf(ErrCorrupt, "key \"general.alignment\" has type %s and value %v, want a positive integer", v.Type(), v)
		}
		if a == 0 || a&(a-1) != 0 || a > MaxAlignment {
			return nil, d.errf(ErrCorrupt, "key \"general.alignment\" is %d; it must be a power of two between 1 and %d", a, MaxAlignment)
		}
		s.alignment = a
	}

	if nTensors > d.remaining()/minTIBytes {
		return nil, d.errf(ErrTruncated, "header claims %s tensors, but at least %d bytes each do not fit in the %s bytes left after the metadata",
			commas(nTensors), minTIBytes, commas(d.remaining()))
	}
	s.tensors = make([]*TensorInfo, 0, nTensors)
	byName := make(map[string]int, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		t, err := d.tensorInfo(i)
		if err != nil {
			return nil, err
		}
		if j, dup := byName[t.Name]; dup {
			return nil, d.errf(ErrCorrupt, "tensor %s appears twice (tensor infos %d and %d)", t.Name, j, i)
		}
		if t.Offset%s.alignment != 0 {
			return nil, d.errf(ErrCorrupt, "tensor %s: data offset %s is not a multiple of the alignment %d", t.Name, commas(t.Offset), s.alignment)
		}
		byName[t.Name] = int(i)
		s.tensors = append(s.tensors, t)
	}
	// The data section starts at the next multiple of the alignment.
	pad := (s.alignment - d.off%s.alignment) % s.alignment
	s.dataOffset = d.off + pad
	size := uint64(len(b))
	for _, t := range s.tensors {
		n := t.Bytes()
		start, c1 := bits.Add64(s.dataOffset, t.Offset, 0)
		end, c2 := bits.Add64(start, n, 0)
		if c1 != 0 || c2 != 0 || end > size {
			endStr := commas(end)
			if c1 != 0 || c2 != 0 {
				endStr = "beyond 2^64"
			}
			return nil, d.errf(ErrTruncated, "tensor %s: data ends at byte %s but file has %s bytes (data section at %s, tensor offset %s, %s bytes of %s)",
				t.Name, endStr, commas(size), commas(s.dataOffset), commas(t.Offset), commas(n), t.Type)
		}
		t.Data = b[start:end:end]
	}
	// No two tensors may share bytes.
	order := make([]*TensorInfo, len(s.tensors))
	copy(order, s.tensors)
	sort.Slice(order, func(i, j int) bool { return order[i].Offset < order[j].Offset })
	var prev *TensorInfo
	var prevEnd uint64
	for _, q := range order {
		if len(q.Data) == 0 {
			continue
		}
		if prev != nil && q.Offset < prevEnd {
			return nil, d.errf(ErrCorrupt, "tensors %s (bytes %s..%s of the data section) and %s (from byte %s) overlap",
				prev.Name, commas(prev.Offset), commas(prevEnd), q.Name, commas(q.Offset))
		}
		prev, prevEnd = q, q.Offset+uint64(len(q.Data))
	}
	return s, nil
}

func (d *decoder) tensorInfo(i uint64) (*TensorInfo, error) {
	name, err := d.str(fmt.Sprintf("tensor info %d name", i))
	if err != nil {
		return nil, err
	}
	where := "tensor " + name
	nd, err := d.u32(where + " dimension count")
	if err != nil {
		return nil, err
	}
	if nd < 1 || nd > MaxDims {
		return nil, d.errf(ErrCorrupt, "%s has %d dimensions; GGUF allows 1 to %d", where, nd, MaxDims)
	}
	t := &TensorInfo{Name: name, Shape: make([]uint64, nd)}
	nelem := uint64(1)
	overflow := false
	for k := range t.Shape {
		ne, err := d.u64(where + " shape")
		if err != nil {
			return nil, err
		}
		if ne > math.MaxInt64 {
			return nil, d.errf(ErrCorrupt, "%s: dimension %d is %s, more than 2^63-1", where, k, commas(ne))
		}
		t.Shape[k] = ne
		hi, lo := bits.Mul64(nelem, ne)
		if hi != 0 || lo > math.MaxInt64 {
			overflow = true
		}
		nelem = lo
	}
	typ, err := d.u32(where + " type")
	if err != nil {
		return nil, err
	}
	t.Type = Type(typ)
	if t.Offset, err = d.u64(where + " offset"); err != nil {
		return nil, err
	}
	if overflow {
		return nil, d.errf(ErrCorrupt, "%s: shape %v has more than 2^63-1 elements", where, t.Shape)
	}
	t.nelem = nelem
	if !t.Type.Known() {
		return nil, d.errf(ErrUnsupportedType, "%s has unknown tensor type id %d", where, typ)
	}
	bs := uint64(t.Type.BlockSize())
	if t.Shape[0]%bs != 0 {
		return nil, d.errf(ErrCorrupt, "%s: row length ne[0]=%d is not a multiple of the %s block size %d",
			where, t.Shape[0], t.Type, bs)
	}
	rb, err := t.Type.RowBytes(t.Shape[0])
	if err != nil || rb > math.MaxInt64 {
		return nil, d.errf(ErrCorrupt, "%s: a row of %d %s elements takes more than 2^63-1 bytes", where, t.Shape[0], t.Type)
	}
	rows := uint64(0)
	if t.Shape[0] != 0 {
		rows = nelem / t.Shape[0]
	}
	if hi, lo := bits.Mul64(rb, rows); hi != 0 || lo > math.MaxInt64 {
		return nil, d.errf(ErrCorrupt, "%s: %v elements of %s take more than 2^63-1 bytes", where, t.Shape, t.Type)
	}
	return t, nil
}

// minValueBytes is the smallest encoding of one array element of type t.
func minValueBytes(t ValueType) uint64 {
	switch t {
	case ValueString:
		return 8
	case ValueArray:
		return 4 + 8
	}
	return uint64(t.scalarSize())
}

func (d *decoder) value(t ValueType, depth int, where string) (Value, error) {
	if !t.valid() {
		return Value{}, d.errf(ErrCorrupt, "%s has unknown value type %d", where, uint32(t))
	}
	if t == ValueString {
		s, err := d.str(where)
		return Value{typ: ValueString, ok: true, str: s}, err
	}
	if t != ValueArray {
		n := uint64(t.scalarSize())
		if err := d.need(n, where); err != nil {
			return Value{}, err
		}
		p := d.b[d.off:]
		d.off += n
		var num uint64
		switch t {
		case ValueUint8, ValueBool:
			num = uint64(p[0])
		case ValueInt8:
			num = uint64(int64(int8(p[0])))
		case ValueUint16:
			num = uint64(binary.LittleEndian.Uint16(p))
		case ValueInt16:
			num = uint64(int64(int16(binary.LittleEndian.Uint16(p))))
		case ValueUint32:
			num = uint64(binary.LittleEndian.Uint32(p))
		case ValueInt32:
			num = uint64(int64(int32(binary.LittleEndian.Uint32(p))))
		case ValueFloat32:
			num = uint64(binary.LittleEndian.Uint32(p))
		case ValueUint64, ValueInt64, ValueFloat64:
			num = binary.LittleEndian.Uint64(p)
		}
		if t == ValueBool && num > 1 {
			num = 1 // any nonzero byte is true, as in ggml
		}
		return scalar(t, num), nil
	}
	if depth >= MaxArrayDepth {
		return Value{}, d.errf(ErrCorrupt, "%s: arrays nested deeper than %d levels", where, MaxArrayDepth)
	}
	et32, err := d.u32(where + " array element type")
	if err != nil {
		return Value{}, err
	}
	et := ValueType(et32)
	if !et.valid() {
		return Value{}, d.errf(ErrCorrupt, "%s: array has unknown element type %d", where, et32)
	}
	n, err := d.u64(where + " array length")
	if err != nil {
		return Value{}, err
	}
	if min := minValueBytes(et); n > d.remaining()/min {
		return Value{}, d.errf(ErrTruncated, "%s: array of %s %s elements needs at least %d bytes each but only %s bytes remain",
			where, commas(n), et, min, commas(d.remaining()))
	}
	v := Value{typ: ValueArray, ok: true, elem: et}
	p := d.b[d.off:]
	sz := uint64(et.scalarSize())
	switch et {
	case ValueUint8:
		v.arr = append([]uint8(nil), p[:n]...)
	case ValueInt8:
		a := make([]int8, n)
		for i := range a {
			a[i] = int8(p[i])
		}
		v.arr = a
	case ValueBool:
		a := make([]bool, n)
		for i := range a {
			a[i] = p[i] != 0
		}
		v.arr = a
	case ValueUint16:
		a := make([]uint16, n)
		for i := range a {
			a[i] = binary.LittleEndian.Uint16(p[2*i:])
		}
		v.arr = a
	case ValueInt16:
		a := make([]int16, n)
		for i := range a {
			a[i] = int16(binary.LittleEndian.Uint16(p[2*i:]))
		}
		v.arr = a
	case ValueUint32:
		a := make([]uint32, n)
		for i := range a {
			a[i] = binary.LittleEndian.Uint32(p[4*i:])
		}
		v.arr = a
	case ValueInt32:
		a := make([]int32, n)
		for i := range a {
			a[i] = int32(binary.LittleEndian.Uint32(p[4*i:]))
		}
		v.arr = a
	case ValueFloat32:
		a := make([]float32, n)
		for i := range a {
			a[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
		}
		v.arr = a
	case ValueUint64:
		a := make([]uint64, n)
		for i := range a {
			a[i] = binary.LittleEndian.Uint64(p[8*i:])
		}
		v.arr = a
	case ValueInt64:
		a := make([]int64, n)
		for i := range a {
			a[i] = int64(binary.LittleEndian.Uint64(p[8*i:]))
		}
		v.arr = a
	case ValueFloat64:
		a := make([]float64, n)
		for i := range a {
			a[i] = math.Float64frombits(binary.LittleEndian.Uint64(p[8*i:]))
		}
		v.arr = a
	case ValueString:
		// Pass 1 checks every length; pass 2 slices all strings out of one copy of the span
		// (one allocation instead of one per string).
		start := d.off
		for i := uint64(0); i < n; i++ {
			if d.remaining() < 8 {
				return Value{}, d.errf(ErrTruncated, "%s: string element %d length needs 8 bytes at offset %s but the file has %s bytes",
					where, i, commas(d.off), commas(uint64(len(d.b))))
			}
			l := binary.LittleEndian.Uint64(d.b[d.off:])
			d.off += 8
			if l > d.remaining() {
				return Value{}, d.errf(ErrTruncated, "%s: string element %d has length %s but only %s bytes remain after offset %s",
					where, i, commas(l), commas(d.remaining()), commas(d.off))
			}
			d.off += l
		}
		span := string(d.b[start:d.off])
		a := make([]string, n)
		pos := uint64(0)
		for i := range a {
			l := binary.LittleEndian.Uint64(d.b[start+pos:])
			a[i] = span[pos+8 : pos+8+l]
			pos += 8 + l
		}
		v.arr = a
		return v, nil
	case ValueArray:
		a := make([]Value, n)
		for i := range a {
			e, err := d.value(ValueArray, depth+1, where+" element "+strconv.Itoa(i)) // nested: rare
			if err != nil {
				return Value{}, err
			}
			a[i] = e
		}
		v.arr = a
		return v, nil
	}
	d.off += n * sz
	return v, nil
}

// commas formats n with thousands separators: 9437216 -> "9,437,216".
func commas(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) <= 3 {
		return s
	}
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := 0; i < len(s); i++ {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
