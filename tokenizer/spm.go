package tokenizer

import "sync"

// SentencePiece-style BPE (llama.cpp's llm_tokenizer_spm_session): the text (spaces already
// escaped to U+2581) is split into UTF-8 characters, and adjacent symbols are merged while their
// concatenation is a token, highest score first (ties: leftmost first). Symbols that end up not
// being tokens fall back to <0xXX> byte tokens.

type spmSym struct {
	start, n   int32
	prev, next int32
}

type spmBigram struct {
	left, right int32
	score       float32
	size        int32
}

// before orders the merge queue: higher score first, then the leftmost pair (llama.cpp's
// llm_bigram_spm::comparator).
func (a spmBigram) before(b spmBigram) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	return a.left < b.left
}

type spmScratch struct {
	syms []spmSym
	heap minHeap[spmBigram]
}

var spmScratchPool = sync.Pool{New: func() any { return new(spmScratch) }}

// encodeSPM appends the ids of text (already whitespace-escaped). The text is cut at ASCII
// characters that no longer token contains: such a character can never merge, so the pieces on
// either side evolve independently and the result is the same as llama.cpp's single pass, with
// a much smaller work queue.
func (t *Tokenizer) encodeSPM(text string, out []int) []int {
	start := 0
	for i := 0; i < len(text); i++ {
		if t.isolated[text[i]] {
			out = t.encodeSPMPiece(text[start:i], out)
			out = t.encodeSPMPiece(text[i:i+1], out)
			start = i + 1
		}
	}
	return t.encodeSPMPiece(text[start:], out)
}

func (t *Tokenizer) encodeSPMPiece(text string, out []int) []int {
	if len(text) == 0 {
		return out
	}
	sc := spmScratchPool.Get().(*spmScratch)
	defer spmScratchPool.Put(sc)
	syms := sc.syms[:0]
	for off := 0; off < len(text); {
		n := min(utf8Len(text[off]), len(text)-off)
		syms = append(syms, spmSym{start: int32(off), n: int32(n), prev: int32(len(syms) - 1), next: int32(len(syms) + 1)})
		off += n
	}
	syms[len(syms)-1].next = -1
	h := sc.heap[:0]
	addBigram := func(l, r int32) {
		if l < 0 || r < 0 {
			return
		}
		s := text[syms[l].start : syms[r].start+syms[r].n]
		id, ok := t.tokenID[s]
		if !ok {
			return
		}
		h.push(spmBigram{left: l, right: r, score: t.scores[id], size: int32(len(s))})
	}
	for i := 1; i < len(syms); i++ {
		addBigram(int32(i-1), int32(i))
	}
	for len(h) > 0 {
		bg := h.pop()
		ls, rs := &syms[bg.left], &syms[bg.right]
		if ls.n == 0 || rs.n == 0 || ls.n+rs.n != bg.size {
			continue
		}
		ls.n += rs.n
		rs.n = 0
		ls.next = rs.next
		if rs.next >= 0 {
			syms[rs.next].prev = bg.left
		}
		addBigram(ls.prev, bg.left)
		addBigram(bg.left, ls.next)
	}
	sc.syms, sc.heap = syms, h
	for i := int32(0); i != -1; i = syms[i].next {
		s := text[syms[i].start : syms[i].start+syms[i].n]
		if id, ok := t.tokenID[s]; ok {
			out = append(out, int(id))
			continue
		}
		for j := 0; j < len(s); j++ {
			if id := t.byteToken(s[j]); id >= 0 {
				out = append(out, id)
			}
		}
	}
	return out
}

// byteToken is llama.cpp's byte_to_token for SPM vocabularies: "<0xXX>", else the byte itself as a
// token; where llama.cpp would throw, the unknown token (or nothing) is used.
func (t *Tokenizer) byteToken(b byte) int {
	return t.byteTok[b]
}
