package tokenizer_test

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/qsparse/qsparse/internal/testenv"
	"github.com/qsparse/qsparse/tokenizer"
)

func TestStreamer(t *testing.T) {
	text := "naïve café, 日本語 🙂 ok\n"
	for name, tok := range map[string]*tokenizer.Tokenizer{
		"stories260K": ggufTokenizer(t, testenv.Path(t, "stories260K.gguf")),
		"smollm2":     smolHF(t),
	} {
		ids := tok.Encode(text, false, false)
		s := tok.NewStreamer()
		var sb strings.Builder
		for _, id := range ids {
			out := s.Add(id)
			if !utf8.Valid(out) {
				t.Errorf("%s: Add(%d) emitted invalid UTF-8 %q", name, id, out)
			}
			sb.Write(out)
		}
		sb.Write(s.Flush())
		got := sb.String()
		if name == "stories260K" {
			got = strings.TrimPrefix(got, " ") // the space prefix (Decode drops it; pieces keep it)
		}
		if got != text {
			t.Errorf("%s: streamed %q, want %q", name, got, text)
		}
	}
}

func TestDecodeCleanSpaces(t *testing.T) {
	// a "gpt2" vocab with clean-up (pre "gpt2"): llama.cpp removes spaces before , . ? ! and
	// before 's 'm 're 've, and around a lone '
	v := &tokenizer.Vocab{Model: "gpt2", Pre: "gpt2", BOS: -1, EOS: -1, UNK: -1, PAD: -1, EOT: -1}
	v.Tokens = []string{"a", "Ġ,", "Ġb", "Ġ.", "Ġ'", "Ġ's", "Ġ're", "Ġ't", "Ġ", "<|endoftext|>"}
	tok, err := tokenizer.New(v)
	if err != nil {
		t.Fatal(err)
	}
	got := tok.Decode([]int{0, 1, 2, 3, 4, 8, 0, 5, 6, 7, 9})
	if want := "a, b.'a's're 't"; got != want {
		t.Errorf("Decode = %q, want %q", got, want)
	}
	if !tok.IsEOG(9) || !tok.IsControl(9) {
		t.Errorf("<|endoftext|> should be a control EOG token")
	}
	if got := tok.Detokenize([]int{0, 9}, false, true); got != "a<|endoftext|>" {
		t.Errorf("Detokenize(unparse) = %q", got)
	}
}

// TestEncodeRobust: arbitrary bytes never panic, and valid UTF-8 text round-trips.
func TestEncodeRobust(t *testing.T) {
	toks := map[string]*tokenizer.Tokenizer{
		"stories260K": ggufTokenizer(t, testenv.Path(t, "stories260K.gguf")),
		"smollm2":     smolHF(t),
	}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", " ", "  ", "\n", "\t", "é", "日", "🙂", "1", "23", "'s", ",", ".", "<|im_end|>", "</s>", "<s>", "\r\n", "\u00a0", "\xff", "\xe2\x96"}
	for name, tok := range toks {
		for i := 0; i < 2000; i++ {
			var sb strings.Builder
			for j := r.IntN(20); j > 0; j-- {
				sb.WriteString(alphabet[r.IntN(len(alphabet))])
			}
			s := sb.String()
			for _, parse := range []bool{false, true} {
				ids := tok.Encode(s, true, parse)
				for _, id := range ids {
					if id < 0 || id >= tok.NVocab() {
						t.Fatalf("%s: Encode(%q) gave id %d", name, s, id)
					}
				}
				if parse || !utf8.ValidString(s) {
					continue
				}
				dec := tok.Decode(ids)
				if tok.AddBOS() && tok.Kind() == "llama" {
					dec = strings.TrimPrefix(dec, " ")
				}
				if dec != s {
					t.Fatalf("%s: %q -> %v -> %q", name, s, ids, dec)
				}
			}
		}
	}
}

func FuzzEncode(f *testing.F) {
	tok := smolHF(f)
	f.Add("Hello, world! 2026 <|im_start|>")
	f.Add("\xff\xfe 日本")
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s, true, true)
		_ = tok.Decode(ids)
		if utf8.ValidString(s) {
			if d := tok.Decode(tok.Encode(s, false, false)); d != s {
				t.Fatalf("%q -> %q", s, d)
			}
		}
	})
}

// TestConcurrentEncode: one Tokenizer used from several goroutines gives the same ids.
func TestConcurrentEncode(t *testing.T) {
	tok := smolHF(t)
	text := readPrefix(t, "tinystories_valid_first1000.txt", 50000)
	want := tok.Encode(text, false, false)
	errs := make(chan string, 4)
	for g := 0; g < 4; g++ {
		go func() {
			got := tok.Encode(text, false, false)
			if len(got) != len(want) || firstDiff(got, want) >= 0 {
				errs <- "concurrent Encode differs"
				return
			}
			errs <- ""
		}()
	}
	for g := 0; g < 4; g++ {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
}
