package gguf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

func streamTensors(ts []WriteTensor) []StreamTensor {
	out := make([]StreamTensor, len(ts))
	for i, t := range ts {
		out[i] = StreamTensor{Name: t.Name, Type: t.Type, Shape: t.Shape, Fill: func(w io.Writer) error {
			// several writes per tensor, as a converter does
			for b := t.Data; len(b) > 0; {
				n := min(len(b), 7)
				if _, err := w.Write(b[:n]); err != nil {
					return err
				}
				b = b[n:]
			}
			return nil
		}}
	}
	return out
}

// TestWriteFileParallelSameBytes: the parallel writer gives exactly WriteFile's bytes.
func TestWriteFileParallelSameBytes(t *testing.T) {
	for _, align := range []uint64{0, 1, 64, 4096} {
		dir := t.TempDir()
		a, b := filepath.Join(dir, "a.gguf"), filepath.Join(dir, "b.gguf")
		if err := WriteFile(a, allValueKVs(), testTensors(), align); err != nil {
			t.Fatal(err)
		}
		var progress atomic.Int64
		opts := ParallelOptions{Workers: 3, Progress: func(n int64) { progress.Add(n) }}
		if err := WriteFileParallel(context.Background(), b, allValueKVs(), streamTensors(testTensors()), align, opts); err != nil {
			t.Fatal(err)
		}
		ab, _ := os.ReadFile(a)
		bb, _ := os.ReadFile(b)
		if !bytes.Equal(ab, bb) {
			t.Fatalf("align %d: parallel writer output differs (%d vs %d bytes)", align, len(bb), len(ab))
		}
		var data int64
		for _, ts := range testTensors() {
			data += int64(len(ts.Data))
		}
		l, _ := PlanLayout(allValueKVs(), streamTensors(testTensors()), align)
		if got, want := progress.Load(), int64(len(l.Header))+data; got != want {
			t.Errorf("align %d: progress reported %d bytes, want %d", align, got, want)
		}
		if st, _ := os.Stat(b); st.Mode().Perm() != 0o644 {
			t.Errorf("mode %v", st.Mode())
		}
	}
}

// failAfter fails every write past n bytes with ENOSPC (a full disk).
type failAfter struct {
	w    io.WriterAt
	left atomic.Int64
}

func (f *failAfter) WriteAt(p []byte, off int64) (int, error) {
	if f.left.Add(-int64(len(p))) < 0 {
		return 0, &os.PathError{Op: "write", Path: "test", Err: syscall.ENOSPC}
	}
	return f.w.WriteAt(p, off)
}

func onlyFiles(t *testing.T, dir string, want ...string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Name())
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("directory holds %v, want %v", got, want)
	}
}

func TestWriteFileParallelFailures(t *testing.T) {
	l, err := PlanLayout(allValueKVs(), streamTensors(testTensors()), 64)
	if err != nil {
		t.Fatal(err)
	}
	written := int64(len(l.Header))
	for _, s := range l.Sizes {
		written += int64(s)
	}
	for _, n := range []int64{0, 10, int64(len(l.Header)), written - 1} {
		dir := t.TempDir()
		path := filepath.Join(dir, "out.gguf")
		os.WriteFile(path, []byte("old"), 0o644)
		opts := ParallelOptions{Workers: 2, WrapWriter: func(w io.WriterAt) io.WriterAt {
			f := &failAfter{w: w}
			f.left.Store(n)
			return f
		}}
		err := WriteFileParallel(context.Background(), path, allValueKVs(), streamTensors(testTensors()), 64, opts)
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("fail after %d bytes: error %v, want ENOSPC", n, err)
		}
		onlyFiles(t, dir, "out.gguf")
		if b, _ := os.ReadFile(path); string(b) != "old" {
			t.Errorf("fail after %d bytes: the old file was changed", n)
		}
	}

	// A cancelled context: no file, context.Canceled.
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	ts := streamTensors(testTensors())
	ts[2].Fill = func(w io.Writer) error { cancel(); _, err := w.Write([]byte{1}); return err }
	err = WriteFileParallel(ctx, filepath.Join(dir, "x.gguf"), allValueKVs(), ts, 64, ParallelOptions{Workers: 1})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: error %v", err)
	}
	onlyFiles(t, dir)

	// A Fill that writes too little or too much.
	for _, extra := range []int{-1, 1} {
		ts := streamTensors(testTensors())
		data := testTensors()[0].Data
		ts[0].Fill = func(w io.Writer) error {
			_, err := w.Write(append(bytes.Clone(data), 0)[:len(data)+extra])
			return err
		}
		dir := t.TempDir()
		err := WriteFileParallel(context.Background(), filepath.Join(dir, "x.gguf"), allValueKVs(), ts, 64, ParallelOptions{})
		if !errors.Is(err, ErrShortFill) {
			t.Errorf("fill %+d bytes: error %v", extra, err)
		}
		onlyFiles(t, dir)
	}
}

// recordWrites remembers the offset and length of every WriteAt.
type recordWrites struct {
	w   io.WriterAt
	mu  sync.Mutex
	got [][2]int64
}

func (r *recordWrites) WriteAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	r.got = append(r.got, [2]int64{off, int64(len(p))})
	r.mu.Unlock()
	return r.w.WriteAt(p, off)
}

// TestWriteFileParallelBlocks: tensors that straddle 2 MiB blocks, filled by three goroutines
// in odd-sized writes, give WriteFile's bytes, written as whole blocks only: each WriteAt
// covers one block from its start (the last one up to the end of the file), once.
func TestWriteFileParallelBlocks(t *testing.T) {
	var ts []WriteTensor
	for i, n := range []int{1_500_000, 3 << 20, 700_001, 5, 2 << 20, 1_234_567} {
		d := make([]byte, n)
		for j := range d {
			d[j] = byte(j*31 + i*7 + j>>13)
		}
		ts = append(ts, WriteTensor{Name: fmt.Sprintf("t%d", i), Type: I8, Shape: []uint64{uint64(n)}, Data: d})
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.gguf"), filepath.Join(dir, "b.gguf")
	if err := WriteFile(a, allValueKVs(), ts, 32); err != nil {
		t.Fatal(err)
	}
	rec := &recordWrites{}
	opts := ParallelOptions{Workers: 3, WrapWriter: func(w io.WriterAt) io.WriterAt { rec.w = w; return rec }}
	stream := streamTensors(ts)
	for i := range stream { // bigger, uneven writes than streamTensors' 7 bytes
		data := ts[i].Data
		stream[i].Fill = func(w io.Writer) error {
			for p := data; len(p) > 0; {
				n := min(len(p), 4097+i*1000)
				if _, err := w.Write(p[:n]); err != nil {
					return err
				}
				p = p[n:]
			}
			return nil
		}
	}
	if err := WriteFileParallel(context.Background(), b, allValueKVs(), stream, 32, opts); err != nil {
		t.Fatal(err)
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Fatalf("parallel writer output differs (%d vs %d bytes)", len(bb), len(ab))
	}
	size := int64(len(bb))
	seen := map[int64]bool{}
	for _, w := range rec.got {
		if w[0]%writeBlock != 0 || w[1] != min(writeBlock, size-w[0]) || seen[w[0]] {
			t.Errorf("WriteAt(%d bytes, offset %d): not one whole block (file %d bytes)", w[1], w[0], size)
		}
		seen[w[0]] = true
	}
	if want := int((size + writeBlock - 1) / writeBlock); len(seen) != want {
		t.Errorf("%d blocks written, want %d", len(seen), want)
	}
}
