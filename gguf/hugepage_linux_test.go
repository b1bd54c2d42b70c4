package gguf

import (
	"bytes"
	"path/filepath"
	"testing"
	"unsafe"
)

// TestHugePages: a large file is mapped on a 2 MiB boundary, and HugePages (which may drop and
// re-read the file's cached pages) leaves every byte as it was. Whether the pages come back
// huge depends on the kernel and filesystem, so it is only logged.
func TestHugePages(t *testing.T) {
	data := make([]byte, 9<<20)
	for i := range data {
		data[i] = byte(i*7 + i>>12)
	}
	path := filepath.Join(t.TempDir(), "big.gguf")
	err := WriteFile(path, []KV{String("general.architecture", "test")},
		[]WriteTensor{{Name: "t", Type: I8, Shape: []uint64{uint64(len(data))}, Data: data}}, 4096)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.maps) != 1 || uintptr(unsafe.Pointer(unsafe.SliceData(f.maps[0])))%hugeSize != 0 {
		t.Fatalf("mapping not 2 MiB aligned")
	}
	ti, _ := f.Tensor("t")
	if !bytes.Equal(ti.Data, data) {
		t.Fatal("tensor differs before HugePages")
	}
	huge := f.HugePages()
	if !bytes.Equal(ti.Data, data) {
		t.Fatal("tensor differs after HugePages")
	}
	t.Logf("2 MiB pages: %v", huge)
	if huge != f.HugePages() {
		t.Error("HugePages changed its answer on a second call")
	}
}
