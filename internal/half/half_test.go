package half

import (
	"math"
	"testing"

	"github.com/x448/float16"
)

func sameBits(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }

// TestF16ToF32All: every fp16 bit pattern converts as x448/float16 does (= VCVTPH2PS), and the
// table holds the same values.
func TestF16ToF32All(t *testing.T) {
	tab := F16Table()
	for i := range 65536 {
		want := float16.Frombits(uint16(i)).Float32()
		if got := F16ToF32(uint16(i)); !sameBits(got, want) {
			t.Fatalf("F16ToF32(%#04x) = %#08x want %#08x", i, math.Float32bits(got), math.Float32bits(want))
		}
		if !sameBits(tab[i], want) {
			t.Fatalf("F16Table()[%#04x] = %#08x want %#08x", i, math.Float32bits(tab[i]), math.Float32bits(want))
		}
	}
}

// TestF32ToF16: every fp16 value round-trips, and a sweep of float32 bit patterns (with the
// midpoints next to every fp16 value) rounds as x448/float16 does.
func TestF32ToF16(t *testing.T) {
	check := func(f float32) {
		t.Helper()
		if got, want := F32ToF16(f), float16.Fromfloat32(f).Bits(); got != want {
			t.Fatalf("F32ToF16(%#08x) = %#04x want %#04x", math.Float32bits(f), got, want)
		}
	}
	for i := range 65536 {
		f := F16ToF32(uint16(i))
		if f == f && F32ToF16(f) != uint16(i) {
			t.Fatalf("fp16 %#04x does not round-trip", i)
		}
		check(f)
		check(math.Nextafter32(f, float32(math.Inf(1))))
		check(math.Nextafter32(f, float32(math.Inf(-1))))
	}
	for b := uint64(0); b < 1<<32; b += 9973 {
		check(math.Float32frombits(uint32(b)))
	}
}

// TestBF16: bfloat16 conversions round to nearest even, keep NaNs quiet, and round-trip.
func TestBF16(t *testing.T) {
	for _, c := range []struct {
		in   uint32
		want uint16
	}{
		{0x3f800000, 0x3f80}, {0x3f808000, 0x3f80}, {0x3f818000, 0x3f82}, {0x3f808001, 0x3f81},
		{0x7f800000, 0x7f80}, {0xff800000, 0xff80}, {0x7f800001, 0x7fc0}, {0xff800001, 0xffc0},
		{0x7f7fffff, 0x7f80}, // rounds up to +Inf
	} {
		if got := F32ToBF16(math.Float32frombits(c.in)); got != c.want {
			t.Errorf("F32ToBF16(%#08x) = %#04x want %#04x", c.in, got, c.want)
		}
	}
	for i := range 65536 {
		f := BF16ToF32(uint16(i))
		if math.Float32bits(f) != uint32(i)<<16 {
			t.Fatalf("BF16ToF32(%#04x)", i)
		}
		if f == f && F32ToBF16(f) != uint16(i) {
			t.Fatalf("bf16 %#04x does not round-trip", i)
		}
	}
}
