package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"

	hf "github.com/nlpodyssey/safetensors"

	"github.com/qsparse/qsparse/internal/pages"
)

// MaxHeaderSize is the largest JSON header accepted (the limit of the reference implementation).
const MaxHeaderSize = 100_000_000

// File is one opened .safetensors file.
type File struct {
	Path     string
	Metadata map[string]string // the header's "__metadata__" (may be nil)
	Tensors  []Tensor          // in data order; Data are views into the mapping
	// HeaderSize is the JSON header length (the file's first 8 bytes); data starts at 8+HeaderSize.
	HeaderSize int64

	index   map[string]int
	release func() error
	mapped  []byte // the file mapping (nil for Parse and where files are read into memory)
}

// Open memory-maps path read-only and validates it (see the package comment). Close the File
// when the tensors' Data are no longer used.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: open: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("safetensors: %s: not a regular file: %w", path, ErrCorrupt)
	}
	if st.Size() < 8 {
		return nil, fmt.Errorf("safetensors: %s: file has %d bytes, less than the 8-byte header length: %w",
			path, st.Size(), ErrTruncated)
	}
	buf, release, err := mapFile(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	sf, err := Parse(path, buf)
	if err != nil {
		release()
		return nil, err
	}
	sf.release = release
	if mapsFiles {
		sf.mapped = buf
	}
	return sf, nil
}

// Parse validates and parses a whole safetensors file held in buf. The tensors' Data are views
// into buf (not copies). name is used in error messages and as File.Path.
func Parse(name string, buf []byte) (*File, error) {
	hdr, err := parseHeader(name, buf)
	if err != nil {
		return nil, err
	}
	views, err := deserialize(name, buf)
	if err != nil {
		return nil, err
	}
	sf := &File{
		Path:       name,
		Metadata:   hdr.metadata,
		HeaderSize: int64(hdr.size),
		Tensors:    make([]Tensor, len(hdr.infos)),
		index:      make(map[string]int, len(hdr.infos)),
	}
	dataStart := 8 + hdr.size
	for i, in := range hdr.infos {
		v, ok := views[in.name]
		want := buf[dataStart+in.begin : dataStart+in.end : dataStart+in.end]
		if !ok || string(v.DType().String()) != string(in.dtype) || !slices.Equal(v.Shape(), in.shape) ||
			len(v.Data()) != len(want) || (len(want) > 0 && &v.Data()[0] != &want[0]) {
			return nil, fmt.Errorf("safetensors: %s: tensor %q: library view disagrees with the validated header: %w",
				name, in.name, ErrCorrupt)
		}
		shape := make([]int, len(in.shape))
		for j, d := range in.shape {
			shape[j] = int(d)
		}
		sf.Tensors[i] = Tensor{Name: in.name, DType: in.dtype, Shape: shape, Data: want}
		sf.index[in.name] = i
	}
	return sf, nil
}

// deserialize runs the library's parser, turning any panic into an error.
func deserialize(name string, buf []byte) (views map[string]hf.TensorView, err error) {
	defer func() {
		if r := recover(); r != nil {
			views = nil
			err = fmt.Errorf("safetensors: %s: parser panic: %v: %w", name, r, ErrCorrupt)
		}
	}()
	st, err := hf.Deserialize(buf)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %v: %w", name, err, ErrCorrupt)
	}
	named := st.Tensors()
	views = make(map[string]hf.TensorView, len(named))
	for _, nt := range named {
		views[nt.Name] = nt.TensorView
	}
	return views, nil
}

// Tensor returns the named tensor.
func (f *File) Tensor(name string) (Tensor, bool) {
	i, ok := f.index[name]
	if !ok {
		return Tensor{}, false
	}
	return f.Tensors[i], true
}

// Release drops the pages of the file mapping that hold b (a sub-slice of a tensor's Data, rounded
// out to whole pages) from the process's resident set; b stays readable (a later read faults the
// pages back in from the page cache). It does nothing for bytes outside the mapping, for a File
// from Parse, or where the file was read into memory instead of mapped.
func (f *File) Release(b []byte) {
	if f != nil {
		pages.Release(f.mapped, b)
	}
}

// Close unmaps the file. The tensors' Data must not be used afterwards.
func (f *File) Close() error {
	if f == nil || f.release == nil {
		return nil
	}
	r := f.release
	f.release, f.mapped = nil, nil
	if err := r(); err != nil {
		return fmt.Errorf("safetensors: %s: close: %w", f.Path, err)
	}
	return nil
}

type tensorInfo struct {
	name       string
	dtype      DType
	shape      []uint64
	begin, end uint64 // relative to the data section
}

type header struct {
	size     uint64
	metadata map[string]string
	infos    []tensorInfo // sorted by offsets
}

// parseHeader validates everything the library would trust: bounded work, no panics.
func parseHeader(name string, buf []byte) (*header, error) {
	fail := func(sentinel error, format string, args ...any) error {
		return fmt.Errorf("safetensors: %s: %s: %w", name, fmt.Sprintf(format, args...), sentinel)
	}
	if len(buf) < 8 {
		return nil, fail(ErrTruncated, "file has %d bytes, less than the 8-byte header length", len(buf))
	}
	n := binary.LittleEndian.Uint64(buf)
	if n > MaxHeaderSize {
		return nil, fail(ErrCorrupt, "header length %d exceeds the %d-byte limit", n, MaxHeaderSize)
	}
	if n > uint64(len(buf))-8 {
		return nil, fail(ErrTruncated, "header length %d runs past the end of the %d-byte file", n, len(buf))
	}
	dataLen := uint64(len(buf)) - 8 - n
	h := &header{size: n}

	dec := json.NewDecoder(bytes.NewReader(buf[8 : 8+n]))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fail(ErrCorrupt, "header JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fail(ErrCorrupt, "header JSON is not an object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fail(ErrCorrupt, "header JSON: %v", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fail(ErrCorrupt, "header JSON: unexpected %v", tok)
		}
		if seen[key] {
			return nil, fail(ErrCorrupt, "header lists %q twice", key)
		}
		seen[key] = true
		if key == "__metadata__" {
			if err := dec.Decode(&h.metadata); err != nil {
				return nil, fail(ErrCorrupt, "__metadata__ must map strings to strings: %v", err)
			}
			continue
		}
		var raw map[string]json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fail(ErrCorrupt, "tensor %q: entry is not a JSON object: %v", key, err)
		}
		in, err := parseInfo(key, raw)
		if err != nil {
			return nil, fail(ErrCorrupt, "tensor %q: %v", key, err)
		}
		h.infos = append(h.infos, in)
	}
	if _, err := dec.Token(); err != nil { // closing '}'
		return nil, fail(ErrCorrupt, "header JSON: %v", err)
	}
	if tok, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = fmt.Errorf("unexpected %v", tok)
		}
		return nil, fail(ErrCorrupt, "header JSON: trailing data after the object: %v", err)
	}

	for _, in := range h.infos {
		size := in.dtype.Size()
		if size == 0 {
			return nil, fail(ErrUnsupportedDType, "tensor %q: dtype %q", in.name, string(in.dtype))
		}
		nelem := uint64(1)
		for _, d := range in.shape {
			if d > uint64(math.MaxInt) {
				return nil, fail(ErrCorrupt, "tensor %q: dimension %d in shape %v is too large", in.name, d, in.shape)
			}
			var ok bool
			if nelem, ok = mulCheck(nelem, d); !ok {
				return nil, fail(ErrCorrupt, "tensor %q: element count of shape %v overflows", in.name, in.shape)
			}
		}
		nb, ok := mulCheck(nelem, uint64(size))
		if !ok {
			return nil, fail(ErrCorrupt, "tensor %q: byte size of %s shape %v overflows", in.name, in.dtype, in.shape)
		}
		if in.end < in.begin {
			return nil, fail(ErrCorrupt, "tensor %q: data_offsets [%d, %d] end before begin", in.name, in.begin, in.end)
		}
		if in.end > dataLen {
			return nil, fail(ErrTruncated, "tensor %q: data_offsets [%d, %d] run past the %d-byte data section",
				in.name, in.begin, in.end, dataLen)
		}
		if in.end-in.begin != nb {
			return nil, fail(ErrCorrupt, "tensor %q: %s shape %v needs %d bytes but data_offsets [%d, %d] hold %d",
				in.name, in.dtype, in.shape, nb, in.begin, in.end, in.end-in.begin)
		}
	}
	slices.SortFunc(h.infos, func(a, b tensorInfo) int {
		if a.begin != b.begin {
			if a.begin < b.begin {
				return -1
			}
			return 1
		}
		if a.end != b.end {
			if a.end < b.end {
				return -1
			}
			return 1
		}
		if a.name < b.name {
			return -1
		}
		return 1
	})
	pos := uint64(0)
	prev := ""
	for _, in := range h.infos {
		if in.begin < pos {
			return nil, fail(ErrCorrupt, "tensor %q: data_offsets [%d, %d] overlap tensor %q ending at %d",
				in.name, in.begin, in.end, prev, pos)
		}
		if in.begin > pos {
			return nil, fail(ErrCorrupt, "tensor %q: data_offsets [%d, %d] leave a gap after offset %d",
				in.name, in.begin, in.end, pos)
		}
		pos, prev = in.end, in.name
	}
	if pos != dataLen {
		return nil, fail(ErrCorrupt, "tensors cover %d bytes but the data section has %d (trailing bytes)", pos, dataLen)
	}
	return h, nil
}

func parseInfo(name string, raw map[string]json.RawMessage) (tensorInfo, error) {
	in := tensorInfo{name: name}
	for k := range raw {
		if k != "dtype" && k != "shape" && k != "data_offsets" {
			return in, fmt.Errorf("unexpected key %q (want dtype, shape, data_offsets)", k)
		}
	}
	for _, k := range []string{"dtype", "shape", "data_offsets"} {
		if _, ok := raw[k]; !ok {
			return in, fmt.Errorf("missing %q", k)
		}
	}
	var dt string
	if err := json.Unmarshal(raw["dtype"], &dt); err != nil {
		return in, fmt.Errorf("dtype is not a string: %s", clip(raw["dtype"]))
	}
	in.dtype = DType(dt)
	var err error
	if in.shape, err = parseUints(raw["shape"], "shape"); err != nil {
		return in, err
	}
	offs, err := parseUints(raw["data_offsets"], "data_offsets")
	if err != nil {
		return in, err
	}
	if len(offs) != 2 {
		return in, fmt.Errorf("data_offsets has %d numbers, want 2", len(offs))
	}
	in.begin, in.end = offs[0], offs[1]
	return in, nil
}

// parseUints parses a JSON array of natural numbers.
func parseUints(raw json.RawMessage, what string) ([]uint64, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || items == nil {
		return nil, fmt.Errorf("%s is not an array: %s", what, clip(raw))
	}
	out := make([]uint64, len(items))
	for i, it := range items {
		s := string(bytes.TrimSpace(it))
		if len(s) > 0 && s[0] == '-' {
			return nil, fmt.Errorf("%s has negative value %s", what, clip(it))
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			var ne *strconv.NumError
			if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
				return nil, fmt.Errorf("%s value %s does not fit in 64 bits", what, clip(it))
			}
			return nil, fmt.Errorf("%s has non-integer value %s", what, clip(it))
		}
		out[i] = v
	}
	return out, nil
}

// clip shortens a JSON fragment for an error message.
func clip(b []byte) string {
	if len(b) > 40 {
		return strconv.Quote(string(b[:40])) + "..."
	}
	return string(b)
}
