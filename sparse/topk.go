package sparse

import (
	"fmt"
	"math"
	"slices"
	"unsafe"
)

// Top-K selection. The key of x_i is its magnitude: the float32 bits of |x_i| (sign cleared),
// which order like the magnitudes (+0 and -0 tie; NaN sorts above +Inf, so NaNs are always
// kept). The K largest keys are selected, ties broken by the lower index, and the indices are
// returned ascending. Selection is O(d): a radix select over the key bits (digits of 8, 8, 8
// and 7 bits, stopping as soon as the threshold's digit bucket is taken whole) finds the
// threshold in pure Go, then one pass writes the survivors in order. The SIMD backends find
// the same threshold by a binary search over the key whose every step is one AVX2 counting
// pass (countThreshold: 2.5-3x faster than the radix select on its AVX-512 compressed gather,
// measured on Zen 4), and write the survivors with an AVX-512 compress or, on AVX2, through a
// permutation table.

// KeepCount returns how many of d channels a sparsity ratio r keeps: int((1-r)*d) as in
// Q-Sparse, clamped to [0, d].
func KeepCount(d int, r float64) int {
	k := int((1 - r) * float64(d))
	return min(max(k, 0), d)
}

func absKey(v float32) uint32 { return math.Float32bits(v) & 0x7fffffff }

// TopK appends to idx[:0] the indices of the k largest |x_i| (ties: lower index first), in
// ascending order, and returns it. It does not allocate when cap(idx) >= k.
func TopK(idx []int32, x []float32, k int) []int32 {
	idx = idx[:0]
	d := len(x)
	if k <= 0 || d == 0 {
		return idx
	}
	if k >= d {
		for i := range x {
			idx = append(idx, int32(i))
		}
		return idx
	}
	if cap(idx) < k {
		idx = make([]int32, 0, k)
	}
	var lo, hi uint64
	var need int
	var whole bool
	if kern.topkCount != nil {
		lo, hi, need, whole = countThreshold(x, k, kern.topkCount)
	} else {
		lo, hi, need, whole = radixThreshold(x, k, idx[:cap(idx)])
	}
	return emitAbove(idx, x, lo, hi, need, whole, k)
}

// countThreshold is radixThreshold (same results) by binary search over the key for the
// largest t with count(t) >= kk keys at least t, where count is one SIMD pass: at most 31
// passes, and it stops at the first t that has exactly kk keys at or above it (typically
// after 15-20 on activations). For 0 < kk < len(src).
func countThreshold(src []float32, kk int, count func([]float32, uint32) int) (lo, hi uint64, need int, whole bool) {
	l, h := uint32(0), uint32(1)<<31 // count(l) = len(src) > kk; count(h) = 0 < kk
	ch := 0                          // count(h)
	for h-l > 1 {
		m := l + (h-l)/2
		switch c := count(src, m); {
		case c == kk: // the keys >= m are exactly the k largest
			return uint64(m), uint64(h), kk - ch, true
		case c > kk:
			l = m
		default:
			h, ch = m, c
		}
	}
	// h = l+1: l is the k-th largest key, held by more keys than the kk-ch still needed
	return uint64(l), uint64(h), kk - ch, false
}

// radixThreshold finds the selection threshold for the k largest keys. It returns lo, hi and
// need: every key >= hi is selected, and among keys in [lo, hi) the first need (lowest index)
// are selected; whole reports that need equals the count of keys in [lo, hi). The key's 31
// bits are taken as 8-bit digits (bits 30..23 — the exponent —, 22..15, 14..7, 6..0): one
// pass over x histograms the first digit, the keys of the threshold's bucket are gathered, and
// the later digits only look at those. scratch (idx's storage) holds the candidates when
// they fit.
func radixThreshold(src []float32, kk int, scratch []int32) (lo, hi uint64, need int, whole bool) {
	var hist [256]int32
	need = kk
	// digit 1. Neighbouring values often share a bucket, so four interleaved sub-histograms
	// keep the increments from waiting on each other.
	var sub [4][256]int32
	i := 0
	for ; i+4 <= len(src); i += 4 {
		sub[0][absKey(src[i])>>23]++
		sub[1][absKey(src[i+1])>>23]++
		sub[2][absKey(src[i+2])>>23]++
		sub[3][absKey(src[i+3])>>23]++
	}
	for ; i < len(src); i++ {
		sub[0][absKey(src[i])>>23]++
	}
	for b := range hist {
		hist[b] = sub[0][b] + sub[1][b] + sub[2][b] + sub[3][b]
	}
	b := 255
	for ; b > 0; b-- {
		c := int(hist[b])
		if c >= need {
			break
		}
		need -= c
	}
	prefix := uint32(b)
	if int(hist[b]) == need {
		return uint64(prefix) << 23, uint64(prefix+1) << 23, need, true
	}
	// gather the keys of that bucket so the later digits scan only them
	var cand []uint32 // nil: too many to keep, the digits below rescan src
	if nc := int(hist[b]); nc < len(scratch) {
		cand = unsafe.Slice((*uint32)(unsafe.Pointer(&scratch[0])), min(nc+16, len(scratch)))
		n := 0
		// branch-free gather: write every key, advance only past those in the bucket
		for _, v := range src {
			key := absKey(v)
			cand[n] = key
			n += b2i(key>>23 == prefix)
		}
		cand = cand[:n]
	}
	for _, d := range [3][2]uint{{15, 8}, {7, 8}, {0, 7}} {
		sh, wd := d[0], d[1]
		nb := 1 << wd
		h := hist[:nb]
		clear(h)
		top := sh + wd
		if cand != nil {
			m := 0
			for _, key := range cand {
				if key>>top == prefix {
					h[(key>>sh)&uint32(nb-1)]++
					cand[m] = key // keep only the keys still matching the prefix
					m++
				}
			}
			cand = cand[:m]
		} else {
			for _, v := range src {
				if key := absKey(v); key>>top == prefix {
					h[(key>>sh)&uint32(nb-1)]++
				}
			}
		}
		b := nb - 1
		for ; b > 0; b-- {
			c := int(h[b])
			if c >= need {
				break
			}
			need -= c
		}
		prefix = prefix<<wd | uint32(b)
		lo = uint64(prefix) << sh
		hi = uint64(prefix+1) << sh
		if int(h[b]) == need {
			return lo, hi, need, true
		}
	}
	return lo, hi, need, false
}

// emitAbove writes the selected indices in ascending order.
func emitAbove(idx []int32, src []float32, lo, hi uint64, need int, whole bool, kk int) []int32 {
	idx = idx[:kk]
	n := 0
	if whole { // every key >= lo is selected: compress
		l := uint32(lo)
		done := 0
		if kern.topkEmit != nil { // SIMD compress into idx's whole storage
			n, done = kern.topkEmit(idx[:cap(idx)], src, l)
		}
		for i := done; i < len(src) && n < kk; i++ {
			idx[n] = int32(i) // n < k here; overwritten until a survivor keeps it
			n += b2i(absKey(src[i]) >= l)
		}
		return idx[:kk]
	}
	for i, v := range src {
		key := uint64(absKey(v))
		if key >= hi {
			idx[n] = int32(i)
			n++
		} else if key >= lo && need > 0 {
			idx[n] = int32(i)
			n++
			need--
		}
		if n == kk {
			break
		}
	}
	return idx[:kk]
}

// TopKWeighted is TopK on the scores |x_i|·s_i (s: per-channel weight norms, as in WINA).
// scratch must hold len(x) float32s (nil allocates).
func TopKWeighted(idx []int32, x, s []float32, k int, scratch []float32) []int32 {
	if len(s) < len(x) {
		panic(fmt.Sprintf("sparse.TopKWeighted: %d weights for %d channels", len(s), len(x)))
	}
	if len(scratch) < len(x) {
		scratch = make([]float32, len(x))
	}
	scores := scratch[:len(x)]
	for i, v := range x {
		scores[i] = float32(math.Abs(float64(v))) * s[i]
	}
	return TopK(idx, scores, k)
}

// BlockTopN appends to idx[:0] the indices of the n largest |x_i| inside every block of m
// consecutive channels (Block Q-Sparse, N:M), ascending; ties go to the lower index. A last
// partial block keeps min(n, its length). It does not allocate when idx has room. With M = 16
// the SIMD backends rank each block's 16 keys in registers (block16AVX512, block16AVX2), as
// far as idx has room for their whole-vector stores; the rest runs here.
func BlockTopN(idx []int32, x []float32, n, m int) []int32 {
	idx = idx[:0]
	if n <= 0 || m <= 0 {
		return idx
	}
	b0 := 0
	if m == 16 && n < 16 && kern.block16 != nil {
		// whole blocks in SIMD, as many as idx has room for (the stores write whole vectors)
		nb := len(x) / 16
		if room := (cap(idx) - 16) / n; nb > room {
			nb = max(room, 0)
		}
		if nb > 0 {
			kern.block16(idx[:cap(idx)], x[:nb*16], n)
			idx, b0 = idx[:nb*n], nb*16
		}
	}
	var keys, sorted [64]uint64
	var kept [64]int32
	for ; b0 < len(x); b0 += m {
		blk := x[b0:min(b0+m, len(x))]
		if n >= len(blk) {
			for i := range blk {
				idx = append(idx, int32(b0+i))
			}
			continue
		}
		if len(blk) > 64 {
			idx = slices.Grow(idx, n)
			start := len(idx)
			sel := TopK(idx[start:start], blk, n)
			for j := range sel {
				sel[j] += int32(b0)
			}
			idx = idx[:start+len(sel)]
			continue
		}
		// Keys carry the index (lower index ranks higher on ties), so they are distinct: the
		// n-th largest key t, found by sorting a copy, keeps exactly the n keys >= t, which
		// one pass without branches picks in index order (kept or not is a coin toss at 50 %).
		// Ranking every key against every other, a branch per channel, was 2.7-3.4x slower
		// (d4096 8:16, Zen 4).
		ks := keys[:len(blk)]
		for i, v := range blk {
			ks[i] = uint64(absKey(v))<<6 | uint64(63-i)
		}
		t := nthLargest(sorted[:len(blk)], ks, n)
		c := 0
		for i, k := range ks {
			kept[c] = int32(b0 + i)
			c += 1 - int((k-t)>>63) // k >= t (keys < 2^37)
		}
		idx = append(idx, kept[:c]...)
	}
	return idx
}

// nthLargest returns the n-th largest of keys (1 <= n <= len(keys)), sorting a copy in buf
// (len(buf) == len(keys) <= 64: insertion sort beats anything fancier at these sizes).
func nthLargest(buf, keys []uint64, n int) uint64 {
	copy(buf, keys)
	for i := 1; i < len(buf); i++ {
		v := buf[i]
		j := i
		for ; j > 0 && buf[j-1] > v; j-- {
			buf[j] = buf[j-1]
		}
		buf[j] = v
	}
	return buf[len(buf)-n]
}

// Gather appends x[idx[j]] to vals[:0] and returns it.
func Gather(vals []float32, x []float32, idx []int32) []float32 {
	vals = vals[:0]
	for _, c := range idx {
		vals = append(vals, x[c])
	}
	return vals
}

// Mask sets dst[i] = x[i] for i in idx and 0 elsewhere (len(dst) == len(x)); dst may be x.
// idx must be ascending (as TopK returns it).
func Mask(dst, x []float32, idx []int32) {
	dst = dst[:len(x)]
	if len(x) == 0 {
		return
	}
	if &dst[0] != &x[0] {
		// clear whole, then scatter: at moderate sparsity the gaps are a few channels, and one
		// vector clear beats a clear call per gap (SmolLM2 prefill at 50%: Mask 15% -> 1.6% of CPU)
		clear(dst)
		for _, c := range idx {
			dst[c] = x[c]
		}
		return
	}
	prev := 0
	for _, c := range idx {
		clear(dst[prev:c])
		dst[c] = x[c]
		prev = int(c) + 1
	}
	clear(dst[prev:])
}

// b2i is 1 for true, 0 for false; the compiler makes it a SETcc, not a branch.
func b2i(b bool) int {
	var i int
	if b {
		i = 1
	}
	return i
}
