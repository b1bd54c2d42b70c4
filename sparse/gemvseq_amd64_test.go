//go:build amd64 && !purego

package sparse

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestGemvSeqTile: the two fp16 GEMV paths over short rows (the sequential kernel, chosen on
// AMD, and the 1-token tile, chosen elsewhere) give the same bits on every SIMD backend, and
// both agree with the float64 reference, whichever one this machine's dispatch picks.
func TestGemvSeqTile(t *testing.T) {
	old := gemvSeq
	defer func() { gemvSeq = old }()
	t.Logf("CPU vendor %q, sequential short-row GEMV: %v", vendorString(), old)
	forEachBackend(t, func(t *testing.T) {
		if Backend() == "purego" {
			t.Skip("no SIMD paths to compare")
		}
		r := rand.New(rand.NewPCG(7, 8))
		shapes := append([][2]int{{1, 8}, {7, 16}, {8, 64}, {9, 576}, {30, 576}, {31, 1536}, {3, 100}}, gemvShapes...)
		for _, sh := range shapes {
			rows, cols := sh[0], sh[1]
			x := withGuardsF32(randF32(r, cols))
			h := withGuardsU16(randF16(r, rows*cols))
			var got [2][]float32
			for i, seq := range []bool{true, false} {
				gemvSeq = seq
				y, chk := guardedF32(rows, 0)
				GemvF16(y, h, x, rows, cols)
				chk(t)
				for j := 0; j < rows; j++ {
					want, abs := refDot(x, func(c int) float32 { return F16ToF32(h[j*cols+c]) })
					checkClose(t, fmt.Sprintf("GemvF16 seq=%v %dx%d row %d", seq, rows, cols, j), y[j], want, abs, cols)
				}
				got[i] = append([]float32(nil), y...)
			}
			if !equalBits(got[0], got[1]) {
				t.Fatalf("%dx%d: sequential and tile GEMV differ: %v / %v", rows, cols, got[0], got[1])
			}
		}
	})
}

func vendorString() string {
	b, d, c := cpuVendor()
	var s []byte
	for _, v := range []uint32{b, d, c} {
		s = append(s, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
	}
	return string(s)
}
