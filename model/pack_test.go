package model

import (
	"bytes"
	"encoding/binary"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qsparse/qsparse/gguf"
	"github.com/qsparse/qsparse/internal/testenv"
	"github.com/qsparse/qsparse/sparse"
)

// writeTestPack writes stories260K as a qsparse fp16 pack file (FORMAT.md, layout f16-cols or
// f16-cols-stacked) with profile p, the way convert does, and returns its path. edit, when set,
// may change a site tensor before it is written.
func writeTestPack(t *testing.T, m *Model, layout string, p *Profile, edit func(*gguf.WriteTensor)) string {
	t.Helper()
	src, err := gguf.Open(testenv.Path(t, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var kv []gguf.KV
	for _, k := range src.KV {
		switch {
		case k.Key == "general.architecture" || k.Key == "general.alignment":
		case strings.HasPrefix(k.Key, "llama."):
			kv = append(kv, gguf.KV{Key: PackArch + strings.TrimPrefix(k.Key, "llama"), Value: k.Value})
		default:
			kv = append(kv, k)
		}
	}
	var prof bytes.Buffer
	if err := EncodeProfile(&prof, &m.Spec, p); err != nil {
		t.Fatal(err)
	}
	kv = append([]gguf.KV{gguf.String("general.architecture", PackArch)}, kv...)
	kv = append(kv, gguf.Uint32("qsparse.format_version", 1), gguf.String("qsparse.source_architecture", "llama"),
		gguf.String("qsparse.layout", layout), gguf.String("qsparse.profile", prof.String()))
	var ts []gguf.WriteTensor
	for _, ti := range src.Tensors {
		if _, _, site := m.Spec.siteMatrixRows(ti.Name); site {
			continue
		}
		ts = append(ts, gguf.WriteTensor{Name: ti.Name, Type: ti.Type, Shape: ti.Shape, Data: ti.Data})
	}
	for l := range m.Spec.NLayers {
		for site := AttnIn; site < NumSites; site++ {
			// the pack tensors of the site: one per matrix, or (stacked) one of all its rows
			var groups [][]string
			for _, sm := range siteTable[site] {
				groups = append(groups, []string{LayerName(l, sm.suffix)})
			}
			if pn, stack, ok := m.Spec.PackStack(groups[0][0]); ok && layout == PackF16ColsStacked {
				groups = [][]string{append([]string{pn}, stack...)}
			} else {
				for i := range groups {
					groups[i] = []string{packName(groups[i][0], suffixF16Cols), groups[i][0]}
				}
			}
			for _, g := range groups {
				var rm []uint16
				rows, cols := 0, 0
				for _, name := range g[1:] {
					w := m.W.Matrix(name)
					for r := range w.Rows {
						for c := range w.Cols {
							rm = append(rm, sparse.F32ToF16(w.At(r, c)))
						}
					}
					rows, cols = rows+w.Rows, w.Cols
				}
				pk, err := sparse.PackF16Cols(rm, rows, cols)
				if err != nil {
					t.Fatal(err)
				}
				data := make([]byte, 2*len(pk.Data))
				for i, v := range pk.Data {
					binary.LittleEndian.PutUint16(data[2*i:], v)
				}
				wt := gguf.WriteTensor{Name: g[0], Type: gguf.F16, Shape: []uint64{uint64(pk.Stride), uint64(pk.Cols)}, Data: data}
				if edit != nil {
					edit(&wt)
				}
				ts = append(ts, wt)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "stories.qsparse.gguf")
	if err := gguf.WriteFile(path, kv, ts, 4096); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPackFile: a pack file of either fp16 layout loads in place (site matrices are views of
// the mapping; f16-cols-stacked holds q/k/v and gate/up stacked as Layer.QKV and GateUp),
// carries its profile, and runs exactly as the in-memory column-major model, dense and sparse.
func TestPackFile(t *testing.T) {
	mem := loadStories(t, LoadOptions{Layout: LoadCols, Threads: 2})
	prof, err := UniformProfile(&mem.Spec, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	for _, layout := range []string{PackF16Cols, PackF16ColsStacked} {
		t.Run(layout, func(t *testing.T) {
			stacked := layout == PackF16ColsStacked
			path := writeTestPack(t, mem, layout, prof, nil)
			pk, err := Load(path, LoadOptions{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer pk.Close()
			L := &pk.W.Layers[1]
			if pk.Format != "qsparse-pack" || pk.Layout != LoadCols || pk.Spec.Arch != "llama" || (L.QKV != nil) != stacked ||
				(L.GateUp != nil) != stacked || L.Up.Layout() != LayoutF16Cols {
				t.Fatalf("pack: format %s layout %s arch %s, stacked %v %v", pk.Format, pk.Layout, pk.Spec.Arch, L.QKV != nil, L.GateUp != nil)
			}
			if stacked && (L.K.Pack != L.QKV.Pack || L.K.PackRow != pk.Spec.QDim() || L.Up.PackRow != pk.Spec.FFNDim) {
				t.Fatalf("stacked pack: k at row %d, up at row %d", L.K.PackRow, L.Up.PackRow)
			}
			if pk.DefaultProfile == nil || pk.DefaultProfile.Keep[2] != prof.Keep[2] {
				t.Fatalf("pack default profile %+v, want %+v", pk.DefaultProfile, prof)
			}
			if _, err := Load(path, LoadOptions{Layout: LoadRows}); err == nil {
				t.Error("pack with layout rows: no error")
			}
			toks := mem.Tok.Encode("Once upon a time, there was a little", true, false)
			for _, p := range []*Profile{nil, prof} {
				var outs [2][][]float32
				for i, m := range []*Model{mem, pk} {
					st := m.NewState(64)
					if err := st.SetProfile(p); err != nil {
						t.Fatal(err)
					}
					all := make([]float32, len(toks)*m.Spec.Vocab)
					if err := st.Forward(toks, 0, all); err != nil {
						t.Fatal(err)
					}
					_, dec := decodeRun(t, st, toks[:3], 12, nil)
					outs[i] = append(dec, all)
				}
				for j := range outs[0] {
					for k := range outs[0][j] {
						if math.Float32bits(outs[0][j][k]) != math.Float32bits(outs[1][j][k]) {
							t.Fatalf("profile %v: output %d logit %d: in memory %v, pack %v", p != nil, j, k, outs[0][j][k], outs[1][j][k])
						}
					}
				}
			}
			// a pack tensor of the wrong stride is a clear error
			for _, name := range []string{"blk.1.ffn_down.f16cols", map[bool]string{false: "blk.1.attn_v.f16cols", true: "blk.1.attn_qkv.f16cols"}[stacked]} {
				bad := writeTestPack(t, mem, layout, prof, func(w *gguf.WriteTensor) {
					if w.Name == name {
						w.Shape = []uint64{w.Shape[0] / 2, w.Shape[1] * 2}
					}
				})
				if _, err := Load(bad, LoadOptions{}); err == nil || !strings.Contains(err.Error(), name) {
					t.Errorf("bad pack: err = %v, want one naming %s", err, name)
				}
			}
		})
	}
}
