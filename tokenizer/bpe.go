package tokenizer

import (
	"strings"
	"sync"
)

// Byte-level BPE (llama.cpp's llm_tokenizer_bpe_session): the pre-tokenizer cuts the text into
// words, each word is byte-encoded (GPT-2 byte-to-unicode), split into code points and merged
// pairwise by lowest merge rank (ties: leftmost first) until no ranked pair is left.

type bpeModel struct {
	pre   preInfo
	ranks map[uint64]int32 // (left sym id, right sym id) -> rank
	// symbol strings seen in merges, interned: merge halves and results
	symID   map[string]int32
	symTok  []int32 // sym id -> token id (-1 if the text is not a token)
	mergeTo []int32 // rank -> sym id of the merged text

	mu    sync.Mutex
	cache map[string][]int32 // byte-encoded word -> token ids
}

const bpeCacheMax = 1 << 17

func newBPE(t *Tokenizer, merges []string, pre preInfo) *bpeModel {
	m := &bpeModel{
		pre:     pre,
		ranks:   make(map[uint64]int32, len(merges)),
		symID:   make(map[string]int32, len(merges)*2),
		mergeTo: make([]int32, len(merges)),
		cache:   make(map[string][]int32),
	}
	intern := func(s string) int32 {
		if id, ok := m.symID[s]; ok {
			return id
		}
		id := int32(len(m.symTok))
		m.symID[s] = id
		tok := int32(-1)
		if tid, ok := t.tokenID[s]; ok {
			tok = tid
		}
		m.symTok = append(m.symTok, tok)
		return id
	}
	for i, w := range merges {
		// as llama.cpp: split at the first space after the first byte; no space -> ("", "")
		var a, b string
		if len(w) > 1 {
			if p := strings.IndexByte(w[1:], ' '); p >= 0 {
				a, b = w[:p+1], w[p+2:]
			}
		}
		ia, ib := intern(a), intern(b)
		key := uint64(uint32(ia))<<32 | uint64(uint32(ib))
		m.mergeTo[i] = intern(a + b)
		if _, dup := m.ranks[key]; !dup { // unordered_map::emplace keeps the first
			m.ranks[key] = int32(i)
		}
	}
	return m
}

type bpeSym struct {
	start, n   int32
	prev, next int32
	id         int32 // interned symbol id, -1 if the text never occurs in a merge
}

type bpeBigram struct {
	left, right int32
	rank        int32
	size        int32
}

// before orders the merge queue: lower merge rank first, then the leftmost pair.
func (a bpeBigram) before(b bpeBigram) bool {
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	return a.left < b.left
}

type bpeScratch struct {
	syms []bpeSym
	heap minHeap[bpeBigram]
	buf  []byte
	cpts []uint32
}

var bpeScratchPool = sync.Pool{New: func() any { return new(bpeScratch) }}

// encode appends the ids of raw text (one fragment without special tokens).
func (m *bpeModel) encode(t *Tokenizer, text string, out []int) []int {
	sc := bpeScratchPool.Get().(*bpeScratch)
	defer bpeScratchPool.Put(sc)
	sc.cpts = decodeCpts(text, sc.cpts)
	cpts := sc.cpts
	segs := splitWords(m.pre.kind, cpts, nil, nil)
	pos := 0
	for _, l := range segs {
		buf := sc.buf[:0]
		for _, c := range cpts[pos : pos+l] {
			if c < 0x80 {
				buf = append(buf, byteEnc[c]...)
				continue
			}
			var u [4]byte
			for _, b := range appendCpt(u[:0], c) {
				buf = append(buf, byteEnc[b]...)
			}
		}
		sc.buf = buf
		pos += l
		out = m.encodeWord(t, sc, buf, out)
	}
	return out
}

func (m *bpeModel) encodeWord(t *Tokenizer, sc *bpeScratch, word []byte, out []int) []int {
	m.mu.Lock()
	ids, ok := m.cache[string(word)]
	m.mu.Unlock()
	if ok {
		for _, id := range ids {
			out = append(out, int(id))
		}
		return out
	}
	ids = m.mergeWord(t, sc, string(word))
	m.mu.Lock()
	if len(m.cache) >= bpeCacheMax {
		clear(m.cache)
	}
	m.cache[string(word)] = ids
	m.mu.Unlock()
	for _, id := range ids {
		out = append(out, int(id))
	}
	return out
}

func (m *bpeModel) mergeWord(t *Tokenizer, sc *bpeScratch, word string) []int32 {
	if m.pre.ignoreMerges {
		if id, ok := t.tokenID[word]; ok {
			return []int32{id}
		}
	}
	syms := sc.syms[:0]
	for off := 0; off < len(word); {
		n := min(utf8Len(word[off]), len(word)-off)
		id := int32(-1)
		if sid, ok := m.symID[word[off:off+n]]; ok {
			id = sid
		}
		syms = append(syms, bpeSym{start: int32(off), n: int32(n), prev: int32(len(syms) - 1), next: int32(len(syms) + 1), id: id})
		off += n
	}
	if len(syms) > 0 {
		syms[len(syms)-1].next = -1
	}
	h := sc.heap[:0]
	addBigram := func(l, r int32) {
		if l < 0 || r < 0 {
			return
		}
		a, b := syms[l].id, syms[r].id
		if a < 0 || b < 0 {
			return
		}
		rank, ok := m.ranks[uint64(uint32(a))<<32|uint64(uint32(b))]
		if !ok {
			return
		}
		h.push(bpeBigram{left: l, right: r, rank: rank, size: syms[l].n + syms[r].n})
	}
	for i := 1; i < len(syms); i++ {
		addBigram(int32(i-1), int32(i))
	}
	for len(h) > 0 {
		bg := h.pop()
		ls, rs := &syms[bg.left], &syms[bg.right]
		// outdated: one side already merged away, or grown (texts only ever grow)
		if ls.n == 0 || rs.n == 0 || ls.n+rs.n != bg.size || ls.next != bg.right {
			continue
		}
		ls.n += rs.n
		rs.n = 0
		ls.id = m.mergeTo[bg.rank]
		ls.next = rs.next
		if rs.next >= 0 {
			syms[rs.next].prev = bg.left
		}
		addBigram(ls.prev, bg.left)
		addBigram(bg.left, ls.next)
	}
	sc.syms, sc.heap = syms, h
	var ids []int32
	for i := range syms {
		s := &syms[i]
		if s.n == 0 {
			continue
		}
		text := word[s.start : s.start+s.n]
		tok := int32(-1)
		if s.id >= 0 {
			tok = m.symTok[s.id]
		} else if id, ok := t.tokenID[text]; ok {
			tok = id
		}
		if tok >= 0 {
			ids = append(ids, tok)
			continue
		}
		// llama.cpp looks every single byte of the (byte-encoded) text up as a token
		for j := 0; j < len(text); j++ {
			if id, ok := t.tokenID[text[j:j+1]]; ok {
				ids = append(ids, id)
			}
		}
	}
	return ids
}
