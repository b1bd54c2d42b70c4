package model

import (
	"fmt"
	"strings"
	"unsafe"

	"github.com/qsparse/qsparse/gguf"
	"github.com/qsparse/qsparse/sparse"
)

// qsparse pack files (FORMAT.md): a GGUF v3 container with general.architecture PackArch whose
// site matrices are stored as column-major packs, mapped and used in place (no copy). The
// hyper-parameters are under the "qsparse-llama." prefix with llama.cpp's key names; the
// source architecture is qsparse.source_architecture; q/k rows are in the HF (rotate-half)
// order; other tensors are as in any GGUF.
const (
	PackArch     = "qsparse-llama"
	PackF16Cols  = "f16-cols"   // qsparse.layout: sparse.F16Cols, tensors blk.N.<name>.f16cols
	PackTernQ8   = "ternary-q8" // qsparse.layout: sparse.TernaryQ8 (not read by this build yet)
	packVersion  = 1
	keyPackVer   = "qsparse.format_version"
	keySourceArc = "qsparse.source_architecture"
	keyLayout    = "qsparse.layout"
	keyProfile   = "qsparse.profile"
)

// packArch reads a pack file's source architecture and layout.
func packArch(f *gguf.File) (arch, layout string, err error) {
	if v, ok := f.Uint(keyPackVer); !ok || v != packVersion {
		return "", "", fmt.Errorf("model %s: qsparse pack: %s is %v, this build reads version %d (convert the model again with this qsparse)", f.Path, keyPackVer, v, packVersion)
	}
	arch, ok := f.String(keySourceArc)
	if !ok {
		return "", "", fmt.Errorf("model %s: qsparse pack: key %s missing", f.Path, keySourceArc)
	}
	layout, _ = f.String(keyLayout)
	switch layout {
	case PackF16Cols:
	case PackTernQ8:
		return "", "", fmt.Errorf("model %s: qsparse pack layout %q is not supported by this build yet (convert with layout %s)", f.Path, layout, PackF16Cols)
	default:
		return "", "", fmt.Errorf("model %s: qsparse pack: unknown %s %q (want %s)", f.Path, keyLayout, layout, PackF16Cols)
	}
	return arch, layout, nil
}

// siteMatrixRows returns the rows of a per-layer site matrix (canonical name) and whether
// name is one.
func (s *Spec) siteMatrixRows(name string) (rows, cols int, ok bool) {
	var l int
	var suffix string
	if n, _ := fmt.Sscanf(name, "blk.%d.%s", &l, &suffix); n != 2 || l < 0 || l >= s.NLayers {
		return 0, 0, false
	}
	for site := AttnIn; site < NumSites; site++ {
		for _, m := range siteTable[site] {
			if m.suffix != suffix {
				continue
			}
			switch suffix {
			case AttnQ:
				return s.QDim(), s.Dim, true
			case AttnK, AttnV:
				return s.KVDim(), s.Dim, true
			case AttnOutput:
				return s.Dim, s.QDim(), true
			case FFNGate, FFNUp:
				return s.FFNDim, s.Dim, true
			case FFNDown:
				return s.Dim, s.FFNDim, true
			}
		}
	}
	return 0, 0, false
}

// packTensorName returns the pack tensor holding canonical site matrix name.
func packTensorName(name string) string { return strings.TrimSuffix(name, ".weight") + ".f16cols" }

// packShape returns the logical shape [rows, cols] of a site matrix held as a pack (checked
// by checkPack).
func (s *ggufSource) packShape(name string) ([]int, bool) {
	rows, cols, ok := s.sp.siteMatrixRows(name)
	if !ok {
		return nil, false
	}
	if _, ok := s.f.Tensor(packTensorName(name)); !ok {
		return nil, false
	}
	return []int{rows, cols}, true
}

// checkPack verifies every site matrix's pack tensor: present, F16, ne = [Stride, Cols] with
// Stride = rows rounded up to a multiple of sparse.PadRows, and 128-byte aligned data.
func (s *ggufSource) checkPack() error {
	sp := &s.sp
	for _, t := range sp.Tensors() {
		rows, cols, ok := sp.siteMatrixRows(t.Name)
		if !ok {
			continue
		}
		pn := packTensorName(t.Name)
		ti, ok := s.f.Tensor(pn)
		if !ok {
			return fmt.Errorf("model %s: pack tensor %s missing (the pack file is incomplete)", sp.Name, pn)
		}
		stride := (rows + sparse.PadRows - 1) / sparse.PadRows * sparse.PadRows
		if ti.Type != gguf.F16 || len(ti.Shape) != 2 || ti.Shape[0] != uint64(stride) || ti.Shape[1] != uint64(cols) {
			return fmt.Errorf("model %s: pack tensor %s is %s %v, want F16 [%d %d] (stride %d = %d rows padded to %d, %d columns)",
				sp.Name, pn, ti.Type, ti.Shape, stride, cols, stride, rows, sparse.PadRows, cols)
		}
		if len(ti.Data) != 2*stride*cols {
			return fmt.Errorf("model %s: pack tensor %s has %d bytes, want %d", sp.Name, pn, len(ti.Data), 2*stride*cols)
		}
		if uintptr(unsafe.Pointer(unsafe.SliceData(ti.Data)))%128 != 0 {
			return fmt.Errorf("model %s: pack tensor %s data is not 128-byte aligned (write packs with general.alignment 4096)", sp.Name, pn)
		}
	}
	return nil
}

// packMatrix returns site matrix name as a pack over the file's mapped bytes (no copy; valid
// until the source is closed).
func (s *ggufSource) packMatrix(name string) *Matrix {
	rows, cols, _ := s.sp.siteMatrixRows(name)
	ti, _ := s.f.Tensor(packTensorName(name))
	stride := int(ti.Shape[0])
	data := unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(ti.Data))), len(ti.Data)/2)
	return &Matrix{Rows: rows, Cols: cols, Pack: &sparse.F16Cols{Rows: rows, Cols: cols, Stride: stride, Data: data}}
}

// packProfile returns the pack's default profile (qsparse.profile), nil when it has none.
func (s *ggufSource) packProfile() (*Profile, error) {
	js, ok := s.f.String(keyProfile)
	if !ok || js == "" {
		return nil, nil
	}
	p, err := DecodeProfile(strings.NewReader(js))
	if err != nil {
		return nil, fmt.Errorf("model %s: %s: %w", s.sp.Name, keyProfile, err)
	}
	if err := p.Validate(&s.sp); err != nil {
		return nil, fmt.Errorf("model %s: %s: %w", s.sp.Name, keyProfile, err)
	}
	return p, nil
}
