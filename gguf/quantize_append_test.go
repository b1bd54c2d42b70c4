package gguf

import (
	"math"
	"testing"
)

// TestAppendQuantize: AppendQuantize appends exactly Quantize's bytes after what dst holds, and
// reuses dst's capacity.
func TestAppendQuantize(t *testing.T) {
	src := make([]float32, 96)
	for i := range src {
		src[i] = float32(math.Sin(float64(i))) * 3
	}
	for _, typ := range []Type{F32, F16, BF16, Q8_0} {
		want, err := Quantize(typ, src)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 3, 4096)
		copy(buf, "abc")
		got, err := AppendQuantize(buf, typ, src)
		if err != nil {
			t.Fatal(err)
		}
		if string(got[:3]) != "abc" || string(got[3:]) != string(want) || &got[0] != &buf[0] {
			t.Errorf("%s: appended %d bytes (want %d), prefix %q, same buffer %v", typ, len(got)-3, len(want), got[:3], &got[0] == &buf[0])
		}
	}
	if _, err := AppendQuantize(nil, Q8_0, src[:33]); err == nil {
		t.Error("Q8_0 of 33 values was accepted")
	}
}
