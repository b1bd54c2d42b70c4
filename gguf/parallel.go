package gguf

import (
	"context"
	"errors"
	"fmt"
	"github.com/qsparse/qsparse/internal/atomicfile"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// StreamTensor is a tensor whose bytes are produced while the file is written (WriteFileParallel),
// so a converter never holds every tensor in memory at once.
type StreamTensor struct {
	Name  string
	Type  Type
	Shape []uint64 // ne: innermost (columns) first
	// Fill writes exactly the tensor's bytes (Type's layout, Size() bytes) to w. It is called
	// once, possibly concurrently with other tensors' Fill; w returns an error once the write
	// is cancelled or the device fails, and Fill must return it.
	Fill func(w io.Writer) error
}

// Size returns the number of bytes of the tensor's data (0 and an error for a bad shape).
func (t *StreamTensor) Size() (uint64, error) {
	if len(t.Shape) < 1 || len(t.Shape) > MaxDims {
		return 0, fmt.Errorf("tensor %s has %d dimensions; GGUF allows 1 to %d", t.Name, len(t.Shape), MaxDims)
	}
	if !t.Type.Known() {
		return 0, fmt.Errorf("tensor %s: unknown type %s: %w", t.Name, t.Type, ErrUnsupportedType)
	}
	n, err := t.Type.RowBytes(t.Shape[0])
	if err != nil {
		return 0, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	for _, ne := range t.Shape[1:] {
		if ne != 0 && n > (1<<62)/ne {
			return 0, fmt.Errorf("tensor %s: shape %v is too large", t.Name, t.Shape)
		}
		n *= ne
	}
	return n, nil
}

// Layout is where everything of a GGUF file goes: the header (magic, KV, tensor infos, padding),
// then each tensor's data at its absolute file offset.
type Layout struct {
	Header  []byte
	Offsets []uint64 // absolute file offset of each tensor's data
	Sizes   []uint64 // bytes of each tensor's data
	Size    uint64   // total file size (the last tensor's data is padded to the alignment)
}

// PlanLayout validates kv and tensors as WriteFile does and computes the file layout: all
// offsets are known before any tensor byte is produced.
func PlanLayout(kv []KV, tensors []StreamTensor, alignment uint64) (*Layout, error) {
	// checkWrite validates the KV, the alignment and the tensor names; give it empty-data
	// stand-ins with a zero-byte shape so it checks names and types only.
	stand := make([]WriteTensor, len(tensors))
	sizes := make([]uint64, len(tensors))
	for i := range tensors {
		t := &tensors[i]
		n, err := t.Size()
		if err != nil {
			return nil, err
		}
		if t.Fill == nil {
			return nil, fmt.Errorf("tensor %s has no Fill function", t.Name)
		}
		sizes[i] = n
		stand[i] = WriteTensor{Name: t.Name, Type: t.Type, Shape: []uint64{0}}
	}
	kv, alignment, err := checkWrite(kv, stand, alignment)
	if err != nil {
		return nil, err
	}
	infos := make([]WriteTensor, len(tensors))
	for i := range tensors {
		infos[i] = WriteTensor{Name: tensors[i].Name, Type: tensors[i].Type, Shape: tensors[i].Shape}
	}
	hdr, rel := encodeHeader(kv, infos, sizes, alignment)
	l := &Layout{Header: hdr, Sizes: sizes, Offsets: make([]uint64, len(tensors))}
	for i, r := range rel {
		l.Offsets[i] = uint64(len(hdr)) + r
	}
	l.Size = uint64(len(hdr))
	if n := len(tensors); n > 0 {
		l.Size = alignUp(l.Offsets[n-1]+sizes[n-1], alignment)
	}
	return l, nil
}

// encodeHeader is encode's header part for tensors of the given sizes: it returns the header
// padded to the alignment and each tensor's offset relative to the data section.
func encodeHeader(kv []KV, tensors []WriteTensor, sizes []uint64, alignment uint64) ([]byte, []uint64) {
	var b []byte
	b = appendU32(b, Magic)
	b = appendU32(b, 3)
	b = appendU64(b, uint64(len(tensors)))
	b = appendU64(b, uint64(len(kv)))
	for _, e := range kv {
		b = appendString(b, e.Key)
		b = appendU32(b, uint32(e.Value.Type()))
		b = appendValue(b, e.Value)
	}
	rel := make([]uint64, len(tensors))
	off := uint64(0)
	for i, t := range tensors {
		b = appendString(b, t.Name)
		b = appendU32(b, uint32(len(t.Shape)))
		for _, ne := range t.Shape {
			b = appendU64(b, ne)
		}
		b = appendU32(b, uint32(t.Type))
		b = appendU64(b, off)
		rel[i] = off
		off = alignUp(off+sizes[i], alignment)
	}
	b = append(b, make([]byte, alignUp(uint64(len(b)), alignment)-uint64(len(b)))...)
	return b, rel
}

func appendU32(b []byte, v uint32) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

func appendU64(b []byte, v uint64) []byte {
	return appendU32(appendU32(b, uint32(v)), uint32(v>>32))
}

// ParallelOptions configures WriteFileParallel.
type ParallelOptions struct {
	Workers int // tensors filled at once; <= 0: 2
	// Progress, if set, is called with the number of bytes just written (header and tensor data),
	// from several goroutines at once: it must be safe for concurrent use.
	Progress func(n int64)
	// WrapWriter, if set, wraps the temporary file's WriterAt (tests inject failing writers).
	WrapWriter func(io.WriterAt) io.WriterAt
}

// ErrShortFill is wrapped when a StreamTensor's Fill writes fewer or more bytes than its size.
var ErrShortFill = errors.New("tensor data has the wrong size")

// WriteFileParallel writes a GGUF v3 file: the layout (every offset) is computed first, then the
// tensors' Fill functions run on opts.Workers goroutines, each writing at its own offsets, the
// bytes assembled into 2 MiB blocks (see WriteLayout). The file is written to a temporary file in the
// destination's directory (space reserved up front where the file system allows), synced and
// renamed over path; on any error or cancellation of ctx the temporary file is removed and path
// is left as it was.
func WriteFileParallel(ctx context.Context, path string, kv []KV, tensors []StreamTensor, alignment uint64, opts ParallelOptions) error {
	l, err := PlanLayout(kv, tensors, alignment)
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return atomicfile.WriteFile(path, func(tmp *os.File) error {
		if err := reserve(tmp, int64(l.Size)); err != nil {
			return fmt.Errorf("write %s: reserving %d bytes: %w", path, l.Size, err)
		}
		var dst io.WriterAt = tmp
		if opts.WrapWriter != nil {
			dst = opts.WrapWriter(dst)
		}
		if err := WriteLayout(ctx, dst, l, tensors, opts); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	})
}

// WriteLayout writes the header of l and then every tensor (in parallel) into dst at l's
// offsets. The bytes are assembled in 2 MiB blocks of the file (writeBlock), each written with
// one WriteAt, padding included, as soon as all its bytes are in; a block that holds no header
// or tensor byte is not written: dst must read as zeros there (a new or truncated file does).
func WriteLayout(ctx context.Context, dst io.WriterAt, l *Layout, tensors []StreamTensor, opts ParallelOptions) error {
	progress := opts.Progress
	if progress == nil {
		progress = func(int64) {}
	}
	sink := newBlockSink(dst, l)
	if err := sink.writeAt(l.Header, 0); err != nil {
		return fmt.Errorf("header: %w", err)
	}
	progress(int64(len(l.Header)))
	workers := opts.Workers
	if workers <= 0 {
		workers = 2
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for i := range tensors {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			t := &tensors[i]
			w := &tensorWriter{ctx: gctx, w: &sinkWriter{s: sink, off: l.Offsets[i]}, left: l.Sizes[i], progress: progress}
			if err := t.Fill(w); err != nil {
				return fmt.Errorf("tensor %s: %w", t.Name, err)
			}
			if w.left != 0 {
				return fmt.Errorf("tensor %s: %d of %d bytes written: %w", t.Name, l.Sizes[i]-w.left, l.Sizes[i], ErrShortFill)
			}
			return nil
		})
	}
	err := g.Wait()
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// writeBlock is the unit in which WriteLayout writes: whole 2 MiB blocks at 2 MiB offsets. The
// page cache then holds the new file in 2 MiB folios (ext4 and xfs on recent kernels size a
// buffered write's folios by the write), which a mapping marked MADV_HUGEPAGE maps with one
// TLB entry each (File.HugePages), from the first open on. Tensors streamed a few KiB at a
// time by two goroutines left the file in small folios, which stay small while it is cached
// (seen on Linux 6.18, ext4: none of a 271 MB pack's 2 MiB blocks mapped huge until
// HugePages dropped and re-read it, 1.06 s instead of 0.25 s for a first `qsparse run`).
const writeBlock = 2 << 20

// blockSink assembles a file's bytes in writeBlock-sized buffers and writes each block once
// every byte the layout puts in it (header and tensor data; padding stays zero) has arrived.
// Blocks fill from several goroutines at once: at most a few are open at a time, since tensors
// are filled in file order.
type blockSink struct {
	dst     io.WriterAt
	size    uint64
	mu      sync.Mutex
	bufs    map[uint64][]byte // open blocks
	pending []uint64          // bytes each block still waits for
}

func newBlockSink(dst io.WriterAt, l *Layout) *blockSink {
	s := &blockSink{dst: dst, size: l.Size, bufs: map[uint64][]byte{}, pending: make([]uint64, (l.Size+writeBlock-1)/writeBlock)}
	add := func(off, n uint64) {
		for n > 0 {
			b := off / writeBlock
			k := min(n, (b+1)*writeBlock-off)
			s.pending[b] += k
			off, n = off+k, n-k
		}
	}
	add(0, uint64(len(l.Header)))
	for i, off := range l.Offsets {
		add(off, l.Sizes[i])
	}
	return s
}

// writeAt copies p, which belongs at file offset off, into its blocks and writes every block
// it completes. Callers never write a byte twice (tensorWriter bounds each tensor).
func (s *blockSink) writeAt(p []byte, off uint64) error {
	for len(p) > 0 {
		b := off / writeBlock
		start := b * writeBlock
		k := min(uint64(len(p)), start+writeBlock-off)
		s.mu.Lock()
		buf := s.bufs[b]
		if buf == nil {
			buf = make([]byte, min(writeBlock, s.size-start))
			s.bufs[b] = buf
		}
		s.mu.Unlock()
		copy(buf[off-start:], p[:k]) // this range is ours alone
		s.mu.Lock()
		s.pending[b] -= k
		done := s.pending[b] == 0
		if done {
			delete(s.bufs, b)
		}
		s.mu.Unlock()
		if done {
			if _, err := s.dst.WriteAt(buf, int64(start)); err != nil {
				return err
			}
		}
		p, off = p[k:], off+k
	}
	return nil
}

// sinkWriter is an io.Writer over a blockSink from offset off on.
type sinkWriter struct {
	s   *blockSink
	off uint64
}

func (w *sinkWriter) Write(p []byte) (int, error) {
	if err := w.s.writeAt(p, w.off); err != nil {
		return 0, err
	}
	w.off += uint64(len(p))
	return len(p), nil
}

// tensorWriter bounds a tensor's writes to its size, stops on cancellation and reports progress.
type tensorWriter struct {
	ctx      context.Context
	w        io.Writer
	left     uint64
	progress func(int64)
	pending  atomic.Int64
}

func (w *tensorWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	if uint64(len(p)) > w.left {
		return 0, fmt.Errorf("%d bytes more than the tensor's size: %w", uint64(len(p))-w.left, ErrShortFill)
	}
	n, err := w.w.Write(p)
	w.left -= uint64(n)
	// Report in steps of at least 1 MiB to keep the progress callback cheap.
	if w.pending.Add(int64(n)) >= 1<<20 || w.left == 0 {
		w.progress(w.pending.Swap(0))
	}
	return n, err
}
