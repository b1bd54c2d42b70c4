package tokenizer

import "fmt"

// Pre-tokenizers of byte-level BPE vocabularies. Each is a hand-written port of the splitter
// llama.cpp runs for the regex_exprs of a pre type (unicode.cpp's unicode_regex_split_custom_* and,
// for the simple class patterns it hands to std::regex, an equivalent run splitter). Segments are
// lengths in code points; every splitter refines the segments of the previous one.

type preKind uint8

const (
	preDefault preKind = iota // [\p{P}$+<=>^~|]+ ; GPT-2 ; \p{N}+ ; [0-9]{3}
	preGPT2                   // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
	preLlama3                 // (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
	preQwen2                  // as Llama-3 with \p{N} instead of \p{N}{1,3}
	preSmolLM                 // \p{N} ; GPT-2
)

type preInfo struct {
	kind         preKind
	addBOS       bool // llama.cpp's default add_bos for this pre type
	ignoreMerges bool // a word that is a whole token is emitted as is
	cleanSpaces  bool // detokenizer's clean_up_tokenization_spaces
}

var preTable = map[string]preInfo{
	"default": {preDefault, false, false, true},

	"llama3":       {preLlama3, true, true, true},
	"llama-v3":     {preLlama3, true, true, true},
	"llama-bpe":    {preLlama3, true, true, true},
	"falcon3":      {preLlama3, true, true, true},
	"falcon-h1":    {preLlama3, true, true, true},
	"pixtral":      {preLlama3, true, true, true},
	"midm-2.0":     {preLlama3, true, true, true},
	"lfm2":         {preLlama3, true, true, true},
	"jina-v5-nano": {preLlama3, true, true, true},
	"dbrx":         {preLlama3, false, false, true},
	"smaug-bpe":    {preLlama3, false, false, true},

	"gpt2":        {preGPT2, false, false, true}, // the name VocabFromHF gives a plain ByteLevel pre-tokenizer
	"gpt-2":       {preGPT2, false, false, true},
	"phi-2":       {preGPT2, false, false, true},
	"jina-es":     {preGPT2, false, false, true},
	"jina-de":     {preGPT2, false, false, true},
	"gigachat":    {preGPT2, false, false, true},
	"jina-v2-es":  {preGPT2, false, false, true},
	"jina-v2-de":  {preGPT2, false, false, true},
	"a.x-4.0":     {preGPT2, false, false, true},
	"mellum":      {preGPT2, false, false, true},
	"modern-bert": {preGPT2, false, false, true},
	"mpt":         {preGPT2, false, false, true},
	"olmo":        {preGPT2, false, false, true},
	"jais":        {preGPT2, false, false, true},
	"exaone4":     {preGPT2, false, false, true},
	"trillion":    {preGPT2, false, false, false},

	"qwen2":            {preQwen2, false, false, false},
	"deepseek-r1-qwen": {preQwen2, false, false, false},
	"kormo":            {preQwen2, false, false, false},
	"f2llmv2":          {preQwen2, false, false, false},
	"megrez":           {preQwen2, false, false, true},
	"stablelm2":        {preQwen2, false, false, true},

	"smollm":     {preSmolLM, false, false, false},
	"starcoder":  {preSmolLM, false, false, true},
	"refact":     {preSmolLM, false, false, true},
	"command-r":  {preSmolLM, false, false, false},
	"codeshell":  {preSmolLM, false, false, true},
	"exaone":     {preSmolLM, false, false, true},
	"minerva-7b": {preSmolLM, false, false, true},
	"mellum2":    {preSmolLM, false, false, true},
}

func lookupPre(name string) (preInfo, error) {
	if name == "" {
		name = "default"
	}
	pi, ok := preTable[name]
	if !ok {
		return preInfo{}, fmt.Errorf("%w: pre-tokenizer %q is not supported (supported: default, gpt2, llama-bpe, qwen2, smollm and their llama.cpp aliases)", ErrVocab, name)
	}
	return pi, nil
}

// splitWords applies the pre-tokenizer to cpts and returns segment lengths (in code points).
func splitWords(kind preKind, cpts []uint32, segs []int, tmp []int) []int {
	segs = append(segs[:0], len(cpts))
	if len(cpts) == 0 {
		return segs[:0]
	}
	switch kind {
	case preGPT2:
		return splitGPT2(cpts, segs, tmp)
	case preLlama3:
		return splitLlama3(cpts, segs, tmp, false)
	case preQwen2:
		return splitLlama3(cpts, segs, tmp, true)
	case preSmolLM:
		tmp = splitRuns(cpts, segs, tmp, isNumberClass, 1)
		return splitGPT2(cpts, tmp, segs)
	default:
		tmp = splitRuns(cpts, segs, tmp, isDefaultPunct, 0)
		segs = splitGPT2(cpts, tmp, segs)
		tmp = splitRuns(cpts, segs, tmp, isNumberClass, 0)
		return splitRuns(cpts, tmp, segs, isASCIIDigit, 3)
	}
}

// collapsedCat is the category llama.cpp's std::regex fallback sees for a code point >= 128:
// whitespace is hidden, and only a pure category bit pattern counts.
func collapsedCat(c uint32) uint16 {
	f := cptFlags(c)
	if f&cfWhitespace != 0 {
		return 0
	}
	return f & cfCategories
}

// isNumberClass: the collapsed \p{N} class: ASCII 0-9 or a code point whose category is number.
func isNumberClass(c uint32) bool {
	if c < 128 {
		return c >= '0' && c <= '9'
	}
	return collapsedCat(c) == cfNumber
}

func isASCIIDigit(c uint32) bool { return c >= '0' && c <= '9' }

// isDefaultPunct: the collapsed [\p{P}\$\+<=>\^~\|] class.
func isDefaultPunct(c uint32) bool {
	if c < 128 {
		switch {
		case c >= 0x21 && c <= 0x23, c >= 0x25 && c <= 0x2A, c >= 0x2C && c <= 0x2F, c == 0x3A, c == 0x3B,
			c == 0x3F, c == 0x40, c >= 0x5B && c <= 0x5D, c == 0x5F, c == 0x7B, c == 0x7D,
			c == '$', c == '+', c == '<', c == '=', c == '>', c == '^', c == '~', c == '|':
			return true
		}
		return false
	}
	return collapsedCat(c) == cfPunctuation
}

// splitRuns emulates std::regex_iterator over each segment for the pattern "class+" (n == 0),
// "class" (n == 1) or "class{n}" (n > 1): matches and the text between them become segments.
func splitRuns(cpts []uint32, segs, out []int, class func(uint32) bool, n int) []int {
	out = out[:0]
	start := 0
	for _, l := range segs {
		end := start + l
		prev := start // end of the last emitted piece
		for p := start; p < end; {
			if !class(cpts[p]) {
				p++
				continue
			}
			q := p
			for q < end && class(cpts[q]) {
				q++
			}
			if n == 0 {
				if p > prev {
					out = append(out, p-prev)
				}
				out = append(out, q-p)
				prev = q
			} else {
				for q-p >= n {
					if p > prev {
						out = append(out, p-prev)
					}
					out = append(out, n)
					p += n
					prev = p
				}
			}
			p = q
		}
		if end > prev {
			out = append(out, end-prev)
		}
		start = end
	}
	return out
}

const outOfRange = 0xFFFFFFFF

// splitGPT2 is unicode_regex_split_custom_gpt2.
func splitGPT2(cpts []uint32, segs, out []int) []int {
	out = out[:0]
	start := 0
	for _, l := range segs {
		ini, end := start, start+l
		start = end
		getCpt := func(p int) uint32 {
			if p >= ini && p < end {
				return cpts[p]
			}
			return outOfRange
		}
		getFlags := func(p int) uint16 {
			if p >= ini && p < end {
				return cptFlags(cpts[p])
			}
			return 0
		}
		prevEnd := ini
		add := func(e int) int {
			n := e - prevEnd
			if n > 0 {
				out = append(out, n)
			}
			prevEnd = e
			return n
		}
		for pos := ini; pos < end; {
			c := getCpt(pos)
			flags := getFlags(pos)
			if c == '\'' && pos+1 < end {
				cn := getCpt(pos + 1)
				if cn == 's' || cn == 't' || cn == 'm' || cn == 'd' {
					pos += add(pos + 2)
					continue
				}
				if pos+2 < end {
					cnn := getCpt(pos + 2)
					if (cn == 'r' && cnn == 'e') || (cn == 'v' && cnn == 'e') || (cn == 'l' && cnn == 'l') {
						pos += add(pos + 3)
						continue
					}
				}
			}
			flags2 := flags
			if c == ' ' {
				flags2 = getFlags(pos + 1)
			}
			sp := 0
			if c == ' ' {
				sp = 1
			}
			if flags2&cfLetter != 0 {
				pos += sp
				for flags2&cfLetter != 0 {
					pos++
					flags2 = getFlags(pos)
				}
				add(pos)
				continue
			}
			if flags2&cfNumber != 0 {
				pos += sp
				for flags2&cfNumber != 0 {
					pos++
					flags2 = getFlags(pos)
				}
				add(pos)
				continue
			}
			if flags2&(cfWhitespace|cfLetter|cfNumber) == 0 && flags2 != 0 {
				pos += sp
				for flags2&(cfWhitespace|cfLetter|cfNumber) == 0 && flags2 != 0 {
					pos++
					flags2 = getFlags(pos)
				}
				add(pos)
				continue
			}
			nws := 0
			for getFlags(pos+nws)&cfWhitespace != 0 {
				nws++
			}
			if nws > 1 && getCpt(pos+nws) != outOfRange {
				pos += nws - 1
				add(pos)
				continue
			}
			if nws > 0 {
				pos += nws
				add(pos)
				continue
			}
			pos++
			add(pos)
		}
	}
	return out
}

func asciiLower(c uint32) uint32 {
	if c >= 'A' && c <= 'Z' {
		return c + 32
	}
	return c
}

// splitLlama3 is unicode_regex_split_custom_llama3 (single == false) and
// unicode_regex_split_custom_qwen2 (single == true: numbers one digit at a time).
func splitLlama3(cpts []uint32, segs, out []int, single bool) []int {
	out = out[:0]
	start := 0
	for _, l := range segs {
		ini, end := start, start+l
		start = end
		getCpt := func(p int) uint32 {
			if p >= ini && p < end {
				return cpts[p]
			}
			return outOfRange
		}
		getFlags := func(p int) uint16 {
			if p >= ini && p < end {
				return cptFlags(cpts[p])
			}
			return 0
		}
		prevEnd := ini
		add := func(e int) int {
			n := e - prevEnd
			if n > 0 {
				out = append(out, n)
			}
			prevEnd = e
			return n
		}
		for pos := ini; pos < end; {
			c := getCpt(pos)
			flags := getFlags(pos)
			if c == '\'' && pos+1 < end {
				cn := asciiLower(getCpt(pos + 1))
				if cn == 's' || cn == 't' || cn == 'm' || cn == 'd' {
					pos += add(pos + 2)
					continue
				}
				if pos+2 < end {
					cnn := asciiLower(getCpt(pos + 2))
					if (cn == 'r' && cnn == 'e') || (cn == 'v' && cnn == 'e') || (cn == 'l' && cnn == 'l') {
						pos += add(pos + 3)
						continue
					}
				}
			}
			// [^\r\n\p{L}\p{N}]?\p{L}+
			if !(c == '\r' || c == '\n' || flags&cfNumber != 0) {
				if flags&cfLetter != 0 || getFlags(pos+1)&cfLetter != 0 {
					pos++
					for getFlags(pos)&cfLetter != 0 {
						pos++
					}
					add(pos)
					continue
				}
			}
			if flags&cfNumber != 0 {
				if single {
					pos++
					add(pos)
					continue
				}
				i0 := pos
				for getFlags(pos)&cfNumber != 0 {
					pos++
					if pos-i0 >= 3 {
						add(pos)
						i0 = pos
					}
				}
				add(pos)
				continue
			}
			// <space>?[^\s\p{L}\p{N}]+[\r\n]*
			flags2 := flags
			if c == ' ' {
				flags2 = getFlags(pos + 1)
			}
			if flags2&(cfWhitespace|cfLetter|cfNumber) == 0 && flags != 0 {
				if c == ' ' {
					pos++
				}
				for flags2&(cfWhitespace|cfLetter|cfNumber) == 0 && flags2 != 0 {
					pos++
					flags2 = getFlags(pos)
				}
				c2 := getCpt(pos)
				for c2 == '\r' || c2 == '\n' {
					pos++
					c2 = getCpt(pos)
				}
				add(pos)
				continue
			}
			nws, lastRN := 0, 0
			for getFlags(pos+nws)&cfWhitespace != 0 {
				c2 := getCpt(pos + nws)
				if c2 == '\r' || c2 == '\n' {
					lastRN = pos + nws + 1
				}
				nws++
			}
			if lastRN > 0 {
				pos = lastRN
				add(pos)
				continue
			}
			if nws > 1 && getCpt(pos+nws) != outOfRange {
				pos += nws - 1
				add(pos)
				continue
			}
			if nws > 0 {
				pos += nws
				add(pos)
				continue
			}
			pos++
			add(pos)
		}
	}
	return out
}
