package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/qsparse/qsparse/internal/half"
)

// DType is a safetensors element type, spelled as in the file header ("F32", "BF16", ...).
type DType string

// The dtypes of the safetensors format this package reads and writes.
const (
	BOOL DType = "BOOL"
	U8   DType = "U8"
	I8   DType = "I8"
	I16  DType = "I16"
	U16  DType = "U16"
	F16  DType = "F16"
	BF16 DType = "BF16"
	I32  DType = "I32"
	U32  DType = "U32"
	F32  DType = "F32"
	F64  DType = "F64"
	I64  DType = "I64"
	U64  DType = "U64"
)

var dtypeSizes = map[DType]int{
	BOOL: 1, U8: 1, I8: 1, I16: 2, U16: 2, F16: 2, BF16: 2,
	I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8,
}

// Size returns the size in bytes of one element, or 0 for an unknown dtype.
func (d DType) Size() int { return dtypeSizes[d] }

// Valid reports whether d is a dtype this package knows.
func (d DType) Valid() bool { return dtypeSizes[d] != 0 }

func (d DType) String() string { return string(d) }

// Tensor is one named tensor. Shape is outermost first (row-major, as in the file). Data holds
// exactly NumElements()*DType.Size() little-endian bytes; for opened files it is a read-only view
// into the memory mapping, valid until the File or Dir is closed.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// NumElements returns the product of the dimensions (1 for a scalar of shape []).
func (t Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Bytes returns len(t.Data).
func (t Tensor) Bytes() int64 { return int64(len(t.Data)) }

// check verifies that the dtype is known, the dimensions are non-negative, the element count
// does not overflow and len(Data) matches it.
func (t Tensor) check() error {
	size := t.DType.Size()
	if size == 0 {
		return fmt.Errorf("tensor %q: dtype %q: %w", t.Name, string(t.DType), ErrUnsupportedDType)
	}
	n := uint64(1)
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("tensor %q: negative dimension %d in shape %v: %w", t.Name, d, t.Shape, ErrCorrupt)
		}
		var ok bool
		if n, ok = mulCheck(n, uint64(d)); !ok {
			return fmt.Errorf("tensor %q: element count of shape %v overflows: %w", t.Name, t.Shape, ErrCorrupt)
		}
	}
	nb, ok := mulCheck(n, uint64(size))
	if !ok || nb > math.MaxInt {
		return fmt.Errorf("tensor %q: byte size of shape %v overflows: %w", t.Name, t.Shape, ErrCorrupt)
	}
	if uint64(len(t.Data)) != nb {
		return fmt.Errorf("tensor %q: %s shape %v needs %d bytes, data has %d: %w",
			t.Name, t.DType, t.Shape, nb, len(t.Data), ErrCorrupt)
	}
	return nil
}

// mulCheck returns a*b and whether it did not overflow.
func mulCheck(a, b uint64) (uint64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	c := a * b
	return c, c/b == a
}

var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// f16ToF32 returns the 65536-entry fp16 table (bit-exact with VCVTPH2PS).
func f16ToF32() []float32 { return half.F16Table()[:] }

// Float32 converts the tensor to float32 into dst, which must have length NumElements().
// F32, F16 and BF16 are converted exactly; integer and BOOL dtypes are converted by value
// (I32/I64/U32/U64 above 2^24 round to the nearest float32); F64 is rounded.
func (t Tensor) Float32(dst []float32) error {
	if err := t.check(); err != nil {
		return err
	}
	n := len(t.Data) / t.DType.Size()
	if len(dst) != n {
		return fmt.Errorf("tensor %q: Float32: dst has %d elements, tensor has %d", t.Name, len(dst), n)
	}
	b := t.Data
	switch t.DType {
	case F32:
		if littleEndian && n > 0 {
			// Same bytes on a little-endian host: copy into dst viewed as bytes.
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), 4*n), b)
			break
		}
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case F16:
		tab := f16ToF32()
		for i := range dst {
			dst[i] = tab[binary.LittleEndian.Uint16(b[2*i:])]
		}
	case BF16:
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
	case BOOL, U8:
		for i := range dst {
			dst[i] = float32(b[i])
		}
	case I8:
		for i := range dst {
			dst[i] = float32(int8(b[i]))
		}
	case I16:
		for i := range dst {
			dst[i] = float32(int16(binary.LittleEndian.Uint16(b[2*i:])))
		}
	case U16:
		for i := range dst {
			dst[i] = float32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case I32:
		for i := range dst {
			dst[i] = float32(int32(binary.LittleEndian.Uint32(b[4*i:])))
		}
	case U32:
		for i := range dst {
			dst[i] = float32(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case I64:
		for i := range dst {
			dst[i] = float32(int64(binary.LittleEndian.Uint64(b[8*i:])))
		}
	case U64:
		for i := range dst {
			dst[i] = float32(binary.LittleEndian.Uint64(b[8*i:]))
		}
	default:
		return fmt.Errorf("tensor %q: Float32 from %q: %w", t.Name, string(t.DType), ErrUnsupportedDType)
	}
	return nil
}

// Float32s returns the tensor converted to a new []float32 (see Float32).
func (t Tensor) Float32s() ([]float32, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	dst := make([]float32, len(t.Data)/t.DType.Size())
	if err := t.Float32(dst); err != nil {
		return nil, err
	}
	return dst, nil
}

// FromFloat32 builds a tensor of dtype F32, F16 or BF16 from row-major values (outermost
// dimension first). F16 and BF16 round to nearest, ties to even; NaNs stay NaN.
func FromFloat32(name string, dtype DType, shape []int, values []float32) (Tensor, error) {
	t := Tensor{Name: name, DType: dtype, Shape: append([]int{}, shape...)}
	n := 1
	for _, d := range shape {
		if d < 0 {
			return Tensor{}, fmt.Errorf("tensor %q: negative dimension in shape %v", name, shape)
		}
		nn, ok := mulCheck(uint64(n), uint64(d))
		if !ok || nn > math.MaxInt/8 {
			return Tensor{}, fmt.Errorf("tensor %q: shape %v too large", name, shape)
		}
		n = int(nn)
	}
	if len(values) != n {
		return Tensor{}, fmt.Errorf("tensor %q: shape %v has %d elements, got %d values", name, shape, n, len(values))
	}
	switch dtype {
	case F32:
		t.Data = make([]byte, 4*n)
		for i, v := range values {
			binary.LittleEndian.PutUint32(t.Data[4*i:], math.Float32bits(v))
		}
	case F16:
		t.Data = make([]byte, 2*n)
		for i, v := range values {
			binary.LittleEndian.PutUint16(t.Data[2*i:], half.F32ToF16(v))
		}
	case BF16:
		t.Data = make([]byte, 2*n)
		for i, v := range values {
			binary.LittleEndian.PutUint16(t.Data[2*i:], BF16Bits(v))
		}
	default:
		return Tensor{}, fmt.Errorf("tensor %q: FromFloat32 to %q (want F32, F16 or BF16): %w", name, string(dtype), ErrUnsupportedDType)
	}
	return t, nil
}

// BF16Bits rounds v to bfloat16 (nearest, ties to even) and returns its bits. A NaN stays a
// (quiet) NaN with the same sign.
func BF16Bits(v float32) uint16 { return half.F32ToBF16(v) }

// F16Bits rounds v to IEEE binary16 (nearest, ties to even) and returns its bits.
func F16Bits(v float32) uint16 { return half.F32ToF16(v) }
