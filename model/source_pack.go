package model

import (
	"fmt"
	"math"
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
	PackTernQ8   = "ternary-q8" // qsparse.layout: sparse.TernaryQ8, tensors blk.N.<name>.tq8 and .tscale
	packVersion  = 1
	keyPackVer   = "qsparse.format_version"
	keySourceArc = "qsparse.source_architecture"
	keyLayout    = "qsparse.layout"
	keyProfile   = "qsparse.profile"
)

// packArch reads a pack file's source architecture and layout.
func packArch(f *gguf.File) (arch, layout string, err error) {
	if v, ok := f.Uint(keyPackVer); !ok || v != packVersion {
		return "", "", errorf(ErrUnsupported, "model %s: qsparse pack: %s is %v, this build reads version %d (convert the model again with this qsparse)", f.Path, keyPackVer, v, packVersion)
	}
	arch, ok := f.String(keySourceArc)
	if !ok {
		return "", "", errorf(ErrBadSpec, "model %s: qsparse pack: key %s missing", f.Path, keySourceArc)
	}
	layout, _ = f.String(keyLayout)
	switch layout {
	case PackF16Cols, PackTernQ8:
	default:
		return "", "", errorf(ErrUnsupported, "model %s: qsparse pack: unknown %s %q (want %s or %s)", f.Path, keyLayout, layout, PackF16Cols, PackTernQ8)
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

// The pack tensor suffixes of FORMAT.md (the canonical ".weight" replaced).
const (
	suffixF16Cols = ".f16cols" // layout f16-cols: F16 [Stride, Cols]
	suffixTQ8     = ".tq8"     // layout ternary-q8: the 2-bit codes, I8 [ColBytes, Cols]
	suffixTScale  = ".tscale"  // layout ternary-q8: the scales, F32 [1] or [Cols]
)

// packTensorName returns the pack tensor holding canonical site matrix name (the codes for
// ternary-q8).
func (s *ggufSource) packTensorName(name string) string {
	if s.pack == PackTernQ8 {
		return packName(name, suffixTQ8)
	}
	return packName(name, suffixF16Cols)
}

func packName(name, suffix string) string { return strings.TrimSuffix(name, ".weight") + suffix }

// packShape returns the logical shape [rows, cols] of a site matrix held as a pack (checked
// by checkPack).
func (s *ggufSource) packShape(name string) ([]int, bool) {
	rows, cols, ok := s.sp.siteMatrixRows(name)
	if !ok {
		return nil, false
	}
	if _, ok := s.f.Tensor(s.packTensorName(name)); !ok {
		return nil, false
	}
	return []int{rows, cols}, true
}

// checkPack verifies every site matrix's pack tensors against the hyper-parameters and the
// file, so that packMatrix cannot fail and the kernels never see a malformed pack:
//
//   - f16-cols: present, F16, ne = [Stride, Cols] with Stride = rows rounded up to a multiple
//     of sparse.PadRows, 2·Stride·Cols bytes, 128-byte aligned data;
//   - ternary-q8: codes present, I8, ne = [ColBytes, Cols] with ColBytes = 64·⌈rows/256⌉,
//     ColBytes·Cols bytes, 64-byte aligned, Cols ≤ sparse.TernaryQ8MaxCols; scales present,
//     F32, ne = [1] or [Cols], finite. (The codes themselves are not read: a load stays
//     independent of the file size.)
func (s *ggufSource) checkPack() error {
	sp := &s.sp
	for _, t := range sp.Tensors() {
		rows, cols, ok := sp.siteMatrixRows(t.Name)
		if !ok {
			continue
		}
		var err error
		if s.pack == PackTernQ8 {
			err = s.checkTernary(t.Name, rows, cols)
		} else {
			err = s.checkF16Cols(t.Name, rows, cols)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// packTensor returns pack tensor pn of site matrix name, or an ErrMissingTensor error.
func (s *ggufSource) packTensor(pn string) (*gguf.TensorInfo, error) {
	ti, ok := s.f.Tensor(pn)
	if !ok {
		return nil, errorf(ErrMissingTensor, "model %s: pack tensor %s missing (the %s pack file is incomplete; convert the model again)", s.sp.Name, pn, s.pack)
	}
	return ti, nil
}

func (s *ggufSource) checkF16Cols(name string, rows, cols int) error {
	sp := &s.sp
	pn := packName(name, suffixF16Cols)
	ti, err := s.packTensor(pn)
	if err != nil {
		return err
	}
	stride := (rows + sparse.PadRows - 1) / sparse.PadRows * sparse.PadRows
	if ti.Type != gguf.F16 || len(ti.Shape) != 2 || ti.Shape[0] != uint64(stride) || ti.Shape[1] != uint64(cols) {
		return errorf(ErrTensorShape, "model %s: pack tensor %s is %s %v, want F16 [%d %d] (stride %d = %d rows padded to %d, %d columns)",
			sp.Name, pn, ti.Type, ti.Shape, stride, cols, stride, rows, sparse.PadRows, cols)
	}
	if len(ti.Data) != 2*stride*cols {
		return errorf(ErrTensorShape, "model %s: pack tensor %s has %d bytes, want %d", sp.Name, pn, len(ti.Data), 2*stride*cols)
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(ti.Data)))%128 != 0 {
		return errorf(ErrTensorShape, "model %s: pack tensor %s data is not 128-byte aligned (write packs with general.alignment 4096)", sp.Name, pn)
	}
	return nil
}

func (s *ggufSource) checkTernary(name string, rows, cols int) error {
	sp := &s.sp
	pn := packName(name, suffixTQ8)
	ti, err := s.packTensor(pn)
	if err != nil {
		return err
	}
	colBytes := 64 * ((rows + 255) / 256)
	if ti.Type != gguf.I8 || len(ti.Shape) != 2 || ti.Shape[0] != uint64(colBytes) || ti.Shape[1] != uint64(cols) {
		return errorf(ErrTensorShape, "model %s: pack tensor %s is %s %v, want I8 [%d %d] (64 bytes per 256 of the %d rows, %d columns)",
			sp.Name, pn, ti.Type, ti.Shape, colBytes, cols, rows, cols)
	}
	if len(ti.Data) != colBytes*cols {
		return errorf(ErrTensorShape, "model %s: pack tensor %s has %d bytes, want %d", sp.Name, pn, len(ti.Data), colBytes*cols)
	}
	if cols > sparse.TernaryQ8MaxCols {
		return errorf(ErrUnsupported, "model %s: pack tensor %s has %d columns, the int8 ternary kernel takes at most %d", sp.Name, pn, cols, sparse.TernaryQ8MaxCols)
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(ti.Data)))%64 != 0 {
		return errorf(ErrTensorShape, "model %s: pack tensor %s data is not 64-byte aligned (write packs with general.alignment 4096)", sp.Name, pn)
	}
	sn := packName(name, suffixTScale)
	si, err := s.packTensor(sn)
	if err != nil {
		return err
	}
	if si.Type != gguf.F32 || len(si.Shape) != 1 || (si.Shape[0] != 1 && si.Shape[0] != uint64(cols)) {
		return errorf(ErrTensorShape, "model %s: pack tensor %s is %s %v, want F32 [1] (per tensor) or [%d] (per column)", sp.Name, sn, si.Type, si.Shape, cols)
	}
	if len(si.Data) != 4*int(si.Shape[0]) || uintptr(unsafe.Pointer(unsafe.SliceData(si.Data)))%4 != 0 {
		return errorf(ErrTensorShape, "model %s: pack tensor %s has %d bytes, want %d, 4-byte aligned", sp.Name, sn, len(si.Data), 4*si.Shape[0])
	}
	for i, v := range f32View(si.Data) {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return errorf(ErrTensorShape, "model %s: pack tensor %s: scale %d is %v (the pack is corrupt; convert the model again)", sp.Name, sn, i, v)
		}
	}
	return nil
}

// f32View is b (4-byte aligned, little-endian host) as float32s, no copy.
func f32View(b []byte) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4)
}

// packMatrix returns site matrix name as a pack over the file's mapped bytes (no copy; valid
// until the source is closed). checkPack has checked the tensors.
func (s *ggufSource) packMatrix(name string) *Matrix {
	rows, cols, _ := s.sp.siteMatrixRows(name)
	if s.pack == PackTernQ8 {
		codes, _ := s.f.Tensor(packName(name, suffixTQ8))
		scale, _ := s.f.Tensor(packName(name, suffixTScale))
		return &Matrix{Rows: rows, Cols: cols, Tern: &sparse.TernaryQ8{Rows: rows, Cols: cols, Codes: codes.Data, Scale: f32View(scale.Data)}}
	}
	ti, _ := s.f.Tensor(packName(name, suffixF16Cols))
	stride := int(ti.Shape[0])
	data := unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(ti.Data))), len(ti.Data)/2)
	return &Matrix{Rows: rows, Cols: cols, Pack: &sparse.F16Cols{Rows: rows, Cols: cols, Stride: stride, Data: data}}
}

// ternaryBytes returns the stored bytes (codes and scales) of a ternary site matrix.
func (s *ggufSource) ternaryBytes(name string) int64 {
	var n int64
	for _, suffix := range []string{suffixTQ8, suffixTScale} {
		if ti, ok := s.f.Tensor(packName(name, suffix)); ok {
			n += int64(len(ti.Data))
		}
	}
	return n
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
