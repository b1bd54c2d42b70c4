package tokenizer_test

import (
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
	"github.com/qsparse/qsparse/tokenizer"
)

// BenchmarkSmolLM2Wiki tokenizes the whole of wiki.test.raw (1.29 MB) with the SmolLM2 vocab.
// "cold" builds a new Tokenizer (empty word cache) per iteration, "warm" reuses one.
func BenchmarkSmolLM2Wiki(b *testing.B) {
	text := readPrefix(b, "wiki.test.raw", 0)
	b.Run("warm", func(b *testing.B) {
		tok := smolHF(b)
		tok.Encode(text, false, false)
		b.SetBytes(int64(len(text)))
		b.ResetTimer()
		for b.Loop() {
			tok.Encode(text, false, false)
		}
	})
	b.Run("cold", func(b *testing.B) {
		v := smolVocab(b)
		b.SetBytes(int64(len(text)))
		b.ResetTimer()
		for b.Loop() {
			tok, err := tokenizer.New(v)
			if err != nil {
				b.Fatal(err)
			}
			tok.Encode(text, false, false)
		}
	})
}

func BenchmarkStories260KWiki(b *testing.B) {
	tok := ggufTokenizer(b, testenv.Path(b, "stories260K.gguf"))
	text := readPrefix(b, "wiki.test.raw", 0)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.Encode(text, true, false)
	}
}
