package convert

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/qsparse/qsparse/gguf"
	"github.com/qsparse/qsparse/internal/testenv"
	"github.com/qsparse/qsparse/model"
	"github.com/qsparse/qsparse/sparse"
)

func stories(t *testing.T) string { return testenv.Path(t, "stories260K.gguf") }

func load(t *testing.T, path, wt string) *model.Model {
	t.Helper()
	m, err := model.Load(path, model.LoadOptions{WeightType: wt, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func run(t *testing.T, opts Options) *Result {
	t.Helper()
	res, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func u16s(b []byte) []uint16 {
	out := make([]uint16, len(b)/2)
	for i := range out {
		out[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return out
}

func f32s(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func openGGUF(t *testing.T, path string) *gguf.File {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// checkPackF16 compares every tensor of an fp16 pack with the model it was written from: site
// packs with sparse.PackF16Cols of the weights, the rest with the weights / the source keys.
func checkPackF16(t *testing.T, packPath, srcPath string, m *model.Model) {
	t.Helper()
	f := openGGUF(t, packPath)
	if f.Arch() != PackArch || f.Alignment != PackAlignment {
		t.Fatalf("arch %q alignment %d", f.Arch(), f.Alignment)
	}
	if v, _ := f.Uint(KeyVersion); v != FormatVersion {
		t.Errorf("%s = %d", KeyVersion, v)
	}
	if s, _ := f.String(KeyLayout); s != LayoutF16ColsStacked {
		t.Errorf("layout %q", s)
	}
	if s, _ := f.String(KeySourceArch); s != m.Spec.Arch {
		t.Errorf("source arch %q", s)
	}
	for _, k := range []string{"embedding_length", "block_count", "feed_forward_length", "attention.head_count", "attention.head_count_kv", "vocab_size"} {
		if _, ok := f.Uint(PackArch + "." + k); !ok {
			t.Errorf("key %s.%s missing", PackArch, k)
		}
	}
	n := 0
	for _, ts := range m.Spec.Tensors() {
		switch {
		case isSiteMatrix(ts.Name):
			// q/k/v and gate/up: one pack of the matrices' rows stacked; o, down: their own
			pn, stack, stacked := m.Spec.PackStack(ts.Name)
			if !stacked {
				pn, stack = PackTensorName(ts.Name, SuffixF16Cols), []string{ts.Name}
			} else if ts.Name != stack[0] {
				continue
			}
			ti, ok := f.Tensor(pn)
			if !ok {
				t.Fatalf("%s: pack tensor %s missing", ts.Name, pn)
			}
			var rm []uint16
			rows := 0
			for _, name := range stack {
				w := m.W.Matrix(name)
				rm, rows = append(rm, w.F16...), rows+w.Rows
			}
			p, err := sparse.PackF16Cols(rm, rows, ts.Shape[1])
			if err != nil {
				t.Fatal(err)
			}
			if ti.Type != gguf.F16 || !slices.Equal(ti.Shape, []uint64{uint64(p.Stride), uint64(p.Cols)}) || !slices.Equal(u16s(ti.Data), p.Data) {
				t.Fatalf("%s: pack tensor %s %v differs from PackF16Cols (stride %d)", ts.Name, ti.Type, ti.Shape, p.Stride)
			}
			if ti.Offset%PackAlignment != 0 {
				t.Errorf("%s: offset %d not aligned", ti.Name, ti.Offset)
			}
		case ts.Matrix:
			ti, ok := f.Tensor(ts.Name)
			if !ok || ti.Type != gguf.F16 || !slices.Equal(u16s(ti.Data), m.W.Matrix(ts.Name).F16) {
				t.Fatalf("%s differs from the model", ts.Name)
			}
		default:
			ti, ok := f.Tensor(ts.Name)
			if !ok || ti.Type != gguf.F32 || !slices.Equal(f32s(ti.Data), vector(m, ts.Name)) {
				t.Fatalf("%s differs from the model", ts.Name)
			}
		}
		n++
	}
	if len(f.Tensors) != n+btoi(m.W.RopeFreqs != nil) {
		t.Errorf("%d tensors, want %d", len(f.Tensors), n)
	}
	// tokenizer keys copied unchanged from a GGUF source
	if st, _ := os.Stat(srcPath); !st.IsDir() {
		src := openGGUF(t, srcPath)
		for _, e := range src.KV {
			if strings.HasPrefix(e.Key, "tokenizer.") {
				if v, ok := f.Lookup(e.Key); !ok || !v.Equal(e.Value) {
					t.Errorf("key %s not copied", e.Key)
				}
			}
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestPackF16RoundTrip(t *testing.T) {
	src := stories(t)
	out := filepath.Join(t.TempDir(), "p.gguf")
	var last atomic.Int64
	res := run(t, Options{Model: src, Format: FormatFP16, Out: out, Threads: 2,
		Progress: func(done, total int64) {
			if done > total {
				t.Errorf("progress %d of %d", done, total)
			}
			last.Store(done)
		}})
	st, _ := os.Stat(out)
	if st.Size() != res.Bytes {
		t.Errorf("file %d bytes, result says %d", st.Size(), res.Bytes)
	}
	checkPackF16(t, out, src, load(t, src, "f16"))
	if last.Load() == 0 {
		t.Error("no progress reported")
	}
}

func TestPackProfile(t *testing.T) {
	src := stories(t)
	m := load(t, src, "f16")
	prof, err := model.UniformProfile(&m.Spec, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pp := filepath.Join(dir, "prof.json")
	if err := model.WriteProfile(pp, &m.Spec, prof); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "p.gguf")
	run(t, Options{Model: src, Format: FormatFP16, Out: out, Profile: pp})
	js, ok := openGGUF(t, out).String(KeyProfile)
	if !ok {
		t.Fatal("no profile key")
	}
	got, err := model.DecodeProfile(strings.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Keep, prof.Keep) {
		t.Errorf("profile K %v, want %v", got.Keep, prof.Keep)
	}
}

// TestExportGGUF: a gguf-f32 export loads back (model.Load un-permutes q/k) to exactly the
// source weights and keeps every tokenizer key; q/k rows are stored in llama.cpp's order, so
// the export's bytes equal the source GGUF's for an F32 source.
func TestExportGGUF(t *testing.T) {
	src := stories(t)
	dir := t.TempDir()
	ref := load(t, src, "f32")
	sf := openGGUF(t, src)
	for _, format := range []string{FormatGGUFF32, FormatGGUFF16, FormatGGUFQ8_0} {
		out := filepath.Join(dir, format+".gguf")
		run(t, Options{Model: src, Format: format, Out: out})
		f := openGGUF(t, out)
		if f.Arch() != "llama" {
			t.Errorf("%s: arch %q", format, f.Arch())
		}
		for _, e := range sf.KV {
			if strings.HasPrefix(e.Key, "tokenizer.") {
				if v, ok := f.Lookup(e.Key); !ok || !v.Equal(e.Value) {
					t.Errorf("%s: key %s not copied", format, e.Key)
				}
			}
		}
		if format == FormatGGUFF32 {
			for _, ti := range sf.Tensors {
				got, ok := f.Tensor(ti.Name)
				if !ok || got.Type != ti.Type || !slices.Equal(got.Shape, ti.Shape) || string(got.Data) != string(ti.Data) {
					t.Errorf("%s: tensor %s differs from the source GGUF", format, ti.Name)
				}
			}
		}
		m := load(t, out, "f32")
		if m.Spec != ref.Spec {
			a, b := m.Spec, ref.Spec
			a.Name, b.Name = "", ""
			if a != b {
				t.Errorf("%s: spec %+v, want %+v", format, m.Spec, ref.Spec)
			}
		}
		tol := map[string]float64{FormatGGUFF32: 0, FormatGGUFF16: 1e-3, FormatGGUFQ8_0: 1.5e-2}[format]
		for _, ts := range ref.Spec.Tensors() {
			if !ts.Matrix {
				if !slices.Equal(vector(m, ts.Name), vector(ref, ts.Name)) {
					t.Errorf("%s: %s differs", format, ts.Name)
				}
				continue
			}
			a, b := m.W.Matrix(ts.Name).F32, ref.W.Matrix(ts.Name).F32
			var maxAbs, maxErr float64
			for i := range a {
				maxAbs = max(maxAbs, math.Abs(float64(b[i])))
				maxErr = max(maxErr, math.Abs(float64(a[i]-b[i])))
			}
			if maxErr > tol*maxAbs {
				t.Errorf("%s: %s max error %g (max |w| %g)", format, ts.Name, maxErr, maxAbs)
			}
		}
	}
}

func TestBadInput(t *testing.T) {
	src := stories(t)
	dir := t.TempDir()
	ctx := context.Background()
	if _, err := Run(ctx, Options{Model: src, Format: "q5_k", Out: filepath.Join(dir, "x.gguf")}); !errors.Is(err, ErrFormat) {
		t.Errorf("unknown format: %v", err)
	}
	// output == input, also through another path (a symlink) and for an HF folder's files
	cp := filepath.Join(dir, "in.gguf")
	b, _ := os.ReadFile(src)
	os.WriteFile(cp, b, 0o644)
	os.Symlink(cp, filepath.Join(dir, "link.gguf"))
	for _, out := range []string{cp, filepath.Join(dir, "link.gguf"), filepath.Join(dir, ".", "in.gguf")} {
		if _, err := Run(ctx, Options{Model: cp, Format: FormatFP16, Out: out}); !errors.Is(err, ErrSameFile) {
			t.Errorf("out %s == input: %v", out, err)
		}
	}
	if got, _ := os.ReadFile(cp); string(got) != string(b) {
		t.Error("the input was modified")
	}
	if _, err := Run(ctx, Options{Model: src, Format: FormatFP16, Out: dir}); !errors.Is(err, ErrBadOutput) {
		t.Errorf("out is a directory: %v", err)
	}
	if _, err := Run(ctx, Options{Model: src, Format: FormatFP16, Out: filepath.Join(dir, "no", "x.gguf")}); !errors.Is(err, ErrBadOutput) {
		t.Errorf("out in a missing directory: %v", err)
	}
	hf := t.TempDir()
	os.WriteFile(filepath.Join(hf, "model.safetensors"), []byte("x"), 0o644)
	if err := checkPaths(hf, filepath.Join(hf, "model.safetensors")); !errors.Is(err, ErrSameFile) {
		t.Errorf("out inside the HF folder: %v", err)
	}
	onlyFiles(t, dir, "in.gguf", "link.gguf")
}

// failAfter fails every write past n bytes with ENOSPC, as a full disk does.
type failAfter struct {
	w    io.WriterAt
	left atomic.Int64
}

func (f *failAfter) WriteAt(p []byte, off int64) (int, error) {
	if f.left.Add(-int64(len(p))) < 0 {
		return 0, &os.PathError{Op: "write", Path: "disk", Err: syscall.ENOSPC}
	}
	return f.w.WriteAt(p, off)
}

func onlyFiles(t *testing.T, dir string, want ...string) {
	t.Helper()
	es, _ := os.ReadDir(dir)
	var got []string
	for _, e := range es {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s holds %v, want %v (a partial file left behind?)", dir, got, want)
	}
}

func TestFailingWriter(t *testing.T) {
	src := stories(t)
	for _, format := range []string{FormatFP16, FormatGGUFQ8_0} {
		for _, n := range []int64{0, 5000, 300000} {
			dir := t.TempDir()
			_, err := Run(context.Background(), Options{Model: src, Format: format, Out: filepath.Join(dir, "x.gguf"),
				WrapWriter: func(w io.WriterAt) io.WriterAt {
					f := &failAfter{w: w}
					f.left.Store(n)
					return f
				}})
			if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left") {
				t.Errorf("%s, fail after %d bytes: error %v", format, n, err)
			}
			onlyFiles(t, dir)
		}
	}
}

// TestCancel: a context cancelled during the write (Ctrl-C) stops it with context.Canceled and
// leaves no file.
func TestCancel(t *testing.T) {
	src := stories(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var seen atomic.Int64
	_, err := Run(ctx, Options{Model: src, Format: FormatFP16, Out: filepath.Join(dir, "x.gguf"), Threads: 1,
		Progress: func(done, total int64) {
			if done > 0 && seen.Add(1) == 2 {
				cancel()
			}
		}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	onlyFiles(t, dir)
	cancel()
	if _, err := Run(ctx, Options{Model: src, Format: FormatGGUFF16, Out: filepath.Join(dir, "y.gguf")}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before start: %v", err)
	}
	onlyFiles(t, dir)
}
