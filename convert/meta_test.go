package convert

import (
	"math"
	"testing"

	"github.com/qsparse/qsparse/model"
)

// TestRopeFreqsLlama3: the rope_freqs.weight values written for an HF llama3-scaled model are
// llama.cpp's converter's: 1 for high frequencies, factor for low ones, a smooth blend between.
func TestRopeFreqsLlama3(t *testing.T) {
	m := &model.Model{Spec: model.Spec{HeadDim: 128, RopeTheta: 500000,
		RopeScaling: model.RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OrigCtxLen: 8192}}}
	f := ropeFreqs(&m.Spec, nil)
	if len(f) != 64 || f[0] != 1 || f[63] != 8 {
		t.Fatalf("rope_freqs %v", f)
	}
	for i, v := range f {
		freq := 1 / math.Pow(500000, float64(2*i)/128)
		wl := 2 * math.Pi / freq
		if wl > 2048 && wl < 8192 {
			smooth := (8192/wl - 1) / 3
			if want := 1 / ((1-smooth)/8 + smooth); math.Abs(float64(v)-want) > 1e-5*want {
				t.Errorf("pair %d: %g, want %g", i, v, want)
			}
		}
		if i > 0 && v < f[i-1] {
			t.Errorf("pair %d: %g < %g: not monotone", i, v, f[i-1])
		}
	}
	m.Spec.RopeScaling = model.RopeScaling{}
	if ropeFreqs(&m.Spec, nil) != nil {
		t.Error("rope_freqs written without scaling")
	}
}

func TestGGUFRowToHF(t *testing.T) {
	// head dim 4: GGUF rows 0,1,2,3 hold HF rows 0,2,1,3 (pairs (0,2) and (1,3) interleaved)
	for r, want := range []int{0, 2, 1, 3, 4, 6, 5, 7} {
		if got := ggufRowToHF(r, 4); got != want {
			t.Errorf("ggufRowToHF(%d) = %d, want %d", r, got, want)
		}
	}
}
