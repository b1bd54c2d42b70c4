package sparse

import "github.com/qsparse/qsparse/internal/half"

// F16ToF32 converts IEEE 754 binary16 bits to float32 exactly (subnormals, infinities and NaN
// payloads included), the same as the F16C instruction VCVTPH2PS.
func F16ToF32(h uint16) float32 { return half.F16ToF32(h) }

// F32ToF16 converts float32 to IEEE 754 binary16 bits, rounding to nearest even (as VCVTPS2PH
// with rounding mode 0). NaNs stay NaNs (quieted, payload truncated).
func F32ToF16(f float32) uint16 { return half.F32ToF16(f) }

// F16ToF32Slice converts len(src) fp16 values into dst[:len(src)] (SIMD when available,
// bit-identical to F16ToF32).
func F16ToF32Slice(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	if kern.f16ToF32 != nil {
		kern.f16ToF32(dst, src)
		return
	}
	for i, h := range src {
		dst[i] = F16ToF32(h)
	}
}

// F32ToF16Slice converts len(src) float32 values into dst[:len(src)], rounding to nearest
// even (SIMD when available, bit-identical to F32ToF16).
func F32ToF16Slice(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	if kern.f32ToF16 != nil {
		kern.f32ToF16(dst, src)
		return
	}
	for i, f := range src {
		dst[i] = F32ToF16(f)
	}
}

// f16Table returns the 65,536-entry conversion table used by the pure-Go kernels.
var f16Table = half.F16Table
