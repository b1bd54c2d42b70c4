package tokenizer_test

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
)

// llama.cpp references for SmolLM2-135M-Instruct (llama-tokenize --ids, llama.cpp commit
// 3f545bec, on the Q4_1 GGUF; add_bos is false for this vocab, so no BOS). Stored compactly: the
// count, the sha256 of the ids joined by ",", and the first and last 50 ids.
var smolLlamaRefs = []struct {
	text             string
	bytes            int // prefix length, 0 = whole file
	dropFinalNewline bool
	n                int
	sha256           string
	head, tail       []int
}{
	{ // the whole file, verbatim
		text: "wiki.test.raw", bytes: 0, dropFinalNewline: false, n: 303415,
		sha256: "87639c7cecd03417d12f2249b08e7845a601791575127e366873107c01234165",
		head:   []int{3717, 446, 6356, 389, 9226, 352, 446, 3717, 3717, 6356, 389, 9226, 352, 314, 354, 2321, 4771, 3297, 8552, 284, 16984, 17523, 1673, 909, 761, 253, 16204, 3394, 29, 48, 45608, 1791, 335, 260, 8552, 3086, 378, 8593, 281, 216, 34, 32, 32, 32, 1673, 669, 436, 3922, 411, 253},
		tail:   []int{1791, 281, 260, 4599, 282, 260, 1843, 1673, 3550, 6393, 736, 2766, 3297, 351, 2852, 355, 13478, 5027, 282, 17352, 3297, 288, 457, 5019, 347, 2859, 327, 17386, 28614, 519, 3297, 1285, 17668, 27375, 16103, 3297, 3395, 12694, 3297, 3395, 22850, 3297, 284, 28614, 519, 19334, 2393, 1673, 3717, 3717},
	},
	{ // the whole file without its final newline (as common's -f reading gives it)
		text: "wiki.test.raw", bytes: 0, dropFinalNewline: true, n: 303415,
		sha256: "7e9b182efac85cf45039e79955d80d06060d43c3e8a013fcf5895f40061488d8",
		head:   []int{3717, 446, 6356, 389, 9226, 352, 446, 3717, 3717, 6356, 389, 9226, 352, 314, 354, 2321, 4771, 3297, 8552, 284, 16984, 17523, 1673, 909, 761, 253, 16204, 3394, 29, 48, 45608, 1791, 335, 260, 8552, 3086, 378, 8593, 281, 216, 34, 32, 32, 32, 1673, 669, 436, 3922, 411, 253},
		tail:   []int{1791, 281, 260, 4599, 282, 260, 1843, 1673, 3550, 6393, 736, 2766, 3297, 351, 2852, 355, 13478, 5027, 282, 17352, 3297, 288, 457, 5019, 347, 2859, 327, 17386, 28614, 519, 3297, 1285, 17668, 27375, 16103, 3297, 3395, 12694, 3297, 3395, 22850, 3297, 284, 28614, 519, 19334, 2393, 1673, 3717, 216},
	},
	{ // first 20,000 bytes
		text: "wiki.test.raw", bytes: 20000, dropFinalNewline: false, n: 4678,
		sha256: "f66ad3adecb001ccfe7ff2f7982ae5034ab0f1fbe58e30c216e61e5846d62f22",
		head:   []int{3717, 446, 6356, 389, 9226, 352, 446, 3717, 3717, 6356, 389, 9226, 352, 314, 354, 2321, 4771, 3297, 8552, 284, 16984, 17523, 1673, 909, 761, 253, 16204, 3394, 29, 48, 45608, 1791, 335, 260, 8552, 3086, 378, 8593, 281, 216, 34, 32, 32, 32, 1673, 669, 436, 3922, 411, 253},
		tail:   []int{7844, 14620, 3480, 476, 1673, 4822, 3297, 650, 11515, 722, 253, 3599, 1845, 282, 24057, 3297, 429, 260, 1454, 284, 41557, 288, 260, 511, 14113, 284, 639, 3394, 29, 48, 26105, 6546, 1673, 669, 3175, 314, 26908, 908, 1127, 1212, 1806, 1577, 29140, 14316, 260, 3297, 476, 3539, 30690, 216},
	},
	{ // first 20,000 bytes
		text: "tinystories_valid_first1000.txt", bytes: 20000, dropFinalNewline: false, n: 5065,
		sha256: "5ea65aa2f27e3fbe1f83cab2527f2d47cd575d24434ab1e56ede4420a2129749",
		head:   []int{8103, 320, 30, 23204, 3680, 260, 20581, 1076, 284, 1137, 28, 476, 32373, 28, 14932, 866, 28, 469, 1076, 314, 588, 5681, 284, 2577, 6653, 14932, 866, 18628, 284, 12028, 28, 476, 19503, 346, 28, 23204, 30, 339, 34140, 357, 897, 1194, 1270, 198, 198, 4582, 4464, 351, 260, 1076},
		tail:   []int{4592, 1365, 3318, 30, 378, 1867, 1194, 28, 502, 4944, 1163, 28, 284, 502, 592, 1062, 1035, 5587, 30, 198, 198, 6403, 1980, 253, 655, 28, 665, 436, 253, 1838, 8180, 3365, 14176, 30, 2306, 5732, 288, 724, 874, 2910, 281, 260, 4480, 30, 1069, 10641, 5035, 284, 12635, 216},
	},
}

func idsSHA256(ids []int) string {
	var sb strings.Builder
	for i, id := range ids {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.Itoa(id))
	}
	h := sha256.Sum256([]byte(sb.String()))
	return hex.EncodeToString(h[:])
}

// TestSmolLM2LlamaCppRefs: both the GGUF and the tokenizer.json vocab give llama.cpp's ids exactly.
func TestSmolLM2LlamaCppRefs(t *testing.T) {
	toks := map[string]interface {
		Encode(string, bool, bool) []int
	}{"hf": smolHF(t), "gguf": ggufTokenizer(t, testenv.SmolLM2Path(t))}
	for _, r := range smolLlamaRefs {
		text := readPrefix(t, r.text, r.bytes)
		if r.dropFinalNewline {
			text = strings.TrimSuffix(text, "\n")
		}
		for name, tok := range toks {
			got := tok.Encode(text, true, false)
			if len(got) != r.n || !slices.Equal(got[:50], r.head) || !slices.Equal(got[len(got)-50:], r.tail) || idsSHA256(got) != r.sha256 {
				t.Errorf("%s: %s (%d bytes, drop newline %v): %d ids, want %d; head ok %v, tail ok %v, sha256 %s want %s",
					name, r.text, r.bytes, r.dropFinalNewline, len(got), r.n, len(got) >= 50 && slices.Equal(got[:50], r.head),
					len(got) >= 50 && slices.Equal(got[len(got)-50:], r.tail), idsSHA256(got), r.sha256)
			}
		}
	}
}
