package tokenizer

import "strings"

// fragment is a piece of the input: a special token (tok >= 0) or raw text text[off:off+n].
type fragment struct {
	tok    int
	off, n int
}

// partition is llama.cpp's tokenizer_st_partition: special tokens (control, user-defined and
// unknown; only user-defined ones unless parseSpecial) are cut out of the text, longest token
// text first, each one everywhere it occurs in the remaining raw fragments.
func (t *Tokenizer) partition(text string, parseSpecial bool) []fragment {
	frags := []fragment{{tok: -1, off: 0, n: len(text)}}
	if len(t.specials) == 0 {
		return frags
	}
	var next []fragment
	for _, id := range t.specials {
		if !parseSpecial && t.attrs[id]&(attrControl|attrUnknown) != 0 {
			continue
		}
		st := t.tokens[id]
		if st == "" {
			continue
		}
		changed := false
		next = next[:0]
		for _, f := range frags {
			if f.tok >= 0 {
				next = append(next, f)
				continue
			}
			off, end := f.off, f.off+f.n
			for off < end {
				i := strings.Index(text[off:end], st)
				if i < 0 {
					break
				}
				changed = true
				if i > 0 {
					next = append(next, fragment{tok: -1, off: off, n: i})
				}
				next = append(next, fragment{tok: id})
				off += i + len(st)
			}
			if off < end {
				next = append(next, fragment{tok: -1, off: off, n: end - off})
			}
		}
		if changed {
			frags, next = next, frags
		}
	}
	return frags
}
