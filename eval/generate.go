package eval

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/qsparse/qsparse/model"
)

// GenOptions configures Generate.
type GenOptions struct {
	MaxTokens int // stop after this many generated tokens; <= 0: until EOG or the context is full
	Ctx       int // context size of the state (positions available)
	Vocab     int
	// Sample picks the next token from the logits (e.g. model.Sampler.Sample); nil: greedy.
	Sample func(logits []float32) int
	// IsEOG reports end-of-generation tokens (EOS, EOT, ...); they stop generation unprinted.
	IsEOG func(id int) bool
}

// GenStats are llama.cpp-style timings of a generation.
type GenStats struct {
	PromptTokens int           `json:"prompt_tokens"`
	PromptTime   time.Duration `json:"prompt_ns"`
	EvalTokens   int           `json:"eval_tokens"` // tokens decoded one by one after the prompt
	EvalTime     time.Duration `json:"eval_ns"`
	Generated    int           `json:"generated"` // tokens emitted (sampled, not EOG)
	StopReason   string        `json:"stop"`      // "eog", "limit", "context"
	SampleTime   time.Duration `json:"sample_ns"`
}

// PromptTPS is prompt tokens per second.
func (g *GenStats) PromptTPS() float64 { return tps(g.PromptTokens, g.PromptTime) }

// EvalTPS is decoded tokens per second.
func (g *GenStats) EvalTPS() float64 { return tps(g.EvalTokens, g.EvalTime) }

func tps(n int, d time.Duration) float64 {
	if n == 0 || d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// ErrPromptTooLong is returned (wrapped) when the prompt does not fit the context.
var ErrPromptTooLong = errors.New("prompt longer than the context")

// Generate evaluates prompt from an empty cache (one batched forward), then samples and decodes
// one token at a time, calling emit with each sampled token that is not end-of-generation. It stops
// at EOG, after MaxTokens, when the context is full, when emit returns an error, or when ctx is
// cancelled (the error then wraps ctx.Err(); stats so far are still returned).
func Generate(ctx context.Context, st Forwarder, prompt []int, opts GenOptions, emit func(id int) error) (*GenStats, error) {
	stats := &GenStats{PromptTokens: len(prompt)}
	if len(prompt) == 0 {
		return stats, errors.New("generate: empty prompt (nothing to condition on)")
	}
	if len(prompt) > opts.Ctx {
		return stats, fmt.Errorf("generate: %w: the prompt is %d tokens but the context holds %d; use a larger --ctx or a shorter prompt",
			ErrPromptTooLong, len(prompt), opts.Ctx)
	}
	for i, t := range prompt {
		if t < 0 || t >= opts.Vocab {
			return stats, fmt.Errorf("generate: prompt token %d at index %d is outside the vocabulary (size %d)", t, i, opts.Vocab)
		}
	}
	sample := opts.Sample
	if sample == nil {
		sample = model.Argmax
	}
	logits := make([]float32, opts.Vocab)
	st.Reset()
	t0 := time.Now()
	if err := st.Forward(prompt, 0, logits); err != nil {
		return stats, fmt.Errorf("generate: prompt: %w", err)
	}
	stats.PromptTime = time.Since(t0)
	pos := len(prompt)
	tok := []int{0}
	for {
		if err := ctx.Err(); err != nil {
			stats.StopReason = "canceled"
			return stats, fmt.Errorf("generate: %w", err)
		}
		ts := time.Now()
		id := sample(logits)
		stats.SampleTime += time.Since(ts)
		if opts.IsEOG != nil && opts.IsEOG(id) {
			stats.StopReason = "eog"
			return stats, nil
		}
		stats.Generated++
		if err := emit(id); err != nil {
			return stats, err
		}
		if opts.MaxTokens > 0 && stats.Generated >= opts.MaxTokens {
			stats.StopReason = "limit"
			return stats, nil
		}
		if pos >= opts.Ctx {
			stats.StopReason = "context"
			return stats, nil
		}
		tok[0] = id
		t1 := time.Now()
		if err := st.Forward(tok, pos, logits); err != nil {
			return stats, fmt.Errorf("generate: decoding at position %d: %w", pos, err)
		}
		stats.EvalTime += time.Since(t1)
		stats.EvalTokens++
		pos++
	}
}
