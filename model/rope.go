package model

import (
	"fmt"
	"math"
)

// ropeInvFreq returns the inverse frequency of each rotation pair i < headDim/2:
// theta^(-2i/headDim), adjusted for rope scaling (linear: divided by factor; llama3: the Llama 3.1
// band rule) and divided by the optional per-pair factors of a GGUF rope_freqs.weight tensor.
func ropeInvFreq(s *Spec, freqFactors []float32) ([]float64, error) {
	half := s.HeadDim / 2
	if freqFactors != nil && len(freqFactors) != half {
		return nil, fmt.Errorf("model %s: %s has %d values, want head_dim/2 = %d", s.Name, NameRopeFreqs, len(freqFactors), half)
	}
	inv := make([]float64, half)
	for i := range inv {
		f := 1 / math.Pow(s.RopeTheta, float64(2*i)/float64(s.HeadDim))
		switch sc := s.RopeScaling; sc.Type {
		case "linear":
			f /= sc.Factor
		case "llama3":
			lowWavelen := float64(sc.OrigCtxLen) / sc.LowFreqFactor
			highWavelen := float64(sc.OrigCtxLen) / sc.HighFreqFactor
			wavelen := 2 * math.Pi / f
			switch {
			case wavelen < highWavelen:
			case wavelen > lowWavelen:
				f /= sc.Factor
			default:
				smooth := (float64(sc.OrigCtxLen)/wavelen - sc.LowFreqFactor) / (sc.HighFreqFactor - sc.LowFreqFactor)
				f = (1-smooth)*f/sc.Factor + smooth*f
			}
		}
		if freqFactors != nil {
			if !(freqFactors[i] > 0) {
				return nil, fmt.Errorf("model %s: %s[%d] = %g is not positive", s.Name, NameRopeFreqs, i, freqFactors[i])
			}
			f /= float64(freqFactors[i])
		}
		inv[i] = f
	}
	return inv, nil
}

// ropeTable fills cos[i], sin[i] (len headDim/2) for position pos.
func ropeTable(cos, sin []float32, invFreq []float64, pos int) {
	for i, f := range invFreq {
		s, c := math.Sincos(float64(pos) * f)
		cos[i], sin[i] = float32(c), float32(s)
	}
}

// ropeRotateHalf rotates every head of x (nHeads*headDim values) in place with the rotate-half
// (NEOX / HF) convention: pair i is (x[i], x[i+headDim/2]).
func ropeRotateHalf(x []float32, nHeads, headDim int, cos, sin []float32) {
	half := headDim / 2
	for h := 0; h < nHeads; h++ {
		v := x[h*headDim : (h+1)*headDim]
		a, b := v[:half], v[half:half*2]
		for i := range half {
			x0, x1 := a[i], b[i]
			a[i] = x0*cos[i] - x1*sin[i]
			b[i] = x0*sin[i] + x1*cos[i]
		}
	}
}
