package model

import "testing"

// A State switched from a weighted to a magnitude profile scores by |x| again.
func TestSetProfileReuse(t *testing.T) {
	m := loadStories(t, LoadOptions{})
	toks := m.Tok.Encode("Once upon a time, there was a little girl who liked to play outside.", true, false)
	mag, _ := UniformProfile(&m.Spec, 0.5)
	wtd := mag.Clone()
	wtd.Scoring = ScoreWeighted
	run := func(st *State, p *Profile) []float32 {
		t.Helper()
		if err := st.SetProfile(p); err != nil {
			t.Fatal(err)
		}
		st.Reset()
		out := make([]float32, m.Spec.Vocab)
		if err := st.Forward(toks, 0, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	fresh := run(m.NewState(64), mag)
	reused := m.NewState(64)
	w := run(reused, wtd)
	got := run(reused, mag)
	same := true
	for i := range fresh {
		if got[i] != fresh[i] {
			t.Fatalf("logit %d: reused State %v, fresh State %v", i, got[i], fresh[i])
		}
		same = same && w[i] == fresh[i]
	}
	if same {
		t.Error("weighted and magnitude scoring gave the same logits; the test checks nothing")
	}
}
