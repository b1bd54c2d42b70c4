package tokenizer

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Tokenizer encodes and decodes text exactly as llama.cpp does for the same vocabulary. It is safe
// for concurrent use.
type Tokenizer struct {
	v       *Vocab
	spm     bool
	bpe     *bpeModel
	pre     preInfo
	tokens  []string
	scores  []float32
	attrs   []uint8
	tokenID map[string]int32

	bos, eos, unk, eot int
	addBOS, addEOS     bool
	addSpacePrefix     bool
	cleanSpaces        bool

	specials []int // control / user-defined / unknown ids, longest text first
	eog      map[int]bool
	pieces   [][]byte  // token_to_piece(special=true)
	byteTok  [256]int  // SPM byte fallback ids
	isolated [256]bool // SPM: ASCII bytes no token of two or more bytes contains
}

// New checks v and builds a tokenizer. v is not modified and must not be modified later.
func New(v *Vocab) (*Tokenizer, error) {
	if v == nil {
		return nil, fmt.Errorf("%w: nil vocabulary", ErrVocab)
	}
	n := len(v.Tokens)
	if n == 0 {
		return nil, fmt.Errorf("%w: no tokens", ErrVocab)
	}
	if n > 1<<30 {
		return nil, fmt.Errorf("%w: %d tokens is too many", ErrVocab, n)
	}
	if v.Scores != nil && len(v.Scores) < n {
		return nil, fmt.Errorf("%w: %d scores for %d tokens", ErrVocab, len(v.Scores), n)
	}
	if v.Types != nil && len(v.Types) < n {
		return nil, fmt.Errorf("%w: %d token types for %d tokens", ErrVocab, len(v.Types), n)
	}
	t := &Tokenizer{
		v:              v,
		tokens:         make([]string, n),
		scores:         make([]float32, n),
		attrs:          make([]uint8, n),
		tokenID:        make(map[string]int32, n),
		addBOS:         v.AddBOS,
		addEOS:         v.AddEOS,
		addSpacePrefix: v.AddSpacePrefix,
		eog:            map[int]bool{},
	}
	inRange := func(id int) int {
		if id < 0 || id >= n {
			return -1
		}
		return id
	}
	t.bos, t.eos, t.unk, t.eot = inRange(v.BOS), inRange(v.EOS), inRange(v.UNK), inRange(v.EOT)
	for i, s := range v.Tokens {
		if s == "" {
			s = "[EMPTY_" + strconv.Itoa(i) + "]"
		}
		t.tokens[i] = s
		t.tokenID[s] = int32(i) // a repeated text maps to its last id, as in llama.cpp
		if v.Scores != nil {
			t.scores[i] = v.Scores[i]
		}
		t.attrs[i] = attrNormal
		if v.Types != nil {
			t.attrs[i] = typeToAttr(v.Types[i])
		}
	}
	switch v.Model {
	case "llama":
		t.spm = true
		for b := 0; b < 0x80; b++ {
			t.isolated[b] = true
		}
		for _, s := range t.tokens {
			if len(s) > 1 {
				for i := 0; i < len(s); i++ {
					t.isolated[s[i]] = false
				}
			}
		}
		for b := 0; b < 256; b++ {
			t.byteTok[b] = t.unk
			if id, ok := t.tokenID[fmt.Sprintf("<0x%02X>", b)]; ok {
				t.byteTok[b] = int(id)
			} else if id, ok := t.tokenID[string([]byte{byte(b)})]; ok {
				t.byteTok[b] = int(id)
			}
		}
	case "gpt2":
		pi, err := lookupPre(v.Pre)
		if err != nil {
			return nil, err
		}
		t.pre = pi
		t.cleanSpaces = pi.cleanSpaces
		t.bpe = newBPE(t, v.Merges, pi)
	default:
		return nil, fmt.Errorf("%w: tokenizer model %q is not supported (only \"llama\" and \"gpt2\")", ErrVocab, v.Model)
	}
	t.detectSpecials()
	t.pieces = make([][]byte, n)
	for i := range t.pieces {
		t.pieces[i] = t.piece(i)
	}
	return t, nil
}

// detectSpecials mirrors the by-name special token detection of llama_vocab::impl::load: EOT,
// EOM and FIM tokens, the end-of-generation set, and the attribute fixes that come with them.
func (t *Tokenizer) detectSpecials() {
	find := func(names []string) int {
		best := -1
		for _, s := range names {
			if id, ok := t.tokenID[s]; ok && (best < 0 || int(id) < best) {
				best = int(id)
			}
		}
		if best >= 0 {
			t.attrs[best] |= attrControl
		}
		return best
	}
	if t.eot < 0 {
		t.eot = find(eotNames)
	}
	eom := find(eomNames)
	find(fimPreNames)
	find(fimSufNames)
	find(fimMidNames)
	for _, names := range [][]string{fimPadNames, fimRepNames, fimSepNames} {
		if id := find(names); id >= 0 {
			t.eog[id] = true
		}
	}
	// control tokens named "unused" are unused
	for i, s := range t.tokens {
		if t.attrs[i]&attrControl != 0 && strings.Contains(s, "unused") {
			t.attrs[i] |= attrUnused
		}
	}
	for _, s := range eogNames {
		if id, ok := t.tokenID[s]; ok {
			t.eog[int(id)] = true
			t.attrs[id] |= attrControl
		}
	}
	for _, id := range []int{t.eos, t.eot, eom} {
		if id >= 0 {
			t.eog[id] = true
		}
	}
	// gpt-oss / solar-open: "<|end|>" is not EOG when "<|return|>"+"<|call|>" or "<|calls|>"+"<|flush|>" are
	has := func(s string) (int, bool) {
		id, ok := t.tokenID[s]
		return int(id), ok && t.eog[int(id)]
	}
	_, hasReturn := has("<|return|>")
	_, hasCall := has("<|call|>")
	_, hasCalls := has("<|calls|>")
	_, hasFlush := has("<|flush|>")
	if endID, hasEnd := has("<|end|>"); hasEnd && ((hasReturn && (hasCall || hasCalls)) || ((hasCall || hasCalls) && hasFlush)) {
		delete(t.eog, endID)
		t.attrs[endID] = attrUserDefined
	}
	if _, hasTR := has("<|tool_response>"); hasTR {
		if sID, hasS := has("</s>"); hasS {
			delete(t.eog, sID)
			t.attrs[sID] = attrNormal
		}
	}
	for _, s := range []string{"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"} {
		if id, ok := t.tokenID[s]; ok {
			t.attrs[id] = attrUserDefined
		}
	}
	t.specials = t.specials[:0]
	for i, a := range t.attrs {
		if a&(attrControl|attrUserDefined|attrUnknown) != 0 {
			t.specials = append(t.specials, i)
		}
	}
	sort.SliceStable(t.specials, func(a, b int) bool {
		return len(t.tokens[t.specials[a]]) > len(t.tokens[t.specials[b]])
	})
}

// Encode returns the token ids of text, as llama.cpp's llama_tokenize(text, add_special,
// parse_special): with addSpecial, BOS / EOS are added as the vocabulary asks (AddBOS / AddEOS);
// with parseSpecial, control and unknown token texts in text become those tokens (user-defined
// tokens always do).
func (t *Tokenizer) Encode(text string, addSpecial, parseSpecial bool) []int {
	out := make([]int, 0, len(text)/3+2)
	var frags []fragment
	if text != "" {
		frags = t.partition(text, parseSpecial)
	}
	if t.spm {
		prevSpecial := true
		if addSpecial && t.addBOS && t.bos >= 0 {
			out = append(out, t.bos)
		}
		var sb strings.Builder
		for _, f := range frags {
			if f.tok >= 0 {
				out = append(out, f.tok)
				prevSpecial = true
				continue
			}
			sb.Reset()
			if t.addSpacePrefix && prevSpecial {
				sb.WriteString("\u2581")
			}
			escapeSpaces(&sb, text[f.off:f.off+f.n])
			out = t.encodeSPM(sb.String(), out)
			prevSpecial = false
		}
		if addSpecial && t.addEOS && t.eos >= 0 {
			out = append(out, t.eos)
		}
		return out
	}
	if addSpecial && t.addBOS && t.bos >= 0 {
		out = append(out, t.bos)
	}
	for _, f := range frags {
		if f.tok >= 0 {
			out = append(out, f.tok)
			continue
		}
		out = t.bpe.encode(t, text[f.off:f.off+f.n], out)
	}
	if addSpecial && t.addEOS && t.eos >= 0 {
		out = append(out, t.eos)
	}
	return out
}

func escapeSpaces(sb *strings.Builder, s string) {
	sb.Grow(len(s) + len(s)/4)
	for {
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			sb.WriteString(s)
			return
		}
		sb.WriteString(s[:i])
		sb.WriteString("\u2581")
		s = s[i+1:]
	}
}

// NVocab is the number of tokens.
func (t *Tokenizer) NVocab() int { return len(t.tokens) }

// BOS is the beginning-of-sequence id, -1 if none.
func (t *Tokenizer) BOS() int { return t.bos }

// EOS is the end-of-sequence id, -1 if none.
func (t *Tokenizer) EOS() int { return t.eos }

// EOT is the end-of-turn id (given or found by name, as llama.cpp), -1 if none.
func (t *Tokenizer) EOT() int { return t.eot }

// AddBOS reports whether Encode with addSpecial starts with BOS.
func (t *Tokenizer) AddBOS() bool { return t.addBOS && t.bos >= 0 }

// Kind is the vocabulary model: "llama" (SentencePiece BPE) or "gpt2" (byte-level BPE).
func (t *Tokenizer) Kind() string { return t.v.Model }

// IsEOG reports whether id ends generation: EOS, EOT, EOM and the tokens llama.cpp recognises by
// name (<|im_end|>, <|endoftext|>, <|eot_id|>, <end_of_turn>, ..., and FIM pad/repo/sep tokens).
func (t *Tokenizer) IsEOG(id int) bool { return t.eog[id] }

// IsControl reports whether id is a control token (rendered as nothing by Decode and Piece).
func (t *Tokenizer) IsControl(id int) bool {
	return id >= 0 && id < len(t.attrs) && t.attrs[id]&attrControl != 0
}

// Text is the vocabulary text of id ("" when out of range).
func (t *Tokenizer) Text(id int) string {
	if id < 0 || id >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// ID returns the id of the token whose vocabulary text is s.
func (t *Tokenizer) ID(s string) (int, bool) {
	id, ok := t.tokenID[s]
	return int(id), ok
}
