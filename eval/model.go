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
	if opts.Ctx < 4 {
		return nil, fmt.Errorf("perplexity: context %d is too small (need at least 4)", opts.Ctx)
	}
	if err := CheckTokens(len(tokens), opts.Ctx); err != nil {
		return nil, fmt.Errorf("perplexity: %w", err)
	}
	opts.Vocab = m.Spec.Vocab
	opts.BOS = BOS(m)
	return PerplexityWith(ctx, m.NewState(opts.Ctx), tokens, opts)
}

// KLDivergence compares test with base (e.g. a sparse or requantized model with its dense
// original) on the same chunks; see KLDivergenceWith. Both must have the same vocabulary size;
// opts.Vocab and opts.BOS are taken from test.
func KLDivergence(ctx context.Context, base, test *model.Model, tokens []int, opts PPLOptions) (*KLResult, error) {
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
	return KLDivergenceWith(ctx, base.NewState(opts.Ctx), test.NewState(opts.Ctx), tokens, opts)
}
