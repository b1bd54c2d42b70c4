package model

import (
	"testing"
	"time"

	"github.com/qsparse/qsparse/internal/testenv"
)

// BenchmarkDecodeLongSmolLM2 decodes tokens after a 1536-token prompt (F16 weights, all
// threads), where attention over the KV cache is a sizeable part of each token.
func BenchmarkDecodeLongSmolLM2(b *testing.B) {
	m, err := Load(testenv.SmolLM2Path(b), LoadOptions{WeightType: "f16"})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	const prompt, span = 1536, 256
	st := m.NewState(prompt + span)
	toks := make([]int, prompt)
	for i := range toks {
		toks[i] = 100 + i%1000
	}
	logits := make([]float32, m.Spec.Vocab)
	if err := st.Forward(toks, 0, logits); err != nil {
		b.Fatal(err)
	}
	tok, pos := Argmax(logits), prompt
	start := time.Now()
	for b.Loop() {
		if pos == prompt+span {
			pos = prompt
		}
		if err := st.Forward([]int{tok}, pos, logits); err != nil {
			b.Fatal(err)
		}
		tok = Argmax(logits)
		pos++
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tok/s")
}
