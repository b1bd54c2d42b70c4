package model

import "testing"

func TestBytesPerToken(t *testing.T) {
	m := loadStories(t, LoadOptions{})
	dense := m.DenseBytesPerToken()
	if got := m.BytesPerToken(nil); got != dense {
		t.Fatalf("nil profile: %d bytes, dense %d", got, dense)
	}
	p0, _ := UniformProfile(&m.Spec, 0)
	if got := m.BytesPerToken(p0); got != dense {
		t.Fatalf("sparsity 0: %d bytes, dense %d", got, dense)
	}
	// Every site width of stories260K is even: 50% drops exactly half of every site's bytes.
	var sites int64
	for l := range m.W.Layers {
		L := &m.W.Layers[l]
		for _, w := range []*Matrix{L.Q, L.K, L.V, L.O, L.Gate, L.Up, L.Down} {
			sites += w.Bytes()
		}
	}
	p5, _ := UniformProfile(&m.Spec, 0.5)
	if got := m.BytesPerToken(p5); got != dense-sites/2 {
		t.Fatalf("sparsity 0.5: %d bytes, want %d - %d/2", got, dense, sites)
	}
	// One site: only its matrices shrink.
	p := uniformProfileOrDie(t, &m.Spec, 0)
	p.Keep[2][MLPDown] = 0
	if got, want := m.BytesPerToken(p), dense-m.W.Layers[2].Down.Bytes(); got != want {
		t.Fatalf("layer 2 mlp_down off: %d bytes, want %d", got, want)
	}
}

func uniformProfileOrDie(t *testing.T, sp *Spec, r float64) *Profile {
	t.Helper()
	p, err := UniformProfile(sp, r)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
