//go:build linux

package pages

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRelease maps a file, reads it (all of it resident), releases part and then all of it
// (smaps Rss drops by exactly the whole pages named, then to 0) and reads it again: same bytes.
func TestRelease(t *testing.T) {
	ps := os.Getpagesize()
	want := make([]byte, 3*FaultSpan+123)
	for i := range want {
		want[i] = byte(i*7 + i>>9)
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, len(want), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	resident := func() int64 {
		t.Helper()
		n, err := Resident(m)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	var sum int
	for _, b := range m {
		sum += int(b)
	}
	if sum == 0 {
		t.Fatal("read nothing")
	}
	all := int64(len(want)+ps-1) / int64(ps) * int64(ps)
	if got := resident(); got != all {
		t.Fatalf("after reading: %d bytes resident, want %d", got, all)
	}
	// One byte past the first block: the whole aligned block around it, which lies inside m
	// wherever the mapping starts.
	want1 := all - FaultSpan
	Release(m, m[FaultSpan+1:FaultSpan+2])
	if got := resident(); got != want1 {
		t.Errorf("after releasing one block: %d bytes resident, want %d", got, want1)
	}
	Release(m, make([]byte, 100)) // not in the mapping: ignored
	Release(m, m)
	if got := resident(); got != 0 {
		t.Errorf("after releasing all: %d bytes resident", got)
	}
	if string(m) != string(want) {
		t.Error("the data changed after Release")
	}
}
