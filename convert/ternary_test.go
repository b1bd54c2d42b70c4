package convert

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/qsparse/qsparse/gguf"
	"github.com/qsparse/qsparse/sparse"
)

func TestTernaryPackExact(t *testing.T) {
	const rows, cols = 70, 9
	trit := func(r, c int) float32 { return float32((r*7+c*3)%3 - 1) }
	for _, perCol := range []bool{false, true} {
		w := make([]float32, rows*cols)
		scale := func(c int) float32 {
			if perCol {
				return 0.01 * float32(c+1)
			}
			return 0.25
		}
		for r := 0; r < rows; r++ {
			for c := 0; c < cols; c++ {
				w[r*cols+c] = trit(r, c) * scale(c)
			}
		}
		p, exact, err := TernaryPack(w, rows, cols, false)
		if err != nil || !exact {
			t.Fatalf("perCol %v: exact %v, %v", perCol, exact, err)
		}
		if want := map[bool]int{false: 1, true: cols}[perCol]; len(p.Scale) != want {
			t.Errorf("perCol %v: %d scales", perCol, len(p.Scale))
		}
		for r := 0; r < rows; r++ {
			for c := 0; c < cols; c++ {
				if p.At(r, c) != w[r*cols+c] {
					t.Fatalf("perCol %v: W[%d][%d] = %g, want %g", perCol, r, c, p.At(r, c), w[r*cols+c])
				}
			}
		}
	}
	// Not ternary: absmean quantization, as sparse.QuantizeTernary.
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(math.Sin(float64(i)))
	}
	for _, perCol := range []bool{false, true} {
		p, exact, err := TernaryPack(w, rows, cols, perCol)
		q, _ := sparse.QuantizeTernary(w, rows, cols, perCol)
		if err != nil || exact || !slices.Equal(p.Planes, q.Planes) || !slices.Equal(p.Scale, q.Scale) {
			t.Errorf("perCol %v: exact %v err %v, or differs from QuantizeTernary", perCol, exact, err)
		}
	}
}

// TestTernaryConvert: a ternary pack's codes and scales are exactly TernaryQ8FromCols of
// QuantizeTernary of the weights; the full-precision stories model gets the warning; the
// dequantized ternary model written back as F32 is detected as ternary and packs to the same
// bytes with the same perplexity.
func TestTernaryConvert(t *testing.T) {
	src := stories(t)
	dir := t.TempDir()
	for _, perCol := range []bool{false, true} {
		out := filepath.Join(dir, "t.gguf")
		res := run(t, Options{Model: src, Format: FormatTernary, Out: out, PerColumn: perCol})
		t.Logf("perColumn %v: check-text PPL %.3f -> %.3f, exact %d/%d, warning %q", perCol, res.SourcePPL, res.TernaryPPL, res.Exact, res.Matrices, res.Warning)
		if res.Exact != 0 || res.Matrices != 35 || !(res.SourcePPL > 1) || !(res.TernaryPPL > 1) {
			t.Errorf("result %+v", res)
		}
		if (res.TernaryPPL > WreckFactor*res.SourcePPL) != (res.Warning != "") {
			t.Errorf("warning %q for PPL %g -> %g", res.Warning, res.SourcePPL, res.TernaryPPL)
		}
		f := openGGUF(t, out)
		if s, _ := f.String(KeyLayout); s != LayoutTernary {
			t.Errorf("layout %q", s)
		}
		if v, ok := f.Float(KeyTernaryPPL); !ok || float32(v) != float32(res.TernaryPPL) {
			t.Errorf("%s = %v", KeyTernaryPPL, v)
		}
		m := load(t, src, "f32")
		for _, ts := range m.Spec.Tensors() {
			if !isSiteMatrix(ts.Name) {
				continue
			}
			w := m.W.Matrix(ts.Name)
			q, _ := sparse.QuantizeTernary(w.F32, w.Rows, w.Cols, perCol)
			q8, _ := sparse.TernaryQ8FromCols(q)
			codes, ok1 := f.Tensor(PackTensorName(ts.Name, SuffixTQ8))
			scale, ok2 := f.Tensor(PackTensorName(ts.Name, SuffixTScale))
			if !ok1 || !ok2 || codes.Type != gguf.I8 || scale.Type != gguf.F32 ||
				!slices.Equal(codes.Shape, []uint64{uint64(q8.ColBytes()), uint64(q8.Cols)}) ||
				string(codes.Data) != string(q8.Codes) || !slices.Equal(f32s(scale.Data), q8.Scale) {
				t.Fatalf("%s: ternary pack differs", ts.Name)
			}
		}
		if perCol {
			continue
		}
		// Write the ternarized model as F32 and convert it again: exact.
		tern, err := ternarize(context.Background(), m, false, sampleText)
		if err != nil {
			t.Fatal(err)
		}
		general, tok, err := sourceMeta(src, &m.Spec, m.ChatTemplate)
		if err != nil {
			t.Fatal(err)
		}
		kv, tensors, err := exportFile(modelSource{m}, &m.Spec, general, tok, FormatGGUFF32)
		if err != nil {
			t.Fatal(err)
		}
		tf := filepath.Join(dir, "ternarized-f32.gguf")
		if err := gguf.WriteFileParallel(context.Background(), tf, kv, tensors, 0, gguf.ParallelOptions{}); err != nil {
			t.Fatal(err)
		}
		out2 := filepath.Join(dir, "t2.gguf")
		res2 := run(t, Options{Model: tf, Format: FormatTernary, Out: out2})
		if res2.Exact != res2.Matrices || res2.Warning != "" || math.Abs(res2.SourcePPL-res2.TernaryPPL) > 1e-9*res2.SourcePPL ||
			math.Abs(res2.SourcePPL-tern.ternaryPPL) > 1e-4*res2.SourcePPL {
			t.Errorf("already-ternary model: %+v (ternarized PPL %g)", res2, tern.ternaryPPL)
		}
		f2 := openGGUF(t, out2)
		for _, ti := range f.Tensors {
			t2, ok := f2.Tensor(ti.Name)
			if !ok {
				t.Fatalf("%s missing", ti.Name)
			}
			if len(ti.Name) > 4 && (ti.Name[len(ti.Name)-4:] == ".tq8") && string(t2.Data) != string(ti.Data) {
				t.Errorf("%s: exact repack differs", ti.Name)
			}
		}
	}
}
