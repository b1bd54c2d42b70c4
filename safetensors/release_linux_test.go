//go:build linux

package safetensors

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/qsparse/qsparse/internal/pages"
)

// TestRelease: File.Release of every tensor's Data empties the mapping's resident pages (smaps)
// and leaves the bytes readable; a File from Parse (memory, not a mapping) ignores it.
func TestRelease(t *testing.T) {
	var ts []Tensor
	for i := range 6 {
		data := make([]byte, 4*(1<<18)+4*i)
		for j := range data {
			data[j] = byte(j*5 + i)
		}
		ts = append(ts, Tensor{Name: string(rune('a' + i)), DType: F32, Shape: []int{len(data) / 4}, Data: data})
	}
	path := filepath.Join(t.TempDir(), "r.safetensors")
	if err := WriteFile(path, ts, nil); err != nil {
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
	for _, ti := range f.Tensors {
		want, _ := f.Tensor(ti.Name)
		for _, w := range ts {
			if w.Name == ti.Name && string(want.Data) != string(w.Data) {
				t.Fatalf("tensor %s changed after Release", ti.Name)
			}
		}
	}
	// Parse over ordinary memory: Release must not touch it (MADV_DONTNEED would zero it).
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := Parse("mem", raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range pf.Tensors {
		pf.Release(ti.Data)
	}
	for _, ti := range pf.Tensors {
		for _, w := range ts {
			if w.Name == ti.Name && string(ti.Data) != string(w.Data) {
				t.Fatalf("Parse: tensor %s changed after Release", ti.Name)
			}
		}
	}
}
