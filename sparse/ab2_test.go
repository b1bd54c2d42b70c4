package sparse

import (
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"
)

func TestABF16Stream(t *testing.T) {
	if os.Getenv("QSPARSE_AB") == "" {
		t.Skip()
	}
	r := rand.New(rand.NewPCG(9, 9))
	rows, cols := 4096, 11008
	h := randF16(r, rows*cols)
	pk, _ := PackF16Cols(h, rows, cols)
	x := randF32(r, cols)
	y := make([]float32, rows)
	all := TopK(nil, x, cols)
	vals := Gather(nil, x, all)
	acc := make([]float32, 4096)
	var td, ts, ts1, tg []time.Duration
	p := NewPool(1)
	defer p.Close()
	for round := 0; round < 25; round++ {
		t0 := time.Now()
		GemvF16(y, h, x, rows, cols)
		td = append(td, time.Since(t0))
		t0 = time.Now()
		p.GemvF16(y, h, x, rows, cols)
		ts = append(ts, time.Since(t0))
		t0 = time.Now()
		for r0 := 0; r0 < rows; r0 += 4096 {
			sparseF16Rows(y, pk, all, vals, acc, r0, min(r0+4096, rows))
		}
		ts1 = append(ts1, time.Since(t0))
		t0 = time.Now()
		GemmF16(y, x, h, 1, rows, cols)
		tg = append(tg, time.Since(t0))
	}
	for i, tt := range [][]time.Duration{td, ts, ts1, tg} {
		slices.Sort(tt)
		t.Logf("%d: best %v (%.1f GB/s) median %v", i, tt[0], float64(2*rows*cols)/tt[0].Seconds()/1e9, tt[len(tt)/2])
	}
}
