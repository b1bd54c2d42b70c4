package pages

import (
	"os"
	"testing"
	"unsafe"
)

func addr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

func TestSpan(t *testing.T) {
	ps := uintptr(os.Getpagesize())
	const g = 4 * 4096
	// a window of an ordinary slice starting one page after a g-aligned address
	buf := make([]byte, 8*g)
	off := (g - addr(buf)%g) % g
	m := buf[off+ps : off+ps+3*g-100]
	for _, c := range []struct {
		lo, hi     uintptr // of b, in m
		start, end uintptr
		grain      uintptr
		ok         bool
	}{
		{0, 1, 0, ps, ps, true},
		{ps - 1, ps + 1, 0, 2 * ps, ps, true},
		{ps, 2 * ps, ps, 2 * ps, ps, true},
		{3*g - 200, 3*g - 100, 3*g - ps, 3 * g, ps, true}, // the last partial page is whole
		{5, 5, 0, 0, ps, false},                           // empty
		{0, 1, 0, g - ps, g, true},                        // clamped to m's start
		{g, g + 1, g - ps, 2*g - ps, g, true},             // the aligned span around it
		{3*g - 200, 3*g - 100, 3*g - ps, 3 * g, g, true},  // clamped to m's last page
	} {
		s, e, ok := span(m, m[c.lo:c.hi], c.grain)
		if s != c.start || e != c.end || ok != c.ok {
			t.Errorf("span [%d,%d) grain %d: %d..%d %v, want %d..%d %v", c.lo, c.hi, c.grain, s, e, ok, c.start, c.end, c.ok)
		}
	}
	if _, _, ok := span(m, make([]byte, 10), ps); ok {
		t.Error("a slice outside the mapping was accepted")
	}
	if _, _, ok := span(m[1:], m[2:10], ps); ok {
		t.Error("a mapping that does not start on a page boundary was accepted")
	}
}
