//go:build linux

package gguf

import (
	"path/filepath"
	"testing"

	"github.com/qsparse/qsparse/internal/pages"
)

// TestRelease: File.Release of every tensor's Data empties the mapping's resident pages (smaps)
// and leaves the bytes readable.
func TestRelease(t *testing.T) {
	var ts []WriteTensor
	for i := range 6 {
		data := make([]byte, 4*(1<<18)+4*i) // 1 MiB and a bit: tensors straddle 2 MiB blocks
		for j := range data {
			data[j] = byte(j*3 + i)
		}
		ts = append(ts, WriteTensor{Name: string(rune('a' + i)), Type: F32, Shape: []uint64{uint64(len(data) / 4)}, Data: data})
	}
	path := filepath.Join(t.TempDir(), "r.gguf")
	if err := WriteFile(path, []KV{String("general.architecture", "test")}, ts, 0); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	resident := func() int64 {
		n, err := pages.Resident(f.Tensors[0].Data)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	var sum int
	for _, ti := range f.Tensors {
		for _, b := range ti.Data {
			sum += int(b)
		}
	}
	if before := resident(); before < int64(6<<20) || sum == 0 {
		t.Fatalf("%d bytes resident after reading 6 MiB", before)
	}
	for _, ti := range f.Tensors {
		f.Release(ti.Data)
	}
	if got := resident(); got != 0 {
		t.Errorf("%d bytes resident after releasing every tensor", got)
	}
	for i, ti := range f.Tensors {
		if string(ti.Data) != string(ts[i].Data) {
			t.Fatalf("tensor %s changed after Release", ti.Name)
		}
	}
}
