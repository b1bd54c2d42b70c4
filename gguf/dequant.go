package gguf

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/qsparse/qsparse/internal/half"
)

// The dequantizers follow ggml's dequantize_row_* formula shapes (ggml-quants.c) so results
// are bit-identical to ggml, including the sign of zero. Explicit float32(...) conversions
// keep the compiler from fusing a multiply and an add into an FMA (the Go spec allows fusion
// only without an explicit conversion).

// dequantizers maps each supported type to a decoder of whole blocks: len(dst) = nblocks *
// BlockSize, len(src) = nblocks * BlockBytes (checked by the caller).
var dequantizers = map[Type]func(src []byte, dst []float32){
	F32:    dequantF32,
	F16:    dequantF16,
	BF16:   dequantBF16,
	Q8_0:   dequantQ8_0,
	Q4_0:   dequantQ4_0,
	Q4_1:   dequantQ4_1,
	Q5_0:   dequantQ5_0,
	Q5_1:   dequantQ5_1,
	Q2_K:   dequantQ2_K,
	Q3_K:   dequantQ3_K,
	Q4_K:   dequantQ4_K,
	Q5_K:   dequantQ5_K,
	Q6_K:   dequantQ6_K,
	IQ4_NL: dequantIQ4_NL,
	IQ4_XS: dequantIQ4_XS,
	TQ1_0:  dequantTQ1_0,
	TQ2_0:  dequantTQ2_0,
}

// Dequantize decodes src, holding len(dst) elements of type t, into dst. len(dst) must be a
// multiple of t's block size and len(src) exactly the bytes of that many elements.
func Dequantize(t Type, src []byte, dst []float32) error {
	f := dequantizers[t]
	if f == nil {
		return fmt.Errorf("unsupported tensor type %s for dequantization: %w", t, ErrUnsupportedType)
	}
	bs, bb := t.BlockSize(), t.BlockBytes()
	if len(dst)%bs != 0 {
		return fmt.Errorf("dequantize %s: %d elements is not a multiple of the block size %d: %w", t, len(dst), bs, ErrSize)
	}
	if nb := len(dst) / bs; len(src) != nb*bb {
		return fmt.Errorf("dequantize %s: %d elements need %d bytes, got %d: %w", t, len(dst), nb*bb, len(src), ErrSize)
	}
	f(src, dst)
	return nil
}

// Dequantize decodes the whole tensor into dst (len(dst) == NumElements()).
func (t *TensorInfo) Dequantize(dst []float32) error {
	if uint64(len(dst)) != t.nelem {
		return fmt.Errorf("tensor %s: dequantize into %d floats, but the tensor has %d elements: %w", t.Name, len(dst), t.nelem, ErrSize)
	}
	return t.DequantizeRows(dst, 0, int(t.Rows()))
}

// DequantizeRows decodes rows row0 .. row0+n-1 (rows of Shape[0] elements) into dst, which must
// hold exactly n*Shape[0] floats.
func (t *TensorInfo) DequantizeRows(dst []float32, row0, n int) error {
	if dequantizers[t.Type] == nil {
		return fmt.Errorf("unsupported tensor type %s in tensor %s: %w", t.Type, t.Name, ErrUnsupportedType)
	}
	rows := t.Rows()
	if row0 < 0 || n < 0 || uint64(row0) > rows || uint64(n) > rows-uint64(row0) {
		return fmt.Errorf("tensor %s: rows %d..%d out of range (tensor has %d rows): %w", t.Name, row0, row0+n, rows, ErrSize)
	}
	cols := t.Shape[0]
	if uint64(len(dst)) != uint64(n)*cols {
		return fmt.Errorf("tensor %s: %d rows of %d need %d floats, dst has %d: %w", t.Name, n, cols, uint64(n)*cols, len(dst), ErrSize)
	}
	if n == 0 || cols == 0 {
		return nil
	}
	if t.Data == nil {
		return fmt.Errorf("tensor %s: no data (file closed?): %w", t.Name, ErrClosed)
	}
	rb, err := t.Type.RowBytes(cols)
	if err != nil {
		return fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	src := t.Data[uint64(row0)*rb : uint64(row0+n)*rb]
	if err := Dequantize(t.Type, src, dst); err != nil {
		return fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	return nil
}

// f16Table is the fp16 conversion table (built on first use, 256 KiB).
var f16Table = half.F16Table

// F16ToF32 converts IEEE half-precision bits to float32 (exact, subnormals kept).
func F16ToF32(h uint16) float32 { return half.F16ToF32(h) }

func fp16(tab *[65536]float32, b []byte) float32 { return tab[binary.LittleEndian.Uint16(b)] }

func dequantF32(src []byte, dst []float32) {
	src = src[:4*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func dequantF16(src []byte, dst []float32) {
	tab := f16Table()
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = tab[uint16(src[2*i])|uint16(src[2*i+1])<<8]
	}
}

func dequantBF16(src []byte, dst []float32) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(src[2*i])<<16 | uint32(src[2*i+1])<<24)
	}
}

func dequantQ8_0(src []byte, dst []float32) {
	tab := f16Table()
	for i := 0; i < len(dst)/32; i++ {
		b := (*[34]byte)(src[i*34:])
		y := (*[32]float32)(dst[i*32:])
		d := fp16(tab, b[0:2])
		for j := 0; j < 32; j++ {
			y[j] = float32(int8(b[2+j])) * d
		}
	}
}

func dequantQ4_0(src []byte, dst []float32) {
	tab := f16Table()
	for i := 0; i < len(dst)/32; i++ {
		b := (*[18]byte)(src[i*18:])
		y := (*[32]float32)(dst[i*32:])
		d := fp16(tab, b[0:2])
		for j := 0; j < 16; j++ {
			x0 := int32(b[2+j]&0x0F) - 8
			x1 := int32(b[2+j]>>4) - 8
			y[j] = float32(x0) * d
			y[j+16] = float32(x1) * d
		}
	}
}

func dequantQ4_1(src []byte, dst []float32) {
	tab := f16Table()
	for i := 0; i < len(dst)/32; i++ {
		b := (*[20]byte)(src[i*20:])
		y := (*[32]float32)(dst[i*32:])
		d := fp16(tab, b[0:2])
		m := fp16(tab, b[2:4])
		for j := 0; j < 16; j++ {
			x0 := b[4+j] & 0x0F
			x1 := b[4+j] >> 4
			y[j] = float32(float32(x0)*d) + m
			y[j+16] = float32(float32(x1)*d) + m
		}
	}
}

func dequantQ5_0(src []byte, dst []float32) {
	tab := f16Table()
	for i := 0; i < len(dst)/32; i++ {
		b := (*[22]byte)(src[i*22:])
		y := (*[32]float32)(dst[i*32:])
		d := fp16(tab, b[0:2])
		qh := binary.LittleEndian.Uint32(b[2:6])
		for j := 0; j < 16; j++ {
			xh0 := byte(((qh >> j) << 4) & 0x10)
			xh1 := byte((qh >> (j + 12)) & 0x10)
			x0 := int32(b[6+j]&0x0F|xh0) - 16
			x1 := int32(b[6+j]>>4|xh1) - 16
			y[j] = float32(x0) * d
			y[j+16] = float32(x1) * d
		}
	}
}

func dequantQ5_1(src []byte, dst []float32) {
	tab := f16Table()
	for i := 0; i < len(dst)/32; i++ {
		b := (*[24]byte)(src[i*24:])
		y := (*[32]float32)(dst[i*32:])
		d := fp16(tab, b[0:2])
		m := fp16(tab, b[2:4])
		qh := binary.LittleEndian.Uint32(b[4:8])
		for j := 0; j < 16; j++ {
			xh0 := byte(((qh >> j) << 4) & 0x10)
			xh1 := byte((qh >> (j + 12)) & 0x10)
			x0 := b[8+j]&0x0F | xh0
			x1 := b[8+j]>>4 | xh1
			y[j] = float32(float32(x0)*d) + m
			y[j+16] = float32(float32(x1)*d) + m
		}
	}
}

var kvaluesIQ4NL = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

func dequantIQ4_NL(src []byte, dst []float32) {
	tab := f16Table()
	for i := 0; i < len(dst)/32; i++ {
		b := (*[18]byte)(src[i*18:])
		y := (*[32]float32)(dst[i*32:])
		d := fp16(tab, b[0:2])
		for j := 0; j < 16; j++ {
			y[j] = d * float32(kvaluesIQ4NL[b[2+j]&0x0F])
			y[j+16] = d * float32(kvaluesIQ4NL[b[2+j]>>4])
		}
	}
}
