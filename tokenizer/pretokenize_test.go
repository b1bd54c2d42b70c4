package tokenizer

import (
	"os"
	"slices"
	"testing"

	"github.com/dlclark/regexp2"

	"github.com/qsparse/qsparse/internal/testenv"
)

// regexSplit splits s with a regexp2 pattern the way a regex pre-tokenizer does (matches and the
// text between them are the pieces).
func regexSplit(t *testing.T, re *regexp2.Regexp, s string) []string {
	t.Helper()
	var out []string
	rs := []rune(s)
	prev := 0
	m, err := re.FindRunesMatch(rs)
	for ; m != nil && err == nil; m, err = re.FindNextMatch(m) {
		if m.Index > prev {
			out = append(out, string(rs[prev:m.Index]))
		}
		out = append(out, string(rs[m.Index:m.Index+m.Length]))
		prev = m.Index + m.Length
	}
	if err != nil {
		t.Fatal(err)
	}
	if prev < len(rs) {
		out = append(out, string(rs[prev:]))
	}
	return out
}

func ourSplit(kind preKind, s string) []string {
	cpts := decodeCpts(s, nil)
	segs := splitWords(kind, cpts, nil, nil)
	var out []string
	p := 0
	for _, l := range segs {
		var b []byte
		for _, c := range cpts[p : p+l] {
			b = appendCpt(b, c)
		}
		out = append(out, string(b))
		p += l
	}
	return out
}

var splitCases = []string{
	"Hello, world!", "  leading", "trailing   ", "a  b   c\n\n d\t\te", "I'm he's they'LL we'VE 'd", "x'sy",
	"123 4567 89012 3.14159", "naïve café 日本語 🙂 ok", "tabs\tand\r\nnewlines\n \n", "$100+<=>^~|`", " ?!. ,", "",
	"   ", "\n", "a\u00a0b\u2003c", "e\u0301 combining", "١٢٣ Arabic digits ²³", "'", "''s", "Ω≈ç√∫˜µ≤≥÷",
}

func TestSplittersMatchRegex(t *testing.T) {
	var texts []string
	texts = append(texts, splitCases...)
	for _, name := range []string{"wiki.test.raw", "tinystories_valid_first1000.txt"} {
		b, err := os.ReadFile(testenv.Path(t, name))
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, string(b[:min(len(b), 100000)]))
	}
	for _, c := range []struct {
		name    string
		kind    preKind
		pattern string
	}{
		{"gpt2", preGPT2, hfRegexGPT2},
		{"llama3", preLlama3, hfRegexLlama3},
		{"qwen2", preQwen2, hfRegexQwen2},
	} {
		re := regexp2.MustCompile(c.pattern, regexp2.Unicode)
		for i, s := range texts {
			want := regexSplit(t, re, s)
			got := ourSplit(c.kind, s)
			if !slices.Equal(got, want) {
				j := 0
				for j < min(len(got), len(want)) && got[j] == want[j] {
					j++
				}
				t.Errorf("%s text %d: %d pieces, regex %d; first difference at %d: %q vs %q", c.name, i, len(got), len(want), j,
					got[j:min(j+3, len(got))], want[j:min(j+3, len(want))])
			}
		}
	}
}

func TestSmolLMDigits(t *testing.T) {
	got := ourSplit(preSmolLM, "The year 2026 had 365 days, ²x")
	want := []string{"The", " year", " ", "2", "0", "2", "6", " had", " ", "3", "6", "5", " days", ",", " ", "²", "x"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	got = ourSplit(preDefault, "a 1234567 (x)!! $5")
	if len(got) == 0 {
		t.Fatal("no pieces")
	}
	t.Logf("default: %q", got)
}
