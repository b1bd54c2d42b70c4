package gguf

import (
	"math"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
)

// TestQuantVectors checks every tensor of quants.gguf against dequant-ref.gguf, element by
// element (float compare, so -0 == +0), and also the sign of zero against ggml.
func TestQuantVectors(t *testing.T) {
	q, err := Open(testenv.Path(t, "quant-vectors/quants.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ref, err := Open(testenv.Path(t, "quant-vectors/dequant-ref.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	if len(q.Tensors) != 17 {
		t.Fatalf("quants.gguf has %d tensors, want 17", len(q.Tensors))
	}
	for _, qt := range q.Tensors {
		t.Run(qt.Name, func(t *testing.T) {
			if qt.Type.String() != qt.Name {
				t.Fatalf("tensor %s has type %s", qt.Name, qt.Type)
			}
			rt, ok := ref.Tensor(qt.Name)
			if !ok || rt.Type != F32 {
				t.Fatalf("reference tensor %s missing or not F32", qt.Name)
			}
			want := make([]float32, rt.NumElements())
			if err := rt.Dequantize(want); err != nil {
				t.Fatal(err)
			}
			got := make([]float32, qt.NumElements())
			if err := qt.Dequantize(got); err != nil {
				t.Fatal(err)
			}
			bad, signs := 0, 0
			for i := range got {
				if got[i] != want[i] {
					if bad < 5 {
						t.Errorf("element %d (row %d col %d): got %g want %g", i, i/512, i%512, got[i], want[i])
					}
					bad++
				} else if math.Signbit(float64(got[i])) != math.Signbit(float64(want[i])) {
					signs++
				}
			}
			if bad > 0 {
				t.Fatalf("%d of %d elements differ", bad, len(got))
			}
			if signs > 0 {
				t.Errorf("%d zeros have the wrong sign (ggml formula shape not followed)", signs)
			}
			// Row-range decoding gives the same values.
			part := make([]float32, 3*512)
			if err := qt.DequantizeRows(part, 60, 3); err != nil {
				t.Fatal(err)
			}
			for i := range part {
				if math.Float32bits(part[i]) != math.Float32bits(got[60*512+i]) {
					t.Fatalf("DequantizeRows element %d differs", i)
				}
			}
		})
	}
}
