package sparse

import (
	"math"
	"os"
	"testing"

	"golang.org/x/sys/cpu"
)

func sameF32(a, b float32) bool {
	if a != a && b != b { // both NaN: compare payload bits too
		return math.Float32bits(a) == math.Float32bits(b)
	}
	return math.Float32bits(a) == math.Float32bits(b)
}

// TestF16ToF32All checks the active backend's slice conversion on every one of the 65,536 fp16
// values against the scalar F16ToF32 (internal/half, itself checked against x448/float16).
func TestF16ToF32All(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		src := make([]uint16, 65536)
		for i := range src {
			src[i] = uint16(i)
		}
		dst, chk := guardedF32(65536, 0)
		F16ToF32Slice(dst, src)
		chk(t)
		for i := range src {
			want := F16ToF32(uint16(i))
			if !sameF32(dst[i], want) {
				t.Fatalf("backend f16ToF32(%#04x) = %#08x want %#08x", i, math.Float32bits(dst[i]), math.Float32bits(want))
			}
		}
	})
}

// TestF32ToF16Slice: every backend's slice conversion equals the scalar F32ToF16 (and so
// x448/float16, see internal/half) on a sweep of float32 bit patterns, specials and fp16 boundaries included.
func TestF32ToF16Slice(t *testing.T) {
	var src []float32
	for b := uint64(0); b < 1<<32; b += 4099 {
		src = append(src, math.Float32frombits(uint32(b)))
	}
	for i := 0; i < 65536; i++ { // every fp16 value and the midpoints next to it
		f := F16ToF32(uint16(i))
		src = append(src, f, math.Nextafter32(f, float32(math.Inf(1))), math.Nextafter32(f, float32(math.Inf(-1))))
	}
	for _, v := range []float32{65504, 65520, 65519.996, 6.1035156e-05, 5.9604645e-08, 2.9802322e-08, 2.9802326e-08} {
		src = append(src, v, -v)
	}
	want := make([]uint16, len(src))
	for i, f := range src {
		want[i] = F32ToF16(f)
	}
	forEachBackend(t, func(t *testing.T) {
		for _, n := range []int{len(src), 0, 1, 15, 16, 17, 33} {
			got := make([]uint16, n)
			F32ToF16Slice(got, src[:n])
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("F32ToF16Slice(%#08x) = %#04x, F32ToF16 gives %#04x", math.Float32bits(src[i]), got[i], want[i])
				}
			}
		}
	})
}

// TestBackendSelected asserts which backend runs: the one QSPARSE_KERNEL forces, else the best
// the CPU offers in this build.
func TestBackendSelected(t *testing.T) {
	got := Backend()
	if want := os.Getenv("QSPARSE_KERNEL"); want != "" {
		if got != want {
			t.Fatalf("QSPARSE_KERNEL=%s but backend %s runs", want, got)
		}
		t.Logf("backend %s (forced by QSPARSE_KERNEL; available %v)", got, Backends())
		return
	}
	want := "purego"
	if archHasSIMD {
		switch {
		case cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasFMA && cpu.X86.HasAVX2 && cpu.X86.HasF16C:
			want = "avx512"
		case cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C:
			want = "avx2"
		}
	}
	if got != want {
		t.Fatalf("backend %s runs, want %s (cpu: avx2=%v fma=%v f16c=%v avx512f=%v)", got, want,
			cpu.X86.HasAVX2, cpu.X86.HasFMA, cpu.X86.HasF16C, cpu.X86.HasAVX512F)
	}
	t.Logf("backend %s (available %v)", got, Backends())
}
