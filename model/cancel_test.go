package model

import (
	"context"
	"errors"
	"testing"
)

// TestForwardStopsOnContext: a cancelled context stops Forward before its next layer, so a long
// prefill answers Ctrl-C at once; without a context Forward runs through.
func TestForwardStopsOnContext(t *testing.T) {
	m := loadStories(t, LoadOptions{Threads: 2})
	st := m.NewState(256)
	toks := make([]int, 200)
	for i := range toks {
		toks[i] = 1 + i%100
	}
	logits := make([]float32, m.Spec.Vocab)
	ctx, cancel := context.WithCancel(context.Background())
	st.SetContext(ctx)
	if err := st.Forward(toks, 0, logits); err != nil {
		t.Fatalf("live context: %v", err)
	}
	cancel()
	if err := st.Forward(toks, 0, logits); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: err %v, want context.Canceled", err)
	}
	st.SetContext(nil)
	if err := st.Forward(toks, 0, logits); err != nil {
		t.Fatalf("context removed: %v", err)
	}
}
