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
	PackArch    = "qsparse-llama"
	PackF16Cols = "f16-cols"   // qsparse.layout: sparse.F16Cols, tensors blk.N.<name>.f16cols
	PackTernQ8  = "ternary-q8" // qsparse.layout: sparse.TernaryQ8, tensors blk.N.<name>.tq8 and .tscale
	// PackF16ColsStacked is f16-cols with the matrices that share a site's input stacked in one
	// pack, rows in siteTable order: blk.N.attn_qkv.f16cols (q, k, v) and
	// blk.N.ffn_gate_up.f16cols (gate, up); o and down as in f16-cols. A decoded token then
	// reads one column of q+k+v rows per active channel instead of three short ones.
	PackF16ColsStacked = "f16-cols-stacked"
	packVersion        = 1
	keyPackVer         = "qsparse.format_version"
	keySourceArc       = "qsparse.source_architecture"
	keyLayout          = "qsparse.layout"
	keyProfile         = "qsparse.profile"
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
	case PackF16Cols, PackF16ColsStacked, PackTernQ8:
	default:
		return "", "", errorf(ErrUnsupported, "model %s: qsparse pack: unknown %s %q (want %s, %s or %s; a newer qsparse may read it)", f.Path, keyLayout, layout, PackF16ColsStacked, PackF16Cols, PackTernQ8)
	}
	return arch, layout, nil
}

// siteMatrixRows returns the rows of a per-layer site matrix (canonical name) and whether
// name is one.
func (s *Spec) siteMatrixRows(name string) (rows, cols int, ok bool) {
	_, site, i, ok := s.siteMatrixOf(name)
	if !ok {
		return 0, 0, false
	}
	rows, cols = s.matrixDims(siteTable[site][i].suffix)
	return rows, cols, true
}

// siteMatrixOf parses a canonical site matrix name: its layer, site and index in siteTable.
func (s *Spec) siteMatrixOf(name string) (layer int, site Site, i int, ok bool) {
	var suffix string
	if n, _ := fmt.Sscanf(name, "blk.%d.%s", &layer, &suffix); n != 2 || layer < 0 || layer >= s.NLayers {
		return 0, 0, 0, false
	}
	for site := AttnIn; site < NumSites; site++ {
		for i, m := range siteTable[site] {
			if m.suffix == suffix {
				return layer, site, i, true
			}
		}
	}
	return 0, 0, 0, false
}

// matrixDims returns the [rows, cols] of the site matrix with tensor suffix suffix.
func (s *Spec) matrixDims(suffix string) (rows, cols int) {
	switch suffix {
	case AttnQ:
		return s.QDim(), s.Dim
	case AttnK, AttnV:
		return s.KVDim(), s.Dim
	case AttnOutput:
		return s.Dim, s.QDim()
	case FFNGate, FFNUp:
		return s.FFNDim, s.Dim
	case FFNDown:
		return s.Dim, s.FFNDim
	}
	return 0, 0
}

// stackName is the pack tensor base name (blk.N.<stackName>.f16cols) of a site whose matrices
// layout f16-cols-stacked stores in one pack; "" for the sites of one matrix.
var stackName = [NumSites]string{AttnIn: "attn_qkv", MLPIn: "ffn_gate_up"}

// stackDims returns the rows (of all its matrices) and columns of the stacked pack tensor
// base name base (blk.N.attn_qkv, blk.N.ffn_gate_up), ok false when base is not one.
func (s *ggufSource) stackDims(base string) (rows, cols int, ok bool) {
	var l int
	var name string
	if n, _ := fmt.Sscanf(base, "blk.%d.%s", &l, &name); n != 2 || l < 0 || l >= s.sp.NLayers {
		return 0, 0, false
	}
	for site, sn := range stackName {
		if sn == "" || sn != name {
			continue
		}
		for _, m := range siteTable[site] {
			r, c := s.sp.matrixDims(m.suffix)
			rows, cols = rows+r, c
		}
		return rows, cols, true
	}
	return 0, 0, false
}

// PackStack returns, for a canonical site matrix name, the pack tensor of layout
// f16-cols-stacked that holds it with the other matrices of its site, and their canonical names
// in row order ("blk.3.attn_k.weight": "blk.3.attn_qkv.f16cols" and blk.3's q, k, v); ok is
// false for the sites of one matrix and for other names.
func (s *Spec) PackStack(name string) (tensor string, members []string, ok bool) {
	l, site, _, ok := s.siteMatrixOf(name)
	if !ok || stackName[site] == "" {
		return "", nil, false
	}
	for _, m := range siteTable[site] {
		members = append(members, LayerName(l, m.suffix))
	}
	return fmt.Sprintf("blk.%d.%s%s", l, stackName[site], suffixF16Cols), members, true
}

// packLoc is where an fp16 pack file holds a site matrix: rows [Row0, Row0+Rows) of pack
// tensor Tensor, which has StackRows rows and Cols columns (unstacked: Row0 0, StackRows Rows).
type packLoc struct {
	Tensor                      string
	Row0, Rows, StackRows, Cols int
}

// locate returns where the fp16 pack holds site matrix name (canonical), ok false when name is
// not a site matrix.
func (s *ggufSource) locate(name string) (packLoc, bool) {
	_, site, i, ok := s.sp.siteMatrixOf(name)
	if !ok {
		return packLoc{}, false
	}
	rows, cols := s.sp.matrixDims(siteTable[site][i].suffix)
	if s.pack != PackF16ColsStacked || stackName[site] == "" {
		return packLoc{Tensor: packName(name, suffixF16Cols), Rows: rows, StackRows: rows, Cols: cols}, true
	}
	tensor, _, _ := s.sp.PackStack(name)
	loc := packLoc{Tensor: tensor, Rows: rows, Cols: cols}
	for j, m := range siteTable[site] {
		r, _ := s.sp.matrixDims(m.suffix)
		if j < i {
			loc.Row0 += r
		}
		loc.StackRows += r
	}
	return loc, true
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
	loc, _ := s.locate(name)
	return loc.Tensor
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
//   - f16-cols, f16-cols-stacked: present, F16, ne = [Stride, Cols] with Stride = the rows
//     (of the stack) rounded up to a multiple of sparse.PadRows, 2·Stride·Cols bytes,
//     128-byte aligned data;
//   - ternary-q8: codes present, I8, ne = [ColBytes, Cols] with ColBytes = 64·⌈rows/256⌉,
//     ColBytes·Cols bytes, 64-byte aligned, Cols ≤ sparse.TernaryQ8MaxCols; scales present,
//     F32, ne = [1] or [Cols], finite. (The codes themselves are not read: a load stays
//     independent of the file size.)
func (s *ggufSource) checkPack() error {
	sp := &s.sp
	checked := map[string]bool{} // stacked pack tensors already checked
	for _, t := range sp.Tensors() {
		rows, cols, ok := sp.siteMatrixRows(t.Name)
		if !ok {
			continue
		}
		var err error
		if s.pack == PackTernQ8 {
			err = s.checkTernary(t.Name, rows, cols)
		} else if loc, _ := s.locate(t.Name); !checked[loc.Tensor] {
			checked[loc.Tensor] = true
			err = s.checkF16Cols(loc)
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

func (s *ggufSource) checkF16Cols(loc packLoc) error {
	sp := &s.sp
	pn, rows, cols := loc.Tensor, loc.StackRows, loc.Cols
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
	loc, _ := s.locate(name)
	m := s.packStack(loc.Tensor, loc.StackRows, cols)
	m.Rows, m.PackRow = rows, loc.Row0
	return m
}

// packStack returns fp16 pack tensor pn (rows×cols, checked by checkPack) as a Matrix.
func (s *ggufSource) packStack(pn string, rows, cols int) *Matrix {
	ti, _ := s.f.Tensor(pn)
	stride := int(ti.Shape[0])
	data := unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(ti.Data))), len(ti.Data)/2)
	return &Matrix{Rows: rows, Cols: cols, Pack: &sparse.F16Cols{Rows: rows, Cols: cols, Stride: stride, Data: data}}
}

// siteStack returns the stacked pack of a site of layer l (layout f16-cols-stacked, a site of
// several matrices: Layer.QKV, Layer.GateUp), nil otherwise.
func (s *ggufSource) siteStack(l int, site Site) *Matrix {
	if s.pack != PackF16ColsStacked || stackName[site] == "" {
		return nil
	}
	loc, _ := s.locate(LayerName(l, siteTable[site][0].suffix))
	return s.packStack(loc.Tensor, loc.StackRows, loc.Cols)
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
