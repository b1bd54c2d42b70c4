package convert

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/qsparse/qsparse/gguf"
	"github.com/qsparse/qsparse/model"
	"github.com/qsparse/qsparse/sparse"
)

const chunkBytes = 1 << 20

// writeU16 writes v little-endian in chunks (no copy of the whole slice).
func writeU16(w io.Writer, v []uint16) error {
	buf := make([]byte, min(chunkBytes, 2*len(v)))
	for len(v) > 0 {
		n := min(len(v), len(buf)/2)
		for i, x := range v[:n] {
			binary.LittleEndian.PutUint16(buf[2*i:], x)
		}
		if _, err := w.Write(buf[:2*n]); err != nil {
			return err
		}
		v = v[n:]
	}
	return nil
}

// writeF32 writes v little-endian in chunks.
func writeF32(w io.Writer, v []float32) error {
	buf := make([]byte, min(chunkBytes, 4*len(v)))
	for len(v) > 0 {
		n := min(len(v), len(buf)/4)
		for i, x := range v[:n] {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
		}
		if _, err := w.Write(buf[:4*n]); err != nil {
			return err
		}
		v = v[n:]
	}
	return nil
}

func writeBytes(w io.Writer, b []byte) error {
	for len(b) > 0 {
		n := min(len(b), chunkBytes)
		if _, err := w.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// vecTensor is a 1-D F32 tensor.
func vecTensor(name string, v []float32) gguf.StreamTensor {
	return gguf.StreamTensor{Name: name, Type: gguf.F32, Shape: []uint64{uint64(len(v))},
		Fill: func(w io.Writer) error { return writeF32(w, v) }}
}

// rowTensor is a row-major matrix written as type t (F32, F16 or Q8_0), rows permuted to
// llama.cpp's q/k order when headDim > 0 (file row r holds model row ggufRowToHF(r)).
func rowTensor(name string, m *model.Matrix, t gguf.Type, headDim int) gguf.StreamTensor {
	return gguf.StreamTensor{Name: name, Type: t, Shape: []uint64{uint64(m.Cols), uint64(m.Rows)},
		Fill: func(w io.Writer) error {
			src := func(r int) int {
				if headDim > 0 {
					return ggufRowToHF(r, headDim)
				}
				return r
			}
			if t == gguf.F16 && m.F16 != nil && headDim == 0 {
				return writeU16(w, m.F16)
			}
			// Row by row, in batches of about chunkBytes.
			rows := max(1, chunkBytes/(4*max(1, m.Cols)))
			f := make([]float32, rows*m.Cols)
			for r0 := 0; r0 < m.Rows; r0 += rows {
				n := min(rows, m.Rows-r0)
				for i := range n {
					dst := f[i*m.Cols : (i+1)*m.Cols]
					r := src(r0 + i)
					if m.F16 != nil {
						sparse.F16ToF32Slice(dst, m.F16[r*m.Cols:(r+1)*m.Cols])
					} else {
						copy(dst, m.F32[r*m.Cols:(r+1)*m.Cols])
					}
				}
				b, err := gguf.Quantize(t, f[:n*m.Cols])
				if err != nil {
					return err
				}
				if _, err := w.Write(b); err != nil {
					return err
				}
			}
			return nil
		}}
}

// ggufRowToHF returns the HF (rotate-half) row of GGUF row r of a q or k matrix permuted by
// llama.cpp's converter (w.reshape(n_head, 2, hd/2, cols).swapaxes(1, 2)): GGUF row
// h*hd + 2i + j holds HF row h*hd + j*hd/2 + i.
func ggufRowToHF(r, headDim int) int {
	h, w := r/headDim, r%headDim
	return h*headDim + (w%2)*(headDim/2) + w/2
}

// f16ColsTensor is a site matrix as an F16 column-major pack (sparse.F16Cols.Data):
// ne = [Stride, Cols].
func f16ColsTensor(name string, m *model.Matrix) gguf.StreamTensor {
	stride := (m.Rows + sparse.PadRows - 1) / sparse.PadRows * sparse.PadRows
	return gguf.StreamTensor{Name: PackTensorName(name, SuffixF16Cols), Type: gguf.F16,
		Shape: []uint64{uint64(stride), uint64(m.Cols)},
		Fill: func(w io.Writer) error {
			p, err := packF16(m)
			if err != nil {
				return err
			}
			if p.Stride != stride {
				return fmt.Errorf("pack stride %d, want %d", p.Stride, stride)
			}
			return writeU16(w, p.Data)
		}}
}

// packF16 packs a model matrix column-major.
func packF16(m *model.Matrix) (*sparse.F16Cols, error) {
	if m.F16 != nil {
		return sparse.PackF16Cols(m.F16, m.Rows, m.Cols)
	}
	return sparse.PackF16ColsFromF32(m.F32, m.Rows, m.Cols)
}

// ternaryTensors are a ternary site matrix's codes (sparse.TernaryQ8.Codes, I8, ne =
// [ColBytes, Cols]) and scales (F32, ne = [1] or [Cols]).
func ternaryTensors(name string, t *sparse.TernaryCols) []gguf.StreamTensor {
	colBytes := (t.Rows + 255) / 256 * 64
	return []gguf.StreamTensor{
		{Name: PackTensorName(name, SuffixTQ8), Type: gguf.I8, Shape: []uint64{uint64(colBytes), uint64(t.Cols)},
			Fill: func(w io.Writer) error {
				q, err := sparse.TernaryQ8FromCols(t)
				if err != nil {
					return err
				}
				if q.ColBytes() != colBytes {
					return fmt.Errorf("pack column bytes %d, want %d", q.ColBytes(), colBytes)
				}
				return writeBytes(w, q.Codes)
			}},
		vecTensor(PackTensorName(name, SuffixTScale), t.Scale),
	}
}

// isSiteMatrix reports whether a canonical tensor name is one of the seven site matrices.
func isSiteMatrix(name string) bool {
	for _, s := range []string{model.AttnQ, model.AttnK, model.AttnV, model.AttnOutput, model.FFNGate, model.FFNUp, model.FFNDown} {
		if strings.HasPrefix(name, "blk.") && strings.HasSuffix(name, "."+s) {
			return true
		}
	}
	return false
}

// isQK reports whether a canonical name is a q or k matrix or bias (permuted in llama GGUFs).
func isQK(name string) bool {
	for _, s := range []string{model.AttnQ, model.AttnK, model.AttnQBias, model.AttnKBias} {
		if strings.HasSuffix(name, "."+s) {
			return true
		}
	}
	return false
}

// vector returns the 1-D tensor (norm, bias) with a canonical name.
func vector(m *model.Model, name string) []float32 {
	if name == model.NameOutputNorm {
		return m.W.OutputNorm
	}
	var l int
	var suffix string
	if n, _ := fmt.Sscanf(name, "blk.%d.%s", &l, &suffix); n != 2 || l < 0 || l >= len(m.W.Layers) {
		return nil
	}
	L := &m.W.Layers[l]
	switch suffix {
	case model.AttnNorm:
		return L.AttnNorm
	case model.FFNNorm:
		return L.FFNNorm
	case model.AttnQBias:
		return L.QBias
	case model.AttnKBias:
		return L.KBias
	case model.AttnVBias:
		return L.VBias
	}
	return nil
}

// permuteVec applies llama.cpp's q/k permutation to a bias (file element r = model element
// ggufRowToHF(r)).
func permuteVec(v []float32, headDim int) []float32 {
	out := make([]float32, len(v))
	for r := range out {
		out[r] = v[ggufRowToHF(r, headDim)]
	}
	return out
}
