package hugepage

import (
	"testing"
	"unsafe"
)

func TestBytes(t *testing.T) {
	for _, n := range []int{0, 1, 4096, 2*Size - 1, 2 * Size, 3*Size + 123} {
		b := Bytes(n)
		if len(b) != n || cap(b) != n {
			t.Fatalf("Bytes(%d): len %d cap %d", n, len(b), cap(b))
		}
		for i := 0; i < n; i += 4093 {
			if b[i] != 0 {
				t.Fatalf("Bytes(%d)[%d] = %d, want 0", n, i, b[i])
			}
		}
		if n >= 2*Size && uintptr(unsafe.Pointer(&b[0]))%Size != 0 {
			t.Errorf("Bytes(%d) is not %d-aligned", n, Size)
		}
	}
	f := Slice[float32](Size)
	if len(f) != Size || uintptr(unsafe.Pointer(&f[0]))%Size != 0 {
		t.Errorf("Slice[float32](%d): len %d, aligned %v", Size, len(f), uintptr(unsafe.Pointer(&f[0]))%Size == 0)
	}
	if s := Slice[uint16](10); len(s) != 10 {
		t.Errorf("Slice[uint16](10) has len %d", len(s))
	}
}
