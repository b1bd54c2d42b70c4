package model

import (
	"slices"
	"testing"
)

// TestResetClearsWritten: Reset zeroes every KV cache position written before it (in both
// caches, across prefill and decode steps), as a new State's are.
func TestResetClearsWritten(t *testing.T) {
	m := loadStories(t, LoadOptions{Threads: 2})
	st := m.NewState(100)
	logits := make([]float32, m.Spec.Vocab)
	toks := []int{1, 400, 300, 200, 100, 50, 25, 12, 6, 3, 9, 8, 7, 6, 5, 4, 3, 2, 1, 11}
	if err := st.Forward(toks, 0, logits); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := st.Forward([]int{toks[i]}, len(toks)+i, logits); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.ContainsFunc(st.keyCache, func(v float32) bool { return v != 0 }) ||
		!slices.ContainsFunc(st.valCache, func(v float32) bool { return v != 0 }) {
		t.Fatal("nothing written to the KV cache")
	}
	st.Reset()
	for i, v := range st.keyCache {
		if v != 0 {
			t.Fatalf("key cache value %d is %v after Reset", i, v)
		}
	}
	for i, v := range st.valCache {
		if v != 0 {
			t.Fatalf("value cache value %d is %v after Reset", i, v)
		}
	}
}
