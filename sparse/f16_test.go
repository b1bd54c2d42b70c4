package sparse

import (
	"math"
	"os"
	"testing"

	"github.com/x448/float16"
	"golang.org/x/sys/cpu"
)

func sameF32(a, b float32) bool {
	if a != a && b != b { // both NaN: compare payload bits too
		return math.Float32bits(a) == math.Float32bits(b)
	}
	return math.Float32bits(a) == math.Float32bits(b)
}

// TestF16ToF32All checks every one of the 65,536 fp16 values against x448/float16, through the
// scalar function and the active backend's slice conversion.
func TestF16ToF32All(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		src := make([]uint16, 65536)
		for i := range src {
			src[i] = uint16(i)
		}
		dst, chk := guardedF32(65536, 0)
		f16ToF32(dst, src)
		chk(t)
		for i := range src {
			want := float16.Frombits(uint16(i)).Float32()
			if got := F16ToF32(uint16(i)); !sameF32(got, want) {
				t.Fatalf("F16ToF32(%#04x) = %#08x want %#08x", i, math.Float32bits(got), math.Float32bits(want))
			}
			if !sameF32(dst[i], want) {
				t.Fatalf("backend f16ToF32(%#04x) = %#08x want %#08x", i, math.Float32bits(dst[i]), math.Float32bits(want))
			}
		}
	})
}

func TestF32ToF16(t *testing.T) {
	// every fp16 value round-trips, and a sweep of float32 values matches x448/float16.
	for i := 0; i < 65536; i++ {
		f := F16ToF32(uint16(i))
		if f != f {
			continue
		}
		if got := F32ToF16(f); got != uint16(i) {
			t.Fatalf("round trip %#04x -> %#04x", i, got)
		}
	}
	for b := uint64(0); b < 1<<32; b += 9973 {
		f := math.Float32frombits(uint32(b))
		if f != f {
			continue
		}
		want := float16.Fromfloat32(f).Bits()
		if got := F32ToF16(f); got != want {
			t.Fatalf("F32ToF16(%#08x) = %#04x want %#04x", b, got, want)
		}
	}
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
