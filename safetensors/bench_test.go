package safetensors

import "testing"

func BenchmarkFloat32(b *testing.B) {
	const n = 1 << 20
	vals := testValues(n, 1)
	for _, dt := range []DType{F32, F16, BF16} {
		t, err := FromFloat32("w", dt, []int{n}, vals)
		if err != nil {
			b.Fatal(err)
		}
		dst := make([]float32, n)
		b.Run(string(dt), func(b *testing.B) {
			b.SetBytes(int64(len(t.Data)))
			for b.Loop() {
				if err := t.Float32(dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
