package convert

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/qsparse/qsparse/gguf"
	"github.com/qsparse/qsparse/internal/bufpool"
	"github.com/qsparse/qsparse/model"
	"github.com/qsparse/qsparse/sparse"
)

const chunkBytes = 1 << 20

// Pooled chunk buffers: converting streams every tensor in chunks, and a fresh buffer per chunk
// made hundreds of garbage collections (each marking the tokenizer's heap), which tripled the
// CPU time of a conversion.
var (
	bytePool bufpool.Pool[byte]
	u16Pool  bufpool.Pool[uint16]
	f32Pool  bufpool.Pool[float32]
)

// writeU16 writes v little-endian in chunks (no copy of the whole slice).
func writeU16(w io.Writer, v []uint16) error {
	bp := bytePool.Get(min(chunkBytes, 2*len(v)))
	defer bytePool.Put(bp)
	buf := *bp
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
	bp := bytePool.Get(min(chunkBytes, 4*len(v)))
	defer bytePool.Put(bp)
	buf := *bp
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

// writeF16Cols writes the row-major fp16 matrix rm (rows×cols) as a column-major pack with
// stride rows per column, the padding rows zero: sparse.PackF16Cols(rm).Data, little-endian,
// without building the pack.
func writeF16Cols(w io.Writer, rm []uint16, rows, cols, stride int) error {
	bp := bytePool.Get(max(2*stride, chunkBytes/(2*stride)*2*stride))
	defer bytePool.Put(bp)
	buf := *bp
	per := len(buf) / (2 * stride) // columns per write
	for c0 := 0; c0 < cols; c0 += per {
		n := min(per, cols-c0)
		out := buf[:2*n*stride]
		clear(out)
		for i := range n {
			col := out[2*i*stride:]
			for r := range rows {
				binary.LittleEndian.PutUint16(col[2*r:], rm[r*cols+c0+i])
			}
		}
		if _, err := w.Write(out); err != nil {
			return err
		}
	}
	return nil
}

// vecTensor is a 1-D F32 tensor.
func vecTensor(name string, v []float32) gguf.StreamTensor {
	return gguf.StreamTensor{Name: name, Type: gguf.F32, Shape: []uint64{uint64(len(v))},
		Fill: func(w io.Writer) error { return writeF32(w, v) }}
}

// rowTensor is a rows×cols row-major matrix read from src and written as type t (F32, F16 or
// Q8_0), rows permuted to llama.cpp's q/k order when headDim > 0 (file row r holds model row
// ggufRowToHF(r)). fp16 goes straight from the source's fp16 bits (no float32 round trip).
func rowTensor(src tensorSource, name string, rows, cols int, t gguf.Type, headDim int) gguf.StreamTensor {
	return gguf.StreamTensor{Name: name, Type: t, Shape: []uint64{uint64(cols), uint64(rows)},
		Fill: func(w io.Writer) error {
			if t == gguf.F16 {
				read := func(dst []uint16, r0, n int) error { return src.RowsF16(name, dst, r0, n) }
				return streamRows(&u16Pool, rows, cols, headDim, 2, read, func(v []uint16) error { return writeU16(w, v) })
			}
			read := func(dst []float32, r0, n int) error { return src.Rows(name, dst, r0, n) }
			bp := bytePool.Get(0)
			defer bytePool.Put(bp)
			return streamRows(&f32Pool, rows, cols, headDim, 4, read, func(v []float32) error {
				b, err := gguf.AppendQuantize((*bp)[:0], t, v)
				*bp = b[:0]
				if err != nil {
					return err
				}
				_, err = w.Write(b)
				return err
			})
		}}
}

// streamRows reads a rows×cols matrix about chunkBytes (elemBytes per value) at a time with read
// and hands each chunk to write, rows in llama.cpp's q/k file order when headDim > 0. Permuted
// chunks are whole heads (the permutation stays inside a head), so each source row is read once.
func streamRows[T any](pool *bufpool.Pool[T], rows, cols, headDim, elemBytes int, read func(dst []T, r0, n int) error, write func([]T) error) error {
	step := max(1, chunkBytes/(elemBytes*max(1, cols)))
	if headDim > 0 {
		step = max(1, step/headDim) * headDim
	}
	ip := pool.Get(min(step, rows) * cols)
	defer pool.Put(ip)
	in, out := *ip, *ip
	if headDim > 0 {
		op := pool.Get(len(in))
		defer pool.Put(op)
		out = *op
	}
	for r0 := 0; r0 < rows; r0 += step {
		n := min(step, rows-r0)
		if err := read(in[:n*cols], r0, n); err != nil {
			return err
		}
		if headDim > 0 {
			for i := range n { // file row r0+i holds canonical row ggufRowToHF(r0+i)
				r := ggufRowToHF(r0+i, headDim) - r0
				copy(out[i*cols:(i+1)*cols], in[r*cols:(r+1)*cols])
			}
		}
		if err := write(out[:n*cols]); err != nil {
			return err
		}
	}
	return nil
}

// ggufRowToHF returns the HF (rotate-half) row of GGUF row r of a q or k matrix permuted by
// llama.cpp's converter (w.reshape(n_head, 2, hd/2, cols).swapaxes(1, 2)): GGUF row
// h*hd + 2i + j holds HF row h*hd + j*hd/2 + i.
func ggufRowToHF(r, headDim int) int {
	h, w := r/headDim, r%headDim
	return h*headDim + (w%2)*(headDim/2) + w/2
}

// f16ColsTensor is a rows×cols site matrix read from src and written as an F16 column-major
// pack (sparse.F16Cols.Data): ne = [Stride, Cols].
func f16ColsTensor(src tensorSource, name string, rows, cols int) gguf.StreamTensor {
	stride := (rows + sparse.PadRows - 1) / sparse.PadRows * sparse.PadRows
	return gguf.StreamTensor{Name: PackTensorName(name, SuffixF16Cols), Type: gguf.F16,
		Shape: []uint64{uint64(stride), uint64(cols)},
		Fill: func(w io.Writer) error {
			rp := u16Pool.Get(rows * cols) // row-major fp16, as Load with weight type f16 holds it
			defer u16Pool.Put(rp)
			if err := src.RowsF16(name, *rp, 0, rows); err != nil {
				return err
			}
			return writeF16Cols(w, *rp, rows, cols, stride)
		}}
}

// f16ColsStackTensor is the site matrices names (canonical, rows[i]×cols each), read from src
// and stacked in that row order, written as one F16 column-major pack named pn (layout
// f16-cols-stacked): ne = [Stride, Cols], Stride = Σ rows rounded up to sparse.PadRows.
func f16ColsStackTensor(src tensorSource, pn string, names []string, rows []int, cols int) gguf.StreamTensor {
	total := 0
	for _, r := range rows {
		total += r
	}
	stride := (total + sparse.PadRows - 1) / sparse.PadRows * sparse.PadRows
	return gguf.StreamTensor{Name: pn, Type: gguf.F16, Shape: []uint64{uint64(stride), uint64(cols)},
		Fill: func(w io.Writer) error {
			rp := u16Pool.Get(total * cols) // the stack, row-major fp16
			defer u16Pool.Put(rp)
			r0 := 0
			for i, name := range names {
				if err := src.RowsF16(name, (*rp)[r0*cols:(r0+rows[i])*cols], 0, rows[i]); err != nil {
					return err
				}
				r0 += rows[i]
			}
			return writeF16Cols(w, *rp, total, cols, stride)
		}}
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

// permuteVec applies llama.cpp's q/k permutation to a bias (file element r = model element
// ggufRowToHF(r)).
func permuteVec(v []float32, headDim int) []float32 {
	out := make([]float32, len(v))
	for r := range out {
		out[r] = v[ggufRowToHF(r, headDim)]
	}
	return out
}
