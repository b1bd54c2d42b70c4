package eval

import (
	"context"
	"fmt"

	"github.com/qsparse/qsparse/model"
)

// Tokenize tokenizes a whole evaluation text as llama-perplexity does: BOS added when the
// vocab adds BOS, special-token text not parsed.
func Tokenize(m *model.Model, text string) []int { return m.Tok.Encode(text, true, false) }

// BOS returns the token that replaces each chunk's first token: the BOS id when the vocab adds
// BOS, else -1.
func BOS(m *model.Model) int {
	if m.Tok.AddBOS() {
		return m.Tok.BOS()
	}
	return -1
}

// Perplexity runs PerplexityWith on a fresh State of m holding opts.Ctx positions; opts.Vocab
// and opts.BOS are taken from the model.
func Perplexity(ctx context.Context, m *model.Model, tokens []int, opts PPLOptions) (*PPLResult, error) {
	return PerplexityProfile(ctx, m, nil, tokens, opts)
}

// PerplexityProfile is Perplexity with the activation-sparsity profile p (nil: dense) set on
// the State (see model.State.SetProfile).
func PerplexityProfile(ctx context.Context, m *model.Model, p *model.Profile, tokens []int, opts PPLOptions) (*PPLResult, error) {
	if opts.Ctx < 4 {
		return nil, fmt.Errorf("perplexity: context %d is too small (need at least 4)", opts.Ctx)
	}
	if err := CheckTokens(len(tokens), opts.Ctx); err != nil {
		return nil, fmt.Errorf("perplexity: %w", err)
	}
	opts.Vocab = m.Spec.Vocab
	opts.BOS = BOS(m)
	st := m.NewState(opts.Ctx)
	if err := st.SetProfile(p); err != nil {
		return nil, fmt.Errorf("perplexity: %w", err)
	}
	return PerplexityWith(ctx, st, tokens, opts)
}

// KLDivergence compares test with base (e.g. a sparse or requantized model with its dense
// original) on the same chunks; see KLDivergenceWith. Both must have the same vocabulary size;
// opts.Vocab and opts.BOS are taken from test.
func KLDivergence(ctx context.Context, base, test *model.Model, tokens []int, opts PPLOptions) (*KLResult, error) {
	return KLDivergenceProfile(ctx, base, test, nil, tokens, opts)
}

// KLDivergenceProfile is KLDivergence with the activation-sparsity profile p (nil: dense) set
// on the test model's State; the base model runs dense.
func KLDivergenceProfile(ctx context.Context, base, test *model.Model, p *model.Profile, tokens []int, opts PPLOptions) (*KLResult, error) {
	if opts.Ctx < 4 {
		return nil, fmt.Errorf("kl-divergence: context %d is too small (need at least 4)", opts.Ctx)
	}
	if base.Spec.Vocab != test.Spec.Vocab {
		return nil, fmt.Errorf("kl-divergence: the base model has %d logits per token but the model has %d; compare models with the same vocabulary",
			base.Spec.Vocab, test.Spec.Vocab)
	}
	if err := CheckTokens(len(tokens), opts.Ctx); err != nil {
		return nil, fmt.Errorf("kl-divergence: %w", err)
	}
	opts.Vocab = test.Spec.Vocab
	opts.BOS = BOS(test)
	st := test.NewState(opts.Ctx)
	if err := st.SetProfile(p); err != nil {
		return nil, fmt.Errorf("kl-divergence: %w", err)
	}
	return KLDivergenceWith(ctx, base.NewState(opts.Ctx), st, tokens, opts)
}

// SparsityLabel is the report label of uniform sparsity ratio: "dense" for 0, else
// "uniform top-K".
func SparsityLabel(ratio float64) string {
	if ratio == 0 {
		return "dense"
	}
	return "uniform top-K"
}
