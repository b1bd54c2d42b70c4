package eval

import (
	"context"
	"errors"
	"testing"
)

// Replayed logits give exactly the KL divergence of running the base model again, from memory
// and from a file; a replay with other options is refused.
func TestLogitCacheReplay(t *testing.T) {
	tokens := testTokens(300, 10)
	opts := PPLOptions{Ctx: 32, Batch: 12, Vocab: 10, BOS: 1}
	want, err := KLDivergenceWith(context.Background(), &fakeLM{vocab: 10}, &fakeLM{vocab: 10, salt: 0.3}, tokens, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, budget := range []int64{1 << 30, 1} {
		c, err := newLogitCache(1000, budget, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if c.OnDisk() != (budget == 1) {
			t.Fatalf("budget %d: on disk %v", budget, c.OnDisk())
		}
		base, err := PerplexityWith(context.Background(), &recorder{inner: &fakeLM{vocab: 10}, cache: c}, tokens, opts)
		if err != nil || c.err != nil {
			t.Fatal(err, c.err)
		}
		for round := 0; round < 2; round++ {
			got, err := KLDivergenceWith(context.Background(), &replayer{cache: c}, &fakeLM{vocab: 10, salt: 0.3}, tokens, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got.KLD != want.KLD || got.SameTop != want.SameTop || got.BasePPL != want.BasePPL || got.BasePPL != base.PPL {
				t.Fatalf("budget %d: replayed %+v, recomputed %+v", budget, got, want)
			}
		}
		other := opts
		other.Batch = 8
		if _, err := KLDivergenceWith(context.Background(), &replayer{cache: c}, &fakeLM{vocab: 10}, tokens, other); !errors.Is(err, errCacheStep) {
			t.Errorf("replay with another batch: %v", err)
		}
	}
}
