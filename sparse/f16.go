package sparse

import (
	"math"
	"sync"
)

// F16ToF32 converts IEEE 754 binary16 bits to float32 exactly (subnormals, infinities and NaN
// payloads included), the same as the F16C instruction VCVTPH2PS.
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // Inf or NaN: keep the payload, quiet the NaN
		if mant != 0 {
			return math.Float32frombits(sign | 0x7fc00000 | mant<<13)
		}
		return math.Float32frombits(sign | 0x7f800000)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// subnormal: normalise
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		mant &= 0x3ff
		return math.Float32frombits(sign | e<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// F32ToF16 converts float32 to IEEE 754 binary16 bits, rounding to nearest even (as VCVTPS2PH
// with rounding mode 0). NaNs stay NaNs (quieted, payload truncated).
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		m := mant | 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		r := m >> shift
		rem := m & (1<<shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, up to Inf: correct
	}
	return sign | uint16(r)
}

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

var (
	f16TabOnce sync.Once
	f16Tab     *[65536]float32
)

// f16Table returns the 65,536-entry conversion table used by the pure-Go kernels.
func f16Table() *[65536]float32 {
	f16TabOnce.Do(func() {
		t := new([65536]float32)
		for i := range t {
			t[i] = F16ToF32(uint16(i))
		}
		f16Tab = t
	})
	return f16Tab
}
