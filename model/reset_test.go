package model

import (
	"math"
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

// TestRewindZeroesStaleValues: decoding again from an earlier position without Reset must
// not let the values of the longer sequence (here poisoned with NaN) into attention's padded
// reads: storeValues zeroes the stale positions of the 16-position block it writes into, and
// the logits equal a fresh State's.
func TestRewindZeroesStaleValues(t *testing.T) {
	m := loadStories(t, LoadOptions{Threads: 2})
	toks := []int{1, 400, 300, 200, 100, 50, 25, 12, 6, 3, 9, 8, 7, 6, 5, 4, 3, 2, 1, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71}
	st := m.NewState(64)
	logits := make([]float32, m.Spec.Vocab)
	for pos, tok := range toks {
		if err := st.Forward([]int{tok}, pos, logits); err != nil {
			t.Fatal(err)
		}
	}
	kvdim := m.Spec.KVDim()
	for l := range m.Spec.NLayers {
		for c := range kvdim {
			row := st.valCache[(l*kvdim+c)*st.ctxPad:][:st.ctxPad]
			for p := 3; p < len(toks); p++ {
				row[p] = float32(math.NaN())
			}
		}
	}
	fresh := m.NewState(64)
	want := make([]float32, m.Spec.Vocab)
	for pos, tok := range []int{1, 400, 300, 5} {
		if err := fresh.Forward([]int{tok}, pos, want); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Forward([]int{5}, 3, logits); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Float32bits(logits[i]) != math.Float32bits(want[i]) {
			t.Fatalf("logit %d after a rewind: %v, fresh State %v", i, logits[i], want[i])
		}
	}
}
