package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/qsparse/qsparse/internal/half"
)

// F32ToF16 converts to IEEE half precision, rounding to nearest even (as ggml's
// GGML_FP32_TO_FP16 / F16C); overflow gives ±Inf, NaN stays NaN.
func F32ToF16(f float32) uint16 { return half.F32ToF16(f) }

// F32ToBF16 converts to bfloat16 with round-to-nearest-even, NaNs forced quiet
// (ggml_compute_fp32_to_bf16).
func F32ToBF16(f float32) uint16 { return half.F32ToBF16(f) }

// BF16ToF32 converts bfloat16 bits to float32 (exact).
func BF16ToF32(h uint16) float32 { return half.BF16ToF32(h) }

// Quantize encodes src as type t, one of F32, F16, BF16 or Q8_0 (byte-identical to ggml's
// reference quantizers). len(src) must be a multiple of t's block size.
func Quantize(t Type, src []float32) ([]byte, error) { return AppendQuantize(nil, t, src) }

// AppendQuantize is Quantize appending to dst (a converter reuses one buffer for every chunk).
func AppendQuantize(dst []byte, t Type, src []float32) ([]byte, error) {
	grow := func(n int) ([]byte, []byte) {
		dst = slices.Grow(dst, n)
		return dst[:len(dst)+n], dst[len(dst) : len(dst)+n]
	}
	var out []byte
	switch t {
	case F32:
		dst, out = grow(4 * len(src))
		for i, v := range src {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
		}
		return dst, nil
	case F16:
		dst, out = grow(2 * len(src))
		for i, v := range src {
			binary.LittleEndian.PutUint16(out[2*i:], F32ToF16(v))
		}
		return dst, nil
	case BF16:
		dst, out = grow(2 * len(src))
		for i, v := range src {
			binary.LittleEndian.PutUint16(out[2*i:], F32ToBF16(v))
		}
		return dst, nil
	case Q8_0:
		if len(src)%32 != 0 {
			return dst, fmt.Errorf("quantize Q8_0: %d elements is not a multiple of 32: %w", len(src), ErrSize)
		}
		dst, out = grow(len(src) / 32 * 34)
		quantizeQ8_0(out, src)
		return dst, nil
	}
	return dst, fmt.Errorf("quantize to %s is not implemented (F32, F16, BF16, Q8_0 are): %w", t, ErrUnsupportedType)
}

// QuantizeQ8_0 encodes src (len a multiple of 32) as Q8_0 blocks, as ggml's
// quantize_row_q8_0_ref: d = absmax/127, q = round(x/d) half away from zero.
func QuantizeQ8_0(src []float32) ([]byte, error) { return AppendQuantize(nil, Q8_0, src) }

// quantizeQ8_0 writes the len(src)/32 Q8_0 blocks of src to out.
func quantizeQ8_0(out []byte, src []float32) {
	for i := 0; i < len(src)/32; i++ {
		x := (*[32]float32)(src[i*32:])
		b := (*[34]byte)(out[i*34:])
		var amax float32
		for _, v := range x {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		binary.LittleEndian.PutUint16(b[0:2], F32ToF16(d))
		for j, v := range x {
			b[2+j] = byte(int8(math.Round(float64(v * id))))
		}
	}
}
