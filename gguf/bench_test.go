package gguf

import (
	"runtime"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
)

// BenchmarkOpenSmolLM2 times Open+Close of the 98 MB SmolLM2 GGUF. heap-B/op (bytes allocated per
// Open: metadata, 49k tokens, merges, tensor infos) against file-B shows tensor data is mapped,
// not read into the heap.
func BenchmarkOpenSmolLM2(b *testing.B) {
	path := testenv.SmolLM2Path(b)
	b.ReportAllocs()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	var size int64
	for i := 0; i < b.N; i++ {
		f, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		size = f.Size
		f.Close()
	}
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(b.N), "heap-B/op")
	b.ReportMetric(float64(size), "file-B")
}

// BenchmarkDequantize decodes one 576x1536 matrix of each common type (bytes/s = input bytes).
func BenchmarkDequantize(b *testing.B) {
	const rows, cols = 1536, 576
	src := make([]float32, rows*cols)
	for i := range src {
		src[i] = float32(i%97-48) * 0.001
	}
	for _, typ := range []Type{F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K} {
		b.Run(typ.String(), func(b *testing.B) {
			n := rows * cols / 256 * 256
			data := make([]byte, n/typ.BlockSize()*typ.BlockBytes())
			if q, err := Quantize(typ, src[:n]); err == nil {
				data = q
			} else {
				for i := range data {
					data[i] = byte(i * 7)
				}
			}
			dst := make([]float32, n)
			b.SetBytes(int64(n) * 4)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := Dequantize(typ, data, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
