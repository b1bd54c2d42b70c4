package tokenizer_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
	"github.com/qsparse/qsparse/tokenizer"
)

func smolHF(tb testing.TB) *tokenizer.Tokenizer {
	tb.Helper()
	tok, err := tokenizer.New(smolVocab(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func smolVocab(tb testing.TB) *tokenizer.Vocab {
	tb.Helper()
	dir := testenv.Path(tb, "smollm2-hf")
	tj, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		tb.Fatal(err)
	}
	tc, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		tb.Fatal(err)
	}
	v, err := tokenizer.VocabFromHF(tj, tc)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func TestSmolLM2HFKnownIDs(t *testing.T) {
	tok := smolHF(t)
	if tok.Kind() != "gpt2" || tok.NVocab() != 49152 || tok.BOS() != 1 || tok.EOS() != 2 || tok.AddBOS() {
		t.Fatalf("kind %s n %d bos %d eos %d addBOS %v", tok.Kind(), tok.NVocab(), tok.BOS(), tok.EOS(), tok.AddBOS())
	}
	for _, c := range []struct {
		text  string
		parse bool
		want  []int
	}{
		{"Hello, world!", false, []int{19556, 28, 905, 17}},
		{"The year 2026 had 365 days.", false, []int{504, 713, 216, 34, 32, 34, 38, 761, 216, 35, 38, 37, 2009, 30}},
		{"<|im_start|>user\nHi<|im_end|>", true, []int{1, 4093, 198, 26843, 2}},
	} {
		got := tok.Encode(c.text, true, c.parse)
		if !slices.Equal(got, c.want) {
			t.Errorf("Encode(%q) = %v, want %v", c.text, got, c.want)
		}
		if dec := tok.Decode(got); c.parse == false && dec != c.text {
			t.Errorf("Decode(%v) = %q, want %q", got, dec, c.text)
		}
	}
	// without parseSpecial the control token texts are plain text
	got := tok.Encode("<|im_start|>", false, false)
	if slices.Contains(got, 1) {
		t.Errorf("control token parsed without parseSpecial: %v", got)
	}
	for _, id := range []int{0, 2} {
		if !tok.IsEOG(id) {
			t.Errorf("IsEOG(%d) = false", id)
		}
	}
	if tok.IsEOG(1) || tok.IsEOG(19556) {
		t.Errorf("IsEOG wrong for 1 / 19556")
	}
}

func TestVocabFromHFErrors(t *testing.T) {
	for _, c := range []string{
		`not json`,
		`{"model": {"type": "Unigram", "vocab": []}}`,
		`{"model": {"type": "BPE", "vocab": {}}}`,
		`{"model": {"type": "BPE", "vocab": {"a": 0, "b": 99999999}}}`,
		`{"model": {"type": "BPE", "vocab": {"a": 0, "b": -1}}}`,
		`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a"]]}, "pre_tokenizer": {"type": "ByteLevel"}}`,
		`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Whitespace"}}`,
		`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": null}`,
	} {
		if _, err := tokenizer.VocabFromHF([]byte(c), nil); err == nil || !errors.Is(err, tokenizer.ErrVocab) {
			t.Errorf("VocabFromHF(%s) err = %v, want ErrVocab", c, err)
		}
	}
	if _, err := tokenizer.New(&tokenizer.Vocab{Model: "gpt2", Pre: "nonesuch", Tokens: []string{"a"}}); !errors.Is(err, tokenizer.ErrVocab) {
		t.Errorf("unknown pre: err = %v", err)
	}
	if _, err := tokenizer.New(&tokenizer.Vocab{Model: "llama", Tokens: []string{"a", "b"}, Scores: []float32{0}}); !errors.Is(err, tokenizer.ErrVocab) {
		t.Errorf("short scores: err = %v", err)
	}
}
