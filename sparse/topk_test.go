package sparse

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// topKRef is the obvious O(d log d) reference: sort by (key desc, index asc), take k, sort.
func topKRef(x []float32, k int) []int32 {
	ord := make([]int32, len(x))
	for i := range ord {
		ord[i] = int32(i)
	}
	slices.SortStableFunc(ord, func(a, b int32) int {
		ka, kb := absKey(x[a]), absKey(x[b])
		switch {
		case ka > kb:
			return -1
		case ka < kb:
			return 1
		}
		return int(a - b)
	})
	k = min(max(k, 0), len(x))
	out := append([]int32{}, ord[:k]...)
	slices.Sort(out)
	return out
}

func blockTopNRef(x []float32, n, m int) []int32 {
	var out []int32
	if n <= 0 || m <= 0 {
		return out
	}
	for b0 := 0; b0 < len(x); b0 += m {
		sel := topKRef(x[b0:min(b0+m, len(x))], n)
		for _, i := range sel {
			out = append(out, int32(b0)+i)
		}
	}
	return out
}

func genVec(r *rand.Rand, d, mode int) []float32 {
	x := make([]float32, d)
	for i := range x {
		switch mode {
		case 0:
			x[i] = float32(r.NormFloat64())
		case 1: // many ties
			x[i] = float32(r.IntN(5) - 2)
		case 2: // tiny range, shared high bits
			x[i] = 1 + float32(r.IntN(1000))*1e-6
		case 3: // specials
			x[i] = []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1e-40, -1e-40, 3}[r.IntN(8)]
		case 4: // all equal
			x[i] = -0.5
		}
	}
	return x
}

func TestTopK(t *testing.T) { forEachBackend(t, testTopK) }

func testTopK(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	var ds []int
	for d := 0; d <= 70; d++ {
		ds = append(ds, d)
	}
	ds = append(ds, 576, 1536, 4095, 4096, 4097, 16384)
	for _, d := range ds {
		for mode := 0; mode < 5; mode++ {
			x := genVec(r, d, mode)
			ks := []int{-1, 0, 1, d / 4, d / 2, d - 1, d, d + 1, r.IntN(d + 1)}
			for _, k := range ks {
				want := topKRef(x, k)
				got := TopK(make([]int32, 0, 3), x, k)
				if !slices.Equal(got, want) {
					t.Fatalf("TopK d=%d mode=%d k=%d: got %v want %v", d, mode, k, got, want)
				}
				// guard regions: NaNs (always selected) before and after the input must not be
				// read; the output must not be written past its capacity (the SIMD passes store
				// whole vectors)
				const g = 24
				in := make([]float32, d+2*g)
				for i := range in {
					in[i] = float32(math.NaN())
				}
				copy(in[g:], x)
				kk := min(max(k, 0), d)
				out := make([]int32, kk+g)
				for i := range out {
					out[i] = -7
				}
				got = TopK(out[:0:kk], in[g:g+d:g+d], k)
				if !slices.Equal(got, want) {
					t.Fatalf("TopK d=%d mode=%d k=%d (guarded): got %v want %v", d, mode, k, got, want)
				}
				for i, v := range out[kk:] {
					if v != -7 {
						t.Fatalf("TopK d=%d mode=%d k=%d: wrote out[%d] past the capacity %d", d, mode, k, kk+i, kk)
					}
				}
			}
			for _, nm := range [][2]int{{2, 4}, {1, 1}, {4, 8}, {8, 16}, {3, 7}, {40, 100}, {0, 4}} {
				want := blockTopNRef(x, nm[0], nm[1])
				got := BlockTopN(nil, x, nm[0], nm[1])
				if !slices.Equal(got, want) {
					t.Fatalf("BlockTopN d=%d mode=%d %d:%d: got %v want %v", d, mode, nm[0], nm[1], got, want)
				}
			}
			s := genVec(r, d, 0)
			scores := make([]float32, d)
			for i := range s {
				s[i] = float32(math.Abs(float64(s[i])))
				scores[i] = float32(math.Abs(float64(x[i]))) * s[i]
			}
			k := d / 3
			if got, want := TopKWeighted(nil, x, s, k, nil), topKRef(scores, k); !slices.Equal(got, want) {
				t.Fatalf("TopKWeighted d=%d mode=%d", d, mode)
			}
		}
	}
}

func TestTopKNoAlloc(t *testing.T) {
	x := genVec(rand.New(rand.NewPCG(1, 1)), 4096, 0)
	idx := make([]int32, 0, 4096)
	scratch := make([]float32, 4096)
	s := make([]float32, 4096)
	if a := testing.AllocsPerRun(20, func() {
		TopK(idx, x, 2048)
		TopKWeighted(idx, x, s, 2048, scratch)
		BlockTopN(idx, x, 8, 16)
	}); a != 0 {
		t.Fatalf("allocates %v", a)
	}
}

func TestMaskGather(t *testing.T) {
	x := []float32{1, -2, 3, -4, 5}
	idx := TopK(nil, x, 2)
	if !slices.Equal(idx, []int32{3, 4}) {
		t.Fatal(idx)
	}
	if v := Gather(nil, x, idx); !slices.Equal(v, []float32{-4, 5}) {
		t.Fatal(v)
	}
	dst := []float32{9, 9, 9, 9, 9, 9}
	Mask(dst, x, idx)
	if !slices.Equal(dst, []float32{0, 0, 0, -4, 5, 9}) {
		t.Fatal(dst)
	}
	Mask(x, x, idx)
	if !slices.Equal(x, []float32{0, 0, 0, -4, 5}) {
		t.Fatal(x)
	}
	if KeepCount(4096, 0.5) != 2048 || KeepCount(10, 1.5) != 0 || KeepCount(10, -1) != 10 {
		t.Fatal("KeepCount")
	}
}

// TestTopKCount checks the backend's counting pass (the AVX2 threshold search) against the Go
// loop over many lengths and thresholds, with NaN guards around the input.
func TestTopKCount(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		if kern.topkCount == nil {
			t.Skipf("backend %s selects by radix", kern.name)
		}
		r := rand.New(rand.NewPCG(5, 6))
		for d := 0; d <= 300; d++ {
			const g = 16
			in := make([]float32, d+2*g)
			for i := range in {
				in[i] = float32(math.NaN())
			}
			x := in[g : g+d : g+d]
			copy(x, genVec(r, d, d%4))
			for _, th := range []uint32{1, 0x00800000, 0x3f000000, 0x3f800000, 0x40000000, 0x7f800000, 0x7f800001, 0x7fffffff} {
				want := 0
				for _, v := range x {
					want += b2i(absKey(v) >= th)
				}
				if got := kern.topkCount(x, th); got != want {
					t.Fatalf("d=%d t=%#x: count %d, want %d", d, th, got, want)
				}
			}
		}
	})
}

func FuzzTopK(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 3, 2, 4)
	f.Add([]byte{0, 0, 0x80, 0x7f, 0, 0, 0x80, 0xff, 0, 0, 0, 0}, 1, 1, 2)
	f.Fuzz(func(t *testing.T, data []byte, k, n, m int) {
		x := make([]float32, len(data)/4)
		for i := range x {
			x[i] = math.Float32frombits(uint32(data[4*i]) | uint32(data[4*i+1])<<8 | uint32(data[4*i+2])<<16 | uint32(data[4*i+3])<<24)
		}
		k %= len(x) + 2
		if got, want := TopK(nil, x, k), topKRef(x, k); !slices.Equal(got, want) {
			t.Fatalf("TopK k=%d: got %v want %v", k, got, want)
		}
		n, m = n%70, m%70
		if got, want := BlockTopN(nil, x, n, m), blockTopNRef(x, n, m); !slices.Equal(got, want) {
			t.Fatalf("BlockTopN %d:%d: got %v want %v", n, m, got, want)
		}
	})
}

// TestBlockTopN16: N:16 with room in idx (the SIMD path when the backend has one) against the
// reference, over many lengths, every n, ties and specials, with idx capacities from exactly
// the result's size up; nothing is written past the capacity.
func TestBlockTopN16(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 16))
	for _, d := range []int{16, 17, 31, 32, 48, 100, 576, 1536, 1537} {
		for mode := range 5 {
			x := genVec(r, d, mode)
			for n := 1; n <= 16; n++ {
				want := blockTopNRef(x, n, 16)
				for _, extra := range []int{0, 1, 15, 16, d} {
					c := len(want) + extra
					buf := make([]int32, c+8)
					for i := range buf {
						buf[i] = -7
					}
					got := BlockTopN(buf[:0:c], x, n, 16)
					if !slices.Equal(got, want) {
						t.Fatalf("%s: d=%d mode=%d n=%d cap=%d: got %v want %v", Backend(), d, mode, n, c, got, want)
					}
					for i, v := range buf[c:] {
						if v != -7 {
							t.Fatalf("%s: d=%d n=%d: wrote past the capacity %d at %d", Backend(), d, n, c, c+i)
						}
					}
				}
			}
		}
	}
}
