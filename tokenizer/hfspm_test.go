package tokenizer_test

import (
	"encoding/json"
	"sort"
	"testing"

	"github.com/qsparse/qsparse/gguf"
	"github.com/qsparse/qsparse/internal/testenv"
	"github.com/qsparse/qsparse/tokenizer"
)

// TestHFSentencePieceStyle writes a Llama-2 style tokenizer.json (BPE with byte_fallback, a
// Prepend "▁" normalizer) for the stories260K vocabulary, with merges in the order of the GGUF
// scores, and checks that it tokenizes like the GGUF (and so like llama.cpp).
func TestHFSentencePieceStyle(t *testing.T) {
	f, err := gguf.Open(testenv.Path(t, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	gv, err := tokenizer.VocabFromGGUF(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for i, s := range gv.Tokens {
		ids[s] = i
	}
	var order []int
	for i, s := range gv.Tokens {
		if gv.Types[i] == tokenizer.TypeNormal && len([]rune(s)) > 1 {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return gv.Scores[order[a]] > gv.Scores[order[b]] })
	var merges []string
	for _, id := range order {
		s := gv.Tokens[id]
		for k := 1; k < len(s); k++ {
			if _, ok := ids[s[:k]]; ok {
				if _, ok := ids[s[k:]]; ok {
					merges = append(merges, s[:k]+" "+s[k:])
					break
				}
			}
		}
	}
	type added struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	}
	tj := map[string]any{
		"added_tokens": []added{{0, "<unk>", true}, {1, "<s>", true}, {2, "</s>", true}},
		"normalizer": map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Prepend", "prepend": "▁"},
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"},
		}},
		"pre_tokenizer": nil,
		"decoder":       map[string]any{"type": "Sequence"},
		"model": map[string]any{"type": "BPE", "vocab": ids, "merges": merges, "byte_fallback": true,
			"unk_token": "<unk>"},
	}
	b, err := json.Marshal(tj)
	if err != nil {
		t.Fatal(err)
	}
	cfg := []byte(`{"add_bos_token": true, "add_eos_token": false, "bos_token": {"content": "<s>"}, "eos_token": "</s>", "unk_token": "<unk>"}`)
	hv, err := tokenizer.VocabFromHF(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h, err := tokenizer.New(hv)
	if err != nil {
		t.Fatal(err)
	}
	g, err := tokenizer.New(gv)
	if err != nil {
		t.Fatal(err)
	}
	if h.Kind() != "llama" || h.BOS() != 1 || h.EOS() != 2 || !h.AddBOS() {
		t.Fatalf("kind %s bos %d eos %d addBOS %v", h.Kind(), h.BOS(), h.EOS(), h.AddBOS())
	}
	for _, name := range []string{"wiki.test.raw", "tinystories_valid_first1000.txt"} {
		text := readPrefix(t, name, 100000)
		a, c := g.Encode(text, true, false), h.Encode(text, true, false)
		if i := firstDiff(a, c); i >= 0 {
			t.Errorf("%s: gguf %d ids, hf %d ids, first difference at %d", name, len(a), len(c), i)
		}
	}
}
