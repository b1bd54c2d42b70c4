package tokenizer

import (
	"fmt"
	"strings"
)

// piece is llama.cpp's token_to_piece(id, lstrip 0, special true), the cached form.
func (t *Tokenizer) piece(id int) []byte {
	a := t.attrs[id]
	s := t.tokens[id]
	switch {
	case a&(attrUnknown|attrControl|attrUserDefined) != 0:
		return []byte(s)
	case a&attrNormal != 0:
		if t.spm {
			return []byte(strings.ReplaceAll(s, "\u2581", " "))
		}
		return decodeByteLevel(s)
	case a&attrByte != 0:
		return []byte{hexByte(s)}
	}
	return nil
}

// hexByte parses the two hex digits of "<0xXX>" as strtol would (0 when absent or invalid).
func hexByte(s string) byte {
	if len(s) < 4 {
		return 0
	}
	h := s[3:min(5, len(s))]
	v := 0
	for i := 0; i < len(h); i++ {
		c := h[i]
		var d int
		switch {
		case c >= '0' && c <= '9':
			d = int(c - '0')
		case c >= 'a' && c <= 'f':
			d = int(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = int(c-'A') + 10
		default:
			return byte(v)
		}
		v = v*16 + d
	}
	return byte(v)
}

// decodeByteLevel is llama.cpp's llama_decode_text: GPT-2 byte-level code points back to bytes.
func decodeByteLevel(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c, n := decodeCpt(s, i)
		if b, ok := cptToByte[c]; ok {
			out = append(out, b)
		} else {
			u := appendCpt(nil, c)
			out = append(out, "[UNK_BYTE_0x"...)
			for _, x := range u {
				out = append(out, fmt.Sprintf("%02x", x)...)
			}
			out = append(out, s...)
			out = append(out, ']')
		}
		i += n
	}
	return out
}

// Piece returns the bytes of one token as llama.cpp's llama_token_to_piece(special = false)
// renders it: control and unknown tokens are empty, byte tokens are one raw byte, a piece may be
// part of a UTF-8 character (see Streamer). The slice is the caller's.
func (t *Tokenizer) Piece(id int) []byte {
	if id < 0 || id >= len(t.pieces) || t.attrs[id]&(attrUnknown|attrControl) != 0 {
		return nil
	}
	return append([]byte(nil), t.pieces[id]...)
}

// Decode turns ids back into text as llama.cpp's common_detokenize(special = false): control
// tokens vanish, and the space a SentencePiece vocab puts in front of the first word is dropped
// unless the first token is BOS (llama_detokenize). Out-of-range ids are skipped.
func (t *Tokenizer) Decode(ids []int) string {
	return t.Detokenize(ids, false, false)
}

// Detokenize is llama.cpp's llama_detokenize(remove_special, unparse_special).
func (t *Tokenizer) Detokenize(ids []int, removeSpecial, unparseSpecial bool) string {
	removeSpace := t.addSpacePrefix
	if removeSpecial && t.addBOS && len(ids) > 0 && ids[0] == t.bos {
		removeSpace = false
		ids = ids[1:]
	}
	if removeSpecial && t.addEOS && len(ids) > 0 && ids[len(ids)-1] == t.eos {
		ids = ids[:len(ids)-1]
	}
	var text []byte
	for _, id := range ids {
		if id < 0 || id >= len(t.pieces) {
			continue
		}
		p := t.pieces[id]
		if !unparseSpecial && t.attrs[id]&(attrUnknown|attrControl) != 0 {
			p = nil
		}
		if removeSpace && len(p) > 0 && p[0] == ' ' {
			p = p[1:]
		}
		removeSpace = false
		text = append(text, p...)
	}
	if t.cleanSpaces {
		text = cleanSpaces(text)
	}
	return string(text)
}

// cleanSpaces is the clean_up_tokenization_spaces step of llama_detokenize, ported literally.
func cleanSpaces(text []byte) []byte {
	total := len(text)
	// " ?", " !", " .", " ,"
	total1 := total
	total = min(total, 1)
	for i := 1; i < total1; i++ {
		x := text[i]
		if text[i-1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',') {
			total--
		}
		text[total] = x
		total++
	}
	// " ' "
	total2 := total
	total = min(total, 1)
	for i := 1; i < total2; i++ {
		x := text[i]
		if x == '\'' && i+1 < total2 && text[i-1] == ' ' && text[i+1] == ' ' {
			total--
			i++
			text[i] = 0
		}
		text[total] = x
		total++
	}
	// " 's", " 'm", " 're", " 've"
	total3 := total
	total = min(total, 1)
	for i := 1; i < total3; i++ {
		x := text[i]
		if text[i-1] == ' ' && x == '\'' && i+1 < total3 {
			x1 := text[i+1]
			if x1 == 't' || x1 == 'd' {
			} else if x1 == 's' || x1 == 'm' {
				total--
			} else if i+2 < total3 {
				x2 := text[i+2]
				if (x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e') {
					total--
				}
			}
		}
		text[total] = x
		total++
	}
	return text[:total]
}
