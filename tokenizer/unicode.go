package tokenizer

import (
	"sort"
	"sync"
)

// Code point flags, the same bits as llama.cpp's unicode_cpt_flags.
const (
	cfUndefined   = 0x0001
	cfNumber      = 0x0002 // \p{N}
	cfLetter      = 0x0004 // \p{L}
	cfSeparator   = 0x0008 // \p{Z}
	cfAccentMark  = 0x0010 // \p{M}
	cfPunctuation = 0x0020 // \p{P}
	cfSymbol      = 0x0040 // \p{S}
	cfControl     = 0x0080 // \p{C}
	cfCategories  = 0x00FF
	cfWhitespace  = 0x0100 // \s
)

const maxCodepoints = 0x110000

var (
	bmpFlagsOnce sync.Once
	bmpFlags     []uint16 // flags of U+0000..U+FFFF
	wsSet        map[uint32]bool
)

func initFlags() {
	t := make([]uint16, 0x10000)
	for i := 0; i+1 < len(cptRangeStart); i++ {
		lo, hi := cptRangeStart[i], cptRangeStart[i+1]
		if lo >= 0x10000 {
			break
		}
		if hi > 0x10000 {
			hi = 0x10000
		}
		for c := lo; c < hi; c++ {
			t[c] = cptRangeFlags[i]
		}
	}
	wsSet = make(map[uint32]bool, len(cptWhitespace))
	for _, c := range cptWhitespace {
		wsSet[c] = true
		if c < 0x10000 {
			t[c] |= cfWhitespace
		}
	}
	bmpFlags = t
}

// cptFlags returns llama.cpp's flags of code point c (cfUndefined beyond U+10FFFF).
func cptFlags(c uint32) uint16 {
	bmpFlagsOnce.Do(initFlags)
	if c < 0x10000 {
		return bmpFlags[c]
	}
	if c >= maxCodepoints {
		return cfUndefined
	}
	i := sort.Search(len(cptRangeStart), func(i int) bool { return cptRangeStart[i] > c }) - 1
	f := cptRangeFlags[i]
	if wsSet[c] {
		f |= cfWhitespace
	}
	return f
}

// utf8Len is llama.cpp's unicode_len_utf8: the sequence length announced by a lead byte.
func utf8Len(b byte) int {
	return [16]int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4}[b>>4]
}

// decodeCpts mirrors llama.cpp's unicode_cpts_from_utf8: it decodes without rejecting overlong
// forms or surrogates, and maps each byte of an invalid sequence to U+FFFD.
func decodeCpts(s string, dst []uint32) []uint32 {
	dst = dst[:0]
	for i := 0; i < len(s); {
		c, n := decodeCpt(s, i)
		dst = append(dst, c)
		i += n
	}
	return dst
}

func decodeCpt(s string, i int) (uint32, int) {
	b0 := s[i]
	switch {
	case b0&0x80 == 0:
		return uint32(b0), 1
	case b0&0x40 == 0:
		return 0xFFFD, 1
	case b0&0x20 == 0:
		if i+1 >= len(s) || s[i+1]&0xC0 != 0x80 {
			return 0xFFFD, 1
		}
		return uint32(b0&0x1F)<<6 | uint32(s[i+1]&0x3F), 2
	case b0&0x10 == 0:
		if i+2 >= len(s) || s[i+1]&0xC0 != 0x80 || s[i+2]&0xC0 != 0x80 {
			return 0xFFFD, 1
		}
		return uint32(b0&0x0F)<<12 | uint32(s[i+1]&0x3F)<<6 | uint32(s[i+2]&0x3F), 3
	case b0&0x08 == 0:
		if i+3 >= len(s) || s[i+1]&0xC0 != 0x80 || s[i+2]&0xC0 != 0x80 || s[i+3]&0xC0 != 0x80 {
			return 0xFFFD, 1
		}
		return uint32(b0&0x07)<<18 | uint32(s[i+1]&0x3F)<<12 | uint32(s[i+2]&0x3F)<<6 | uint32(s[i+3]&0x3F), 4
	}
	return 0xFFFD, 1
}

// appendCpt appends the UTF-8 form of c (as llama.cpp's unicode_cpt_to_utf8; code points beyond
// U+10FFFF, which llama.cpp rejects with an exception, become U+FFFD).
func appendCpt(dst []byte, c uint32) []byte {
	switch {
	case c <= 0x7F:
		return append(dst, byte(c))
	case c <= 0x7FF:
		return append(dst, 0xC0|byte(c>>6&0x1F), 0x80|byte(c&0x3F))
	case c <= 0xFFFF:
		return append(dst, 0xE0|byte(c>>12&0x0F), 0x80|byte(c>>6&0x3F), 0x80|byte(c&0x3F))
	case c <= 0x10FFFF:
		return append(dst, 0xF0|byte(c>>18&0x07), 0x80|byte(c>>12&0x3F), 0x80|byte(c>>6&0x3F), 0x80|byte(c&0x3F))
	}
	return append(dst, 0xEF, 0xBF, 0xBD)
}

// GPT-2 byte-level mapping: every byte has a printable code point.
var (
	byteToCpt [256]uint32
	byteEnc   [256]string // UTF-8 of byteToCpt
	cptToByte map[uint32]byte
)

func init() {
	cptToByte = make(map[uint32]byte, 256)
	n := uint32(0)
	for b := 0; b < 256; b++ {
		if (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			byteToCpt[b] = uint32(b)
		} else {
			byteToCpt[b] = 256 + n
			n++
		}
		byteEnc[b] = string(appendCpt(nil, byteToCpt[b]))
		cptToByte[byteToCpt[b]] = byte(b)
	}
}
