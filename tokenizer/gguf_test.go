package tokenizer_test

import (
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/qsparse/qsparse/gguf"
	"github.com/qsparse/qsparse/internal/testenv"
	"github.com/qsparse/qsparse/tokenizer"
)

// ggufTokenizer builds a tokenizer from a GGUF file's tokenizer.ggml.* metadata.
func ggufTokenizer(tb testing.TB, path string) *tokenizer.Tokenizer {
	tb.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	v, err := tokenizer.VocabFromGGUF(f)
	if err != nil {
		tb.Fatal(err)
	}
	tok, err := tokenizer.New(v)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func readIDs(tb testing.TB, path string) []int {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var ids []int
	if err := json.Unmarshal(b, &ids); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return ids
}

func readPrefix(tb testing.TB, name string, n int) string {
	tb.Helper()
	b, err := os.ReadFile(testenv.Path(tb, name))
	if err != nil {
		tb.Fatal(err)
	}
	if n > 0 && n < len(b) {
		b = b[:n]
	}
	return string(b)
}

func firstDiff(a, b []int) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// TestStories260KRefs: llama-tokenize --ids (BOS added) on the first 20,000 bytes of each text.
func TestStories260KRefs(t *testing.T) {
	tok := ggufTokenizer(t, testenv.Path(t, "stories260K.gguf"))
	if tok.Kind() != "llama" || tok.NVocab() != 512 || tok.BOS() != 1 || tok.EOS() != 2 || !tok.AddBOS() {
		t.Fatalf("kind %s n %d bos %d eos %d addBOS %v", tok.Kind(), tok.NVocab(), tok.BOS(), tok.EOS(), tok.AddBOS())
	}
	for _, c := range []struct{ text, ref string }{
		{"tinystories_valid_first1000.txt", "stories260K.tinystories-first20000B.ids"},
		{"wiki.test.raw", "stories260K.wiki-first20000B.ids"},
	} {
		text := readPrefix(t, c.text, 20000)
		want := readIDs(t, testenv.Ref(t, c.ref))
		got := tok.Encode(text, true, false)
		if i := firstDiff(got, want); i >= 0 {
			lo, hi := max(0, i-5), min(i+5, len(got), len(want))
			t.Errorf("%s: %d ids (want %d), first difference at %d: got %v want %v", c.text, len(got), len(want), i, got[lo:hi], want[lo:min(i+5, len(want))])
			continue
		}
		// llama_detokenize keeps the space after BOS; without BOS it drops it
		if dec := tok.Decode(got); dec != " "+text {
			t.Errorf("%s: Decode(Encode) differs from the text", c.text)
		}
		if dec := tok.Decode(got[1:]); dec != text {
			t.Errorf("%s: Decode without BOS differs from the text", c.text)
		}
	}
}

func TestStories260KSpecial(t *testing.T) {
	tok := ggufTokenizer(t, testenv.Path(t, "stories260K.gguf"))
	if got := tok.Encode("", true, false); !slices.Equal(got, []int{1}) {
		t.Errorf("Encode(\"\") = %v, want [1]", got)
	}
	if got := tok.Encode("", false, false); len(got) != 0 {
		t.Errorf("Encode(\"\", no special) = %v", got)
	}
	// "</s>" as text unless parseSpecial; the text after a special token gets the space prefix again
	a := tok.Encode("Hi</s>Hi", false, true)
	hi := tok.Encode("Hi", false, false)
	want := append(append(append([]int{}, hi...), 2), hi...)
	if !slices.Equal(a, want) {
		t.Errorf("Encode(Hi</s>Hi, parse) = %v, want %v", a, want)
	}
	if b := tok.Encode("Hi</s>Hi", false, false); slices.Contains(b, 2) {
		t.Errorf("</s> parsed without parseSpecial: %v", b)
	}
	if !tok.IsEOG(2) || tok.IsEOG(1) {
		t.Errorf("IsEOG(2)=%v IsEOG(1)=%v", tok.IsEOG(2), tok.IsEOG(1))
	}
	// bytes that are no piece fall back to <0xXX> tokens (ids 3..258) and decode back
	s := "naïve 日本 ✓"
	ids := tok.Encode(s, false, false)
	if dec := tok.Decode(ids); dec != s {
		t.Errorf("round trip %q -> %v -> %q", s, ids, dec)
	}
	if p := tok.Piece(3 + 0xE6); len(p) != 1 || p[0] != 0xE6 {
		t.Errorf("Piece(<0xE6>) = %v", p)
	}
	if p := tok.Piece(1); len(p) != 0 {
		t.Errorf("Piece(BOS) = %q, want empty", p)
	}
}

// TestSmolLM2GGUFvsHF: the vocab read from the GGUF and from tokenizer.json tokenize the whole of
// wiki.test.raw identically.
func TestSmolLM2GGUFvsHF(t *testing.T) {
	g := ggufTokenizer(t, testenv.SmolLM2Path(t))
	h := smolHF(t)
	if g.NVocab() != h.NVocab() || g.BOS() != h.BOS() || g.EOS() != h.EOS() || g.AddBOS() != h.AddBOS() {
		t.Fatalf("gguf n %d bos %d eos %d add %v; hf n %d bos %d eos %d add %v", g.NVocab(), g.BOS(), g.EOS(), g.AddBOS(), h.NVocab(), h.BOS(), h.EOS(), h.AddBOS())
	}
	for id := range g.NVocab() {
		if g.IsEOG(id) != h.IsEOG(id) || g.IsControl(id) != h.IsControl(id) || g.Text(id) != h.Text(id) {
			t.Fatalf("token %d differs: %q eog %v ctl %v vs %q eog %v ctl %v", id, g.Text(id), g.IsEOG(id), g.IsControl(id), h.Text(id), h.IsEOG(id), h.IsControl(id))
		}
	}
	for _, name := range []string{"wiki.test.raw", "tinystories_valid_first1000.txt"} {
		text := readPrefix(t, name, 0)
		a := g.Encode(text, false, false)
		b := h.Encode(text, false, false)
		if i := firstDiff(a, b); i >= 0 {
			t.Fatalf("%s: gguf %d ids, hf %d ids, first difference at %d", name, len(a), len(b), i)
		}
		if dec := g.Decode(a); dec != text {
			t.Errorf("%s: Decode(Encode) differs from the text", name)
		}
		t.Logf("%s: %d bytes -> %d ids", name, len(text), len(a))
	}
}
