//go:build linux

package model

import (
	"os"
	"testing"

	"github.com/qsparse/qsparse/internal/pages"
)

// TestStreamReleasesPages: after a Stream has read every tensor of a 25 MB HF folder, its file
// mapping holds no resident pages beyond the header, while touching the same tensor bytes
// directly (the mapping as Load used to leave it) keeps them all resident: the smaps figure
// that shows the Stream gave its pages back (Release rounds to 2 MiB blocks, so the file must
// be many blocks long for this to mean anything).
func TestStreamReleasesPages(t *testing.T) {
	sp := Spec{Arch: "llama", Dim: 128, NLayers: 4, NHeads: 4, NKVHeads: 2, HeadDim: 32, FFNDim: 384, Vocab: 49152, TiedEmbeddings: true}
	s, err := OpenStream(tinyHF(t, nil, sp, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	src := s.src.(*hfSource)
	var data [][]byte // every tensor's mapped bytes
	for _, ti := range src.d.Tensors {
		data = append(data, ti.Data)
	}
	header := 8 + src.d.Files[0].HeaderSize
	resident := func() int64 {
		t.Helper()
		n, err := pages.Resident(data[0])
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, ts := range s.Spec.Tensors() {
		if !ts.Matrix {
			if _, err := s.Vector(ts.Name); err != nil {
				t.Fatal(err)
			}
			continue
		}
		// in chunks of 1000 rows, as convert reads
		for r0 := 0; r0 < ts.Shape[0]; r0 += 1000 {
			n := min(1000, ts.Shape[0]-r0)
			if err := s.Rows(ts.Name, make([]float32, n*ts.Shape[1]), r0, n); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := resident()
	var total, sum int64
	for _, b := range data {
		total += int64(len(b))
		for _, x := range b {
			sum += int64(x)
		}
	}
	touched := resident()
	t.Logf("%d tensor bytes; resident after the Stream read them: %d (header %d), after touching them: %d (checksum %d)", total, got, header, touched, sum)
	ps := int64(os.Getpagesize())
	if limit := (header+ps-1)/ps*ps + ps; got > limit {
		t.Errorf("%d bytes of the mapping resident after reading every tensor, want at most %d (the header)", got, limit)
	}
	if touched < total {
		t.Errorf("touching %d tensor bytes left only %d resident: the measurement does not see the pages", total, touched)
	}
}
