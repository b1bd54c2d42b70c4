package sparse

import (
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"
)

func TestABTernaryChunk(t *testing.T) {
	if os.Getenv("QSPARSE_AB") == "" {
		t.Skip()
	}
	r := rand.New(rand.NewPCG(9, 9))
	rows, cols := 4096, 11008
	tp, _ := PackTernary(randTernary(r, rows*cols), []float32{0.5}, rows, cols)
	pk, _ := PackF16Cols(randF16(r, rows*cols), rows, cols)
	x := randF32(r, cols)
	y := make([]float32, rows)
	idx := TopK(nil, x, cols/2)
	vals := make([]float32, len(idx))
	ternaryVals(vals, tp, x, idx)
	acc := make([]float32, 2*4096)
	chunks := []int{512, 1024, 2048, 4096}
	times := make([][]time.Duration, len(chunks)+1)
	for round := 0; round < 25; round++ {
		for ci, c := range chunks {
			t0 := time.Now()
			for r0 := 0; r0 < rows; r0 += c {
				sparseTernaryRows(y, tp, idx, vals, acc, 0.5, r0, min(r0+c, rows))
			}
			times[ci] = append(times[ci], time.Since(t0))
		}
		t0 := time.Now()
		for r0 := 0; r0 < rows; r0 += 2048 {
			sparseF16Rows(y, pk, idx, vals, acc, r0, min(r0+2048, rows))
		}
		times[len(chunks)] = append(times[len(chunks)], time.Since(t0))
	}
	hot := make([]int32, len(idx))
	for i := range hot {
		hot[i] = int32(i % 16)
	}
	var hotT []time.Duration
	for round := 0; round < 25; round++ {
		t0 := time.Now()
		for r0 := 0; r0 < rows; r0 += 2048 {
			sparseTernaryRows(y, tp, hot, vals, acc, 0.5, r0, min(r0+2048, rows))
		}
		hotT = append(hotT, time.Since(t0))
	}
	slices.Sort(hotT)
	t.Logf("ternary cache-hot: best %v", hotT[0])
	for ci := range times {
		slices.Sort(times[ci])
		name := "f16 2048"
		if ci < len(chunks) {
			name = "ternary " + string(rune('0'+ci))
		}
		t.Logf("%s: best %v median %v", name, times[ci][0], times[ci][len(times[ci])/2])
	}
}
