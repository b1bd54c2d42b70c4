package model

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProfileFileRoundTrip(t *testing.T) {
	m := loadStories(t, LoadOptions{Threads: 2})
	sp := &m.Spec
	p, err := UniformProfile(sp, 0.4)
	if err != nil {
		t.Fatal(err)
	}
	p.Keep[2][MLPDown] = 17
	p.Scoring = ScoreWeighted
	p.Rescale = true
	p.Calibration = &Calibration{Method: "teal", Target: 0.4, Tokens: 1024, Sparsity: 0.41}
	path := filepath.Join(t.TempDir(), "p.json")
	if err := WriteProfile(path, sp, p); err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(path)
	q, err := ReadProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Validate(sp); err != nil {
		t.Fatal(err)
	}
	if q.Keep[2][MLPDown] != 17 || q.Keep[0][AttnIn] != p.Keep[0][AttnIn] || q.Scoring != ScoreWeighted || !q.Rescale ||
		q.Calibration.Method != "teal" || q.Model.Fingerprint != Fingerprint(sp) {
		t.Fatalf("round trip lost data: %+v", q)
	}
	var b2 bytes.Buffer
	if err := EncodeProfile(&b2, sp, q); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1, b2.Bytes()) {
		t.Fatalf("re-encoding differs:\n%s\n---\n%s", b1, b2.Bytes())
	}
	for _, s := range []string{`"format": "qsparse-profile"`, `"version": 1`, `"mlp_down"`, `"fingerprint"`} {
		if !strings.Contains(string(b1), s) {
			t.Errorf("profile file lacks %s", s)
		}
	}
}

func TestProfileBadInput(t *testing.T) {
	m := loadStories(t, LoadOptions{Threads: 1})
	sp := &m.Spec
	for _, r := range []float64{-0.1, 1, 1.5, math.NaN()} {
		if _, err := UniformProfile(sp, r); !errors.Is(err, ErrBadProfile) {
			t.Errorf("UniformProfile(%v): err %v, want ErrBadProfile", r, err)
		}
	}
	if _, err := BlockProfile(sp, 2, 7); !errors.Is(err, ErrBadProfile) { // 7 divides no width of stories260K
		t.Errorf("BlockProfile 2:7: %v", err)
	}
	if _, err := ParseScoring("loud"); !errors.Is(err, ErrBadProfile) {
		t.Errorf("ParseScoring: %v", err)
	}
	other := *sp
	other.NLayers++
	p, _ := UniformProfile(&other, 0.5)
	p.Model = NewModelID(&other)
	if err := m.NewState(8).SetProfile(p); !errors.Is(err, ErrBadProfile) {
		t.Errorf("profile of another model: %v", err)
	}
	p, _ = UniformProfile(sp, 0.5)
	p.Model = NewModelID(sp)
	p.Model.Fingerprint = "0123456789abcdef"
	if err := m.NewState(8).SetProfile(p); !errors.Is(err, ErrBadProfile) || !strings.Contains(err.Error(), "fingerprint") {
		t.Errorf("profile with another fingerprint: %v", err)
	}
	for _, js := range []string{``, `{}`, `{"format":"qsparse-profile","version":9,"layers":[]}`,
		`{"format":"qsparse-profile","version":1,"scoring":"magnitude","layers":[{"attn_in":{"k":1}}]}`,
		`{"format":"qsparse-profile","version":1,"scoring":"magnitude","layers":[{"bogus":{"k":1}}]}`} {
		if _, err := DecodeProfile(strings.NewReader(js)); !errors.Is(err, ErrBadProfile) {
			t.Errorf("DecodeProfile(%q): %v", js, err)
		}
	}
}

// TestProfileModes checks the weighted, N:M and rescale reference masks row by row.
func TestProfileModes(t *testing.T) {
	m := loadStories(t, LoadOptions{Threads: 2})
	sp := &m.Spec
	toks := m.Tok.Encode(textPrefix(t, "tinystories_valid_first1000.txt", 300), true, false)[:24]
	logits := func(p *Profile) []float32 {
		st := m.NewState(32)
		if err := st.SetProfile(p); err != nil {
			t.Fatal(err)
		}
		out := make([]float32, sp.Vocab)
		if err := st.Forward(toks, 0, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	base, _ := UniformProfile(sp, 0.5)
	w := base.Clone()
	w.Scoring = ScoreWeighted
	r := base.Clone()
	r.Rescale = true
	b, err := BlockProfile(sp, 2, 4)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.ByteSparsity(sp); math.Abs(got-0.5) > 1e-12 {
		t.Errorf("2:4 byte sparsity %v, want 0.5", got)
	}
	ref := logits(base)
	for name, p := range map[string]*Profile{"weighted": w, "rescale": r, "2:4": b} {
		got := logits(p)
		diff := 0.0
		for i := range got {
			diff = math.Max(diff, math.Abs(float64(got[i]-ref[i])))
		}
		if diff == 0 {
			t.Errorf("%s gives the same logits as plain top-K: mode not applied", name)
		}
	}
	// The masks themselves.
	st := m.NewState(8)
	if err := st.SetProfile(b); err != nil {
		t.Fatal(err)
	}
	in := []float32{1, -3, 2, 0.5, 9, 8, -7, 1}
	got := st.mask(in, 1, 8, 4)
	want := []float32{0, -3, 2, 0, 9, 8, 0, 0}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("2:4 mask %v, want %v", got, want)
		}
	}
	if err := st.SetProfile(r); err != nil {
		t.Fatal(err)
	}
	got = st.mask([]float32{3, 4, 0, 0, 0, 0, 0, 1}, 1, 8, 2)
	f := float32(math.Sqrt(26.0 / 25))
	if got[0] != 3*f || got[1] != 4*f || got[7] != 0 {
		t.Fatalf("rescaled mask %v, want 3·%v 4·%v", got, f, f)
	}
}
