package model

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"sync/atomic"

	"github.com/qsparse/qsparse/internal/bufpool"
	"github.com/qsparse/qsparse/sparse"
	"github.com/qsparse/qsparse/tokenizer"
)

// Stream is a checkpoint (GGUF file, qsparse pack or Hugging Face folder) opened to read its
// tensors a few rows at a time, for converters. Nothing is converted up front, unlike Load,
// which holds a converted copy of every weight. Every read releases the mapped source pages it
// touched from the process's resident set (gguf.File.Release), so reading the whole checkpoint
// once keeps about one chunk of it resident instead of the whole file. Rows come in Load's
// canonical layout: q/k rows un-permuted, float32 or fp16 bits exactly as Load converts them.
// The methods are safe for concurrent use.
type Stream struct {
	Spec         Spec
	Tok          *tokenizer.Tokenizer
	ChatTemplate string
	Format       string // "gguf", "qsparse-pack" or "safetensors" (as Model.Format)
	Path         string

	src  source
	read atomic.Int64 // source tensor bytes read (see BytesRead)
}

// f32Scratch holds reusable float32 buffers of Rows and RowsF16 (a converter calls them for
// every chunk of every tensor).
var f32Scratch bufpool.Pool[float32]

// OpenStream opens a GGUF file, qsparse pack or Hugging Face folder and checks it as Load does:
// every tensor the Spec needs present with the right shape, and a usable tokenizer. No tensor
// data is read. Close the Stream when done.
func OpenStream(path string) (*Stream, error) {
	src, err := openSource(path)
	if err != nil {
		return nil, err
	}
	sp := src.spec()
	if err := sp.checkTensors(src.shape); err != nil {
		src.close()
		return nil, err
	}
	tok, tmpl, err := loadTokenizer(src)
	if err != nil {
		src.close()
		return nil, err
	}
	s := &Stream{Spec: *sp, Tok: tok, ChatTemplate: tmpl, Path: path, src: src, Format: "safetensors"}
	if gs, ok := src.(*ggufSource); ok {
		s.Format = "gguf"
		if gs.pack != "" {
			s.Format = "qsparse-pack"
		}
	}
	return s, nil
}

// Close unmaps the checkpoint. Slices returned earlier stay valid (they are copies).
func (s *Stream) Close() error {
	if s.src == nil {
		return nil
	}
	err := s.src.close()
	s.src = nil
	if err != nil {
		return fmt.Errorf("model %s: closing %s: %w", s.Spec.Name, s.Path, err)
	}
	return nil
}

// BytesRead returns the bytes of source tensor data read so far: a tensor read once in whole
// heads of rows counts its size once (a pack's column-major matrix counts its values, not its
// padding rows).
func (s *Stream) BytesRead() int64 { return s.read.Load() }

// Has reports whether the checkpoint holds the tensor with canonical name.
func (s *Stream) Has(name string) bool {
	_, ok := s.src.shape(name)
	return ok
}

// dims returns the rows and columns of a matrix ([rows, cols]) or 1-D tensor (1 × length).
func (s *Stream) dims(name string) (rows, cols int, err error) {
	sh, ok := s.src.shape(name)
	switch {
	case !ok:
		return 0, 0, errorf(ErrMissingTensor, "model %s: tensor %s missing", s.Spec.Name, name)
	case len(sh) == 1:
		return 1, sh[0], nil
	case len(sh) == 2:
		return sh[0], sh[1], nil
	}
	return 0, 0, errorf(ErrTensorShape, "model %s: tensor %s has shape %v, want 1 or 2 dimensions", s.Spec.Name, name, sh)
}

// packMatrix returns site matrix name of a pack file (column-major, mapped), else nil.
func (s *Stream) packMatrix(name string) *Matrix {
	if gs, ok := s.src.(*ggufSource); ok && gs.pack != "" {
		if _, ok := gs.packShape(name); ok {
			return gs.packMatrix(name)
		}
	}
	return nil
}

// block returns the source rows [h0, h1) that hold canonical rows [r0, r0+n) of a rows-row
// tensor and whether they are permuted (q/k of a llama.cpp GGUF: source row sr holds canonical
// row ggufRowToHF(sr); the permutation stays inside a head, so h0 and h1 are whole heads).
func (s *Stream) block(name string, rows, r0, n int) (h0, h1 int, perm bool) {
	hd := s.Spec.HeadDim
	if !s.src.permutedQK() || hd <= 0 || rows%hd != 0 ||
		!(strings.HasSuffix(name, "."+AttnQ) || strings.HasSuffix(name, "."+AttnK)) {
		return r0, r0 + n, false
	}
	return r0 / hd * hd, (r0 + n + hd - 1) / hd * hd, true
}

// check validates a request for rows [r0, r0+n) of name into dst of length dstLen.
func (s *Stream) check(name string, r0, n, dstLen int) (rows, cols int, err error) {
	if s.src == nil {
		return 0, 0, fmt.Errorf("model %s: the stream is closed", s.Spec.Name)
	}
	if rows, cols, err = s.dims(name); err != nil {
		return 0, 0, err
	}
	if r0 < 0 || n < 0 || r0+n > rows || dstLen != n*cols {
		return 0, 0, errorf(ErrTensorShape, "model %s: tensor %s (%d×%d): rows %d..%d into %d values",
			s.Spec.Name, name, rows, cols, r0, r0+n-1, dstLen)
	}
	return rows, cols, nil
}

// done releases source rows [r0, r0+n) of name and counts their bytes.
func (s *Stream) done(name string, r0, n int) { s.read.Add(int64(s.src.release(name, r0, n))) }

// Rows converts rows [r0, r0+n) of tensor name (a 1-D tensor is one row) to float32 in dst
// (n × cols values), the values Load with weight type f32 holds, and releases the source pages
// read. Reading q/k of a llama.cpp GGUF in whole heads reads each source byte once.
func (s *Stream) Rows(name string, dst []float32, r0, n int) error {
	rows, cols, err := s.check(name, r0, n, len(dst))
	if err != nil || n == 0 {
		return err
	}
	if m := s.packMatrix(name); m != nil {
		for i := range n {
			m.row(r0+i, dst[i*cols:(i+1)*cols])
		}
		s.done(name, r0, n)
		return nil
	}
	h0, h1, perm := s.block(name, rows, r0, n)
	tmp := dst
	if perm {
		p := f32Scratch.Get((h1 - h0) * cols)
		defer f32Scratch.Put(p)
		tmp = *p
	}
	if err := s.src.rows(name, tmp, h0, h1-h0); err != nil {
		return fmt.Errorf("model %s: %w", s.Spec.Name, err)
	}
	if perm {
		for sr := h0; sr < h1; sr++ {
			if r := ggufRowToHF(sr, s.Spec.HeadDim); r >= r0 && r < r0+n {
				copy(dst[(r-r0)*cols:(r-r0+1)*cols], tmp[(sr-h0)*cols:(sr-h0+1)*cols])
			}
		}
	}
	s.done(name, h0, h1-h0)
	return nil
}

// RowsF16 is Rows as IEEE fp16 bits, the values Load with weight type f16 holds: fp16 sources
// copied bit for bit, anything else converted from float32 (round to nearest even).
func (s *Stream) RowsF16(name string, dst []uint16, r0, n int) error {
	rows, cols, err := s.check(name, r0, n, len(dst))
	if err != nil || n == 0 {
		return err
	}
	if m := s.packMatrix(name); m != nil {
		p := m.Pack
		for i := range n {
			r := m.PackRow + r0 + i
			for c := range cols {
				dst[i*cols+c] = p.Data[c*p.Stride+r]
			}
		}
		s.done(name, r0, n)
		return nil
	}
	h0, h1, perm := s.block(name, rows, r0, n)
	raw, ok := s.src.f16Rows(name, h0, h1-h0)
	if !ok {
		p := f32Scratch.Get(n * cols)
		defer f32Scratch.Put(p)
		if err := s.Rows(name, *p, r0, n); err != nil {
			return err
		}
		sparse.F32ToF16Slice(dst, *p)
		return nil
	}
	for sr := h0; sr < h1; sr++ {
		r := sr
		if perm {
			r = ggufRowToHF(sr, s.Spec.HeadDim)
		}
		if r < r0 || r >= r0+n {
			continue
		}
		out, b := dst[(r-r0)*cols:(r-r0+1)*cols], raw[(sr-h0)*cols*2:]
		for c := range out {
			out[c] = binary.LittleEndian.Uint16(b[2*c:])
		}
	}
	s.done(name, h0, h1-h0)
	return nil
}

// Vector returns the 1-D tensor name (norm, bias, rope_freqs) as float32, q/k biases of a
// llama.cpp GGUF un-permuted as Load does; nil and no error when the checkpoint has no such
// tensor.
func (s *Stream) Vector(name string) ([]float32, error) {
	if s.src == nil {
		return nil, fmt.Errorf("model %s: the stream is closed", s.Spec.Name)
	}
	sh, ok := s.src.shape(name)
	if !ok {
		return nil, nil
	}
	if len(sh) != 1 || sh[0] > math.MaxInt32 {
		return nil, errorf(ErrTensorShape, "model %s: tensor %s has shape %v, want one dimension", s.Spec.Name, name, sh)
	}
	v := make([]float32, sh[0])
	if err := s.src.rows(name, v, 0, 1); err != nil {
		return nil, fmt.Errorf("model %s: %w", s.Spec.Name, err)
	}
	s.done(name, 0, 1)
	hd := s.Spec.HeadDim
	if s.src.permutedQK() && hd > 0 && len(v)%hd == 0 &&
		(strings.HasSuffix(name, "."+AttnQBias) || strings.HasSuffix(name, "."+AttnKBias)) {
		v = unpermuteRows(v, 1, hd)
	}
	return v, nil
}
