package model

import (
	"math"
	"testing"
)

// TestAttentionLong: decoding past attnLongKeys positions (attentionLong: scores by key chunks,
// softmax by head, P·V by KV head) gives exactly the logits of the per-head items, with key
// chunks that divide the context or not.
func TestAttentionLong(t *testing.T) {
	m := loadStories(t, LoadOptions{Threads: 2})
	if m.Spec.NHeads == m.Spec.NKVHeads {
		t.Fatalf("stories260K has no GQA (%d heads, %d KV heads)", m.Spec.NHeads, m.Spec.NKVHeads)
	}
	toks := m.Tok.Encode(textPrefix(t, "tinystories_valid_first1000.txt", 2000), true, false)
	const prompt, gen = 150, 8
	if len(toks) < prompt+gen {
		t.Fatalf("%d tokens of text, want %d", len(toks), prompt+gen)
	}
	V := m.Spec.Vocab
	run := func(longKeys, chunk int) []float32 {
		defer func(k, c int) { attnLongKeys, attnKeyChunk = k, c }(attnLongKeys, attnKeyChunk)
		attnLongKeys, attnKeyChunk = longKeys, chunk
		st := m.NewState(256)
		if err := st.Forward(toks[:prompt], 0, make([]float32, V)); err != nil {
			t.Fatal(err)
		}
		out := make([]float32, gen*V)
		for i := range gen {
			if err := st.Forward(toks[prompt+i:prompt+i+1], prompt+i, out[i*V:(i+1)*V]); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	perHead := run(math.MaxInt, 64)
	for _, chunk := range []int{64, 17, 1000} {
		long := run(1, chunk)
		for i := range perHead {
			if math.Float32bits(perHead[i]) != math.Float32bits(long[i]) {
				t.Fatalf("key chunk %d: token %d logit %d: per-head items %v, attentionLong %v", chunk, i/V, i%V, perHead[i], long[i])
			}
		}
	}
}

// TestAttentionLongNoAlloc: a decode step past attnLongKeys allocates nothing.
func TestAttentionLongNoAlloc(t *testing.T) {
	m := loadStories(t, LoadOptions{Threads: 2})
	st := m.NewState(attnLongKeys + 64)
	logits := make([]float32, m.Spec.Vocab)
	pos := attnLongKeys
	allocs := testing.AllocsPerRun(10, func() {
		if err := st.Forward([]int{5}, pos, logits); err != nil {
			t.Fatal(err)
		}
		pos++
	})
	if allocs != 0 {
		t.Errorf("decode step at %d positions: %v allocations", attnLongKeys, allocs)
	}
}
