package model_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/qsparse/qsparse/convert"
	"github.com/qsparse/qsparse/gguf"
	"github.com/qsparse/qsparse/internal/testenv"
	"github.com/qsparse/qsparse/model"
	"github.com/qsparse/qsparse/sparse"
)

// Tests of ternary-q8 pack files (FORMAT.md), written by convert --format ternary from
// stories260K: the int8 ternary kernel against a plain reference, prefill against decode,
// loader errors. They run on whatever backend the build and GODEBUG select.

// ternaryPack converts stories260K to a ternary pack in a temporary directory, with a uniform
// 50 % profile stored in it, and returns its path.
func ternaryPack(t *testing.T, perColumn bool) string {
	t.Helper()
	src := testenv.Path(t, "stories260K.gguf")
	dir := t.TempDir()
	m, err := model.Load(src, model.LoadOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	prof, err := model.UniformProfile(&m.Spec, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	pp := filepath.Join(dir, "u50.json")
	if err := model.WriteProfile(pp, &m.Spec, prof); err != nil {
		t.Fatal(err)
	}
	m.Close()
	out := filepath.Join(dir, "stories.ternary.gguf")
	if _, err := convert.Run(context.Background(), convert.Options{Model: src, Format: convert.FormatTernary, Out: out,
		Profile: pp, PerColumn: perColumn, Threads: 2}); err != nil {
		t.Fatal(err)
	}
	return out
}

func loadPack(t *testing.T, path string, threads int) *model.Model {
	t.Helper()
	m, err := model.Load(path, model.LoadOptions{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// ternaryRef is the plain reference of a ternary site matrix, written from the definition of
// sparse.SparseGemvTernaryQ8 and independent of the pack layout: the weights dequantized to a
// row-major float32 matrix (W[r][c] = t·scale, from Matrix.At) and divided back to trits, the
// activations of the given channels quantized as the kernel does (sparse.QuantizeQ8 of x, or
// of x times the column scale for per-column packs), an int32 dot product per row and the
// kernel's float32 epilogue. Integer sums are exact, so it gives the kernel's bits.
type ternaryRef struct {
	trits map[*model.Matrix][]int8
}

func newTernaryRef() *ternaryRef { return &ternaryRef{trits: map[*model.Matrix][]int8{}} }

func (rf *ternaryRef) gemv(w *model.Matrix, x []float32, idx []int32, y []float32) {
	scale := w.Tern.Scale
	colScale := func(c int) float32 {
		if len(scale) == 1 {
			return scale[0]
		}
		return scale[c]
	}
	tr, ok := rf.trits[w]
	if !ok {
		tr = make([]int8, w.Rows*w.Cols)
		for r := range w.Rows {
			for c := range w.Cols {
				v := w.At(r, c) / colScale(c) // exactly -1, 0 or +1
				if v != -1 && v != 0 && v != 1 {
					panic(fmt.Sprintf("W[%d][%d] = %v is not a trit times the scale %v", r, c, w.At(r, c), colScale(c)))
				}
				tr[r*w.Cols+c] = int8(v)
			}
		}
		rf.trits[w] = tr
	}
	if idx == nil {
		idx = make([]int32, w.Cols)
		for c := range idx {
			idx[c] = int32(c)
		}
	}
	v := make([]float32, len(idx))
	for j, c := range idx {
		v[j] = x[c]
		if len(scale) != 1 {
			v[j] *= scale[c]
		}
	}
	q := make([]int8, len(idx))
	mul := sparse.QuantizeQ8(q, v)
	if len(scale) == 1 {
		mul = scale[0] * mul
	}
	for r := range w.Rows {
		var s int32
		for j, c := range idx {
			s += int32(q[j]) * int32(tr[r*w.Cols+int(c)])
		}
		y[r] = float32(s) * mul
	}
}

// relDiff returns max |a-b| over max |b| (at least 1).
func relDiff(a, b []float32) float64 {
	var d, s float64
	for i := range b {
		d = max(d, math.Abs(float64(a[i]-b[i])))
		s = max(s, math.Abs(float64(b[i])))
	}
	return d / max(s, 1)
}

// prefillAndDecode runs toks as one prefill (every position's logits) on a fresh State, then
// on another fresh State token by token, and returns both [len(toks)][vocab].
func prefillAndDecode(t *testing.T, m *model.Model, p *model.Profile, ref *ternaryRef, toks []int) (pre, dec [][]float32) {
	t.Helper()
	V := m.Spec.Vocab
	state := func() *model.State {
		st := m.NewState(64)
		if err := st.SetProfile(p); err != nil {
			t.Fatal(err)
		}
		if ref != nil {
			st.SetTernaryReference(ref.gemv)
		}
		return st
	}
	all := make([]float32, len(toks)*V)
	if err := state().Forward(toks, 0, all); err != nil {
		t.Fatal(err)
	}
	st := state()
	for i := range toks {
		pre = append(pre, all[i*V:(i+1)*V])
		l := make([]float32, V)
		if err := st.Forward(toks[i:i+1], i, l); err != nil {
			t.Fatal(err)
		}
		dec = append(dec, l)
	}
	return pre, dec
}

// greedyRun prefills prompt and decodes n tokens greedily.
func greedyRun(t *testing.T, m *model.Model, p *model.Profile, ref *ternaryRef, prompt []int, n int) []int {
	t.Helper()
	st := m.NewState(64)
	if err := st.SetProfile(p); err != nil {
		t.Fatal(err)
	}
	if ref != nil {
		st.SetTernaryReference(ref.gemv)
	}
	l := make([]float32, m.Spec.Vocab)
	if err := st.Forward(prompt, 0, l); err != nil {
		t.Fatal(err)
	}
	var out []int
	for i := range n {
		tok := model.Argmax(l)
		out = append(out, tok)
		if err := st.Forward([]int{tok}, len(prompt)+i, l); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestTernaryPack: a ternary pack loads in place and runs, dense and at 50 %: its logits
// equal the plain reference's within float tolerance (prefill and decode), prefill equals
// token-by-token decode, greedy decoding picks the reference's 16 tokens, and the pack's
// profile, layout and byte counts are reported.
func TestTernaryPack(t *testing.T) {
	for _, perColumn := range []bool{false, true} {
		t.Run(fmt.Sprintf("perColumn=%v", perColumn), func(t *testing.T) {
			path := ternaryPack(t, perColumn)
			m := loadPack(t, path, 2)
			L := &m.W.Layers[1]
			if m.Format != "qsparse-pack" || m.SiteLayout() != model.LayoutTernaryQ8 || L.Up.Layout() != model.LayoutTernaryQ8 ||
				L.QKV != nil || m.W.Output.Layout() != model.LayoutF16 || m.DefaultProfile == nil {
				t.Fatalf("format %s, site layout %s, up %s, output %s, profile %v", m.Format, m.SiteLayout(), L.Up.Layout(), m.W.Output.Layout(), m.DefaultProfile)
			}
			// the codes are the mapped file bytes (page-aligned tensor data), not a copy
			for _, w := range []*model.Matrix{L.Q, L.K, L.V, L.O, L.Gate, L.Up, L.Down} {
				tq := w.Tern
				if uintptr(unsafe.Pointer(unsafe.SliceData(tq.Codes)))%4096 != 0 || w.Bytes() != int64(len(tq.Codes)+4*len(tq.Scale)) ||
					len(tq.Codes) != tq.ColBytes()*w.Cols || (len(tq.Scale) == w.Cols) != perColumn {
					t.Fatalf("%dx%d ternary matrix: codes at %p (%d bytes), %d scales, Bytes %d",
						w.Rows, w.Cols, unsafe.SliceData(tq.Codes), len(tq.Codes), len(tq.Scale), w.Bytes())
				}
			}
			info, err := model.Inspect(path)
			if err != nil {
				t.Fatal(err)
			}
			if info.Layout != model.PackTernQ8 || info.DenseBytesPerToken != m.DenseBytesPerToken() {
				t.Errorf("inspect: layout %q, dense bytes/token %d, loaded model %d", info.Layout, info.DenseBytesPerToken, m.DenseBytesPerToken())
			}
			toks := m.Tok.Encode("Once upon a time, there was a little girl named Lily. She", true, false)
			ref := newTernaryRef()
			for _, p := range []*model.Profile{nil, m.DefaultProfile} {
				name := "dense"
				if p != nil {
					name = "50%"
				}
				pre, dec := prefillAndDecode(t, m, p, nil, toks)
				rpre, rdec := prefillAndDecode(t, m, p, ref, toks)
				var dRef, dPre float64
				for i := range toks {
					dRef = max(dRef, relDiff(pre[i], rpre[i]), relDiff(dec[i], rdec[i]))
					dPre = max(dPre, relDiff(dec[i], pre[i]))
				}
				t.Logf("%s: pack vs reference %.2g, prefill vs decode %.2g (relative logits)", name, dRef, dPre)
				// The reference gives the kernel's bits at every site, and the rest of the forward
				// pass is shared: the logits are equal. (A float reference would not do end to
				// end: a rounding difference moves an activation across an int8 rounding boundary
				// now and then, which changes the output by 1/254 of the row's absmax.)
				if dRef != 0 {
					t.Errorf("%s: pack and reference logits differ by %.3g (relative), want 0", name, dRef)
				}
				if dPre > 1e-5 {
					t.Errorf("%s: prefill and decode logits differ by %.3g (relative), want <= 1e-5", name, dPre)
				}
				prompt := toks[:4]
				got, want := greedyRun(t, m, p, nil, prompt, 16), greedyRun(t, m, p, ref, prompt, 16)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s: greedy tokens: pack %v, reference %v", name, got, want)
				}
			}
		})
	}
}

// TestTernaryPackThreadsNoAlloc: prefill and decode on a ternary pack allocate nothing and
// give the same logits on 1 and 3 threads; weighted scoring (column norms of the ternary
// weights) runs too.
func TestTernaryPackThreadsNoAlloc(t *testing.T) {
	path := ternaryPack(t, false)
	toks := []int{1, 400, 300, 200, 100, 50, 25, 12, 6, 3}
	var outs [2][]float32
	for i, th := range []int{1, 3} {
		m := loadPack(t, path, th)
		V := m.Spec.Vocab
		st := m.NewState(64)
		p := m.DefaultProfile.Clone()
		p.Scoring = model.ScoreWeighted
		if err := st.SetProfile(p); err != nil {
			t.Fatal(err)
		}
		all := make([]float32, len(toks)*V)
		one := make([]float32, V)
		f := func() {
			if err := st.Forward(toks, 0, all); err != nil {
				t.Fatal(err)
			}
			for j := range 4 {
				if err := st.Forward(toks[j:j+1], len(toks)+j, one); err != nil {
					t.Fatal(err)
				}
			}
		}
		f()
		outs[i] = append(append([]float32(nil), all...), one...)
		// a GC before each run: it empties sync.Pools, which once held the kernels' buffers
		// (an allocation now and then, a flaky CI failure)
		if a := testing.AllocsPerRun(5, func() { runtime.GC(); f() }); a != 0 {
			t.Errorf("%d threads: ternary forward made %v allocations", th, a)
		}
		// the column norms are those of the dequantized weights
		norms := m.ColumnNorms()
		for _, l := range []int{0, 4} {
			for site := model.AttnIn; site < model.NumSites; site++ {
				for _, c := range []int{0, 7, m.Spec.SiteDim(site) - 1} {
					var s float64
					for _, suffix := range model.SiteTensors(site) {
						w := m.W.Matrix(model.LayerName(l, suffix))
						for r := range w.Rows {
							s += float64(w.At(r, c)) * float64(w.At(r, c))
						}
					}
					if got := float64(norms[l][site][c]); math.Abs(got-math.Sqrt(s)) > 1e-6*math.Sqrt(s) {
						t.Fatalf("layer %d %s channel %d: norm %v, want %v", l, site, c, got, math.Sqrt(s))
					}
				}
			}
		}
	}
	for i := range outs[0] {
		if outs[0][i] != outs[1][i] {
			t.Fatalf("logit %d: 1 thread %v, 3 threads %v", i, outs[0][i], outs[1][i])
		}
	}
}

// rewritePack writes a copy of the pack at path with its tensors edited by edit (which may
// drop one by returning false) and returns the copy's path.
func rewritePack(t *testing.T, path string, edit func(w *gguf.WriteTensor) bool) string {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ts []gguf.WriteTensor
	for _, ti := range f.Tensors {
		w := gguf.WriteTensor{Name: ti.Name, Type: ti.Type, Shape: append([]uint64(nil), ti.Shape...), Data: ti.Data}
		if edit(&w) {
			ts = append(ts, w)
		}
	}
	var kv []gguf.KV
	for _, k := range f.KV {
		if k.Key != "general.alignment" {
			kv = append(kv, k)
		}
	}
	out := filepath.Join(t.TempDir(), "bad.gguf")
	if err := gguf.WriteFile(out, kv, ts, 4096); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTernaryPackErrors: a truncated or malformed ternary pack is a clear error naming the
// problem (wrapping the loader's sentinels), never a panic.
func TestTernaryPackErrors(t *testing.T) {
	path := ternaryPack(t, false)
	const codes, scales = "blk.2.ffn_down.tq8", "blk.2.ffn_down.tscale"
	// a truncated file: the last tensor's data is cut
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	last := f.Tensors[len(f.Tensors)-1]
	for _, ti := range f.Tensors {
		if strings.HasSuffix(ti.Name, ".tq8") {
			last = ti
		}
	}
	cut := f.DataOffset + last.Offset + uint64(len(last.Data))/2 // half of the last codes tensor
	f.Close()
	short := filepath.Join(t.TempDir(), "short.gguf")
	if err := os.WriteFile(short, data[:cut], 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path string
		want       error
		text       string
	}{
		{"truncated codes tensor", short, gguf.ErrTruncated, ""},
		{"codes tensor too short", rewritePack(t, path, func(w *gguf.WriteTensor) bool {
			if w.Name == codes {
				w.Shape[1]--
				w.Data = w.Data[:w.Shape[0]*w.Shape[1]]
			}
			return true
		}), model.ErrTensorShape, codes},
		{"codes of the wrong shape", rewritePack(t, path, func(w *gguf.WriteTensor) bool {
			if w.Name == codes {
				w.Shape = []uint64{w.Shape[0] * 2, w.Shape[1] / 2}
			}
			return true
		}), model.ErrTensorShape, codes},
		{"codes of the wrong type", rewritePack(t, path, func(w *gguf.WriteTensor) bool {
			if w.Name == codes {
				w.Type, w.Shape[0] = gguf.F16, w.Shape[0]/2
			}
			return true
		}), model.ErrTensorShape, codes},
		{"codes missing", rewritePack(t, path, func(w *gguf.WriteTensor) bool { return w.Name != codes }), model.ErrMissingTensor, codes},
		{"scales missing", rewritePack(t, path, func(w *gguf.WriteTensor) bool { return w.Name != scales }), model.ErrMissingTensor, scales},
		{"two scales", rewritePack(t, path, func(w *gguf.WriteTensor) bool {
			if w.Name == scales {
				w.Shape, w.Data = []uint64{2}, append(append([]byte(nil), w.Data...), w.Data...)
			}
			return true
		}), model.ErrTensorShape, scales},
		{"NaN scale", rewritePack(t, path, func(w *gguf.WriteTensor) bool {
			if w.Name == scales {
				w.Data = []byte{0, 0, 0xc0, 0x7f}
			}
			return true
		}), model.ErrTensorShape, scales},
	}
	for _, c := range cases {
		_, err := model.Load(c.path, model.LoadOptions{Threads: 1})
		if err == nil || !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: err = %v, want %v naming %q", c.name, err, c.want, c.text)
		}
		if _, err := model.Inspect(c.path); err == nil {
			t.Errorf("%s: inspect gave no error", c.name)
		}
	}
}
