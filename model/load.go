package model

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sync/errgroup"

	"github.com/qsparse/qsparse/sparse"
	"github.com/qsparse/qsparse/tokenizer"
)

// LoadOptions configures Load.
type LoadOptions struct {
	// WeightType is the compute dtype of the weight matrices: "auto" or "" (F32 sources stay F32,
	// anything else becomes F16), "f32" or "f16". Norms and biases are always F32.
	WeightType string
	Threads    int // worker threads for loading and the forward pass; <= 0: runtime.NumCPU()
	Ctx        int // default KV cache size of NewState(0); <= 0: min(Spec.CtxLen, 4096)
	// Layout of the site matrices (q, k, v, o, gate, up, down): "rows" (or "" / "auto":
	// row-major in the weight type) or "cols" (column-major fp16 packs, sparse.F16Cols, q/k/v
	// stacked in one pack and gate/up in another). One copy either way: on "cols" sparse decode
	// reads only the active columns, dense decode runs the same kernel over all columns and
	// prefill transposes L2-sized blocks for the GEMM (sparse.Pool.GemmF16Cols). "cols" needs
	// fp16 site weights (WeightType auto or f16). Embeddings and the LM head stay row-major.
	Layout string
}

// Layouts of LoadOptions.Layout.
const (
	LoadRows = "rows"
	LoadCols = "cols"
)

// Model is a loaded model: its Spec, tokenizer and weights in canonical layout.
type Model struct {
	Spec         Spec
	Tok          *tokenizer.Tokenizer
	ChatTemplate string // Jinja chat template of the checkpoint ("" if none)
	W            Weights
	WeightType   string // "f32" or "f16"
	Format       string // "gguf" or "safetensors"
	Path         string

	Layout string // site matrices: LoadRows or LoadCols (see LoadOptions.Layout)
	// DefaultProfile is the sparsity profile a pack file carries (qsparse.profile), validated
	// against Spec; nil when none. run, eval and bench use it unless told otherwise.
	DefaultProfile *Profile
	// HugePages reports whether a pack file's mapping is backed by 2 MiB pages
	// (gguf.File.HugePages); false for other sources, whose weights are copied to memory.
	HugePages bool

	src source // the open checkpoint when weights are views of its mapping (pack files); closed by Close

	pool    *sparse.Pool
	ctx     int
	iota    []int32   // 0, 1, 2, ...: the active channels of a dense site on a column-major pack
	invFreq []float64 // RoPE inverse frequency of each rotation pair

	normsOnce sync.Once
	norms     [][NumSites][]float32 // see ColumnNorms
}

// SiteLayout returns the storage layout of the site matrices (Matrix.Layout): LayoutF32 or
// LayoutF16 (layout rows), LayoutF16Cols (layout cols, fp16 pack files) or LayoutTernaryQ8
// (ternary pack files).
func (m *Model) SiteLayout() string {
	if len(m.W.Layers) == 0 || m.W.Layers[0].Q == nil {
		return ""
	}
	return m.W.Layers[0].Q.Layout()
}

// Pool returns the model's thread pool (shared by its States).
func (m *Model) Pool() *sparse.Pool { return m.pool }

// DenseBytesPerToken returns the weight bytes one decoded token reads with the loaded weights:
// every layer matrix, norm and bias, the final norm and the LM head (see Info).
func (m *Model) DenseBytesPerToken() int64 {
	n := m.W.Output.Bytes() + int64(len(m.W.OutputNorm))*4
	for i := range m.W.Layers {
		L := &m.W.Layers[i]
		for _, w := range []*Matrix{L.Q, L.K, L.V, L.O, L.Gate, L.Up, L.Down} {
			n += w.Bytes()
		}
		n += 4 * int64(len(L.AttnNorm)+len(L.FFNNorm)+len(L.QBias)+len(L.KBias)+len(L.VBias))
	}
	return n
}

// Close stops the model's worker threads and, when its weights are mapped from the file (pack
// files), unmaps it. The model must not be used afterwards.
func (m *Model) Close() error {
	if m.pool != nil {
		m.pool.Close()
		m.pool = nil
	}
	if m.src != nil {
		err := m.src.close()
		m.src = nil
		if err != nil {
			return fmt.Errorf("model %s: closing %s: %w", m.Spec.Name, m.Path, err)
		}
	}
	return nil
}

// source is an opened checkpoint: a GGUF file or an HF folder, seen under canonical names.
type source interface {
	spec() *Spec
	shape(name string) ([]int, bool) // outermost first
	isF32(name string) bool          // stored as float32
	// rows converts rows [r0, r0+n) of tensor name (a 1-D tensor is one row) to float32 in dst.
	rows(name string, dst []float32, r0, n int) error
	// f16Rows returns the raw little-endian bytes of rows [r0, r0+n) when the tensor is stored
	// as IEEE fp16 (ok false otherwise).
	f16Rows(name string, r0, n int) (raw []byte, ok bool)
	// release drops the mapped pages holding rows [r0, r0+n) of tensor name from the process's
	// resident set once they have been converted (they stay readable; see gguf.File.Release).
	// A pack's column-major site matrix is released whole: any of its rows spans all its pages.
	// It returns the bytes of those rows (a pack's: their values, padding excluded).
	release(name string, r0, n int) int
	// permutedQK reports whether q/k rows are stored in llama.cpp's permuted layout.
	permutedQK() bool
	vocab() (*tokenizer.Vocab, string, error) // tokenizer vocabulary and chat template
	close() error
}

func openSource(path string) (source, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if st.IsDir() {
		return openHF(path)
	}
	return openGGUF(path)
}

// Load reads a GGUF file or a Hugging Face folder, validates it and converts every weight once
// to the compute dtype (q/k rows un-permuted for GGUF arch llama).
func Load(path string, opts LoadOptions) (*Model, error) {
	src, err := openSource(path)
	if err != nil {
		return nil, err
	}
	return load(src, path, opts)
}

// load is Load from an opened source, which it closes unless the Model keeps it.
func load(src source, path string, opts LoadOptions) (*Model, error) {
	owned := false // the Model keeps src (pack files: its tensors are views of the mapping)
	defer func() {
		if !owned {
			src.close()
		}
	}()
	sp := src.spec()
	gs, _ := src.(*ggufSource)
	pack := gs != nil && gs.pack != ""
	if err := sp.checkTensors(src.shape); err != nil {
		return nil, err
	}
	threads := opts.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	wt := strings.ToLower(opts.WeightType)
	switch wt {
	case "", "auto":
		wt = "f32"
		for _, t := range sp.Tensors() {
			if t.Matrix && !src.isF32(t.Name) {
				wt = "f16"
				break
			}
		}
	case "f32", "f16":
	default:
		return nil, errorf(ErrUnsupported, "model %s: weight type %q is not supported (want auto, f32 or f16)", sp.Name, opts.WeightType)
	}

	layout := strings.ToLower(opts.Layout)
	switch {
	case pack && layout == LoadRows:
		return nil, fmt.Errorf("model %s: %s is a qsparse pack file: its site weights are column-major (load it with layout cols or auto)", sp.Name, path)
	case pack:
		layout = LoadCols
	}
	switch layout {
	case "", "auto", LoadRows:
		layout = LoadRows
	case LoadCols:
		if wt == "f32" {
			if w := strings.ToLower(opts.WeightType); w == "f32" && pack {
				return nil, errorf(ErrUnsupported, "model %s: %s is a qsparse pack (%s site weights), weight type f32 was asked for (use f16 or auto)", sp.Name, path, gs.pack)
			} else if w == "f32" {
				return nil, fmt.Errorf("model %s: layout cols packs the site weights as fp16, but weight type f32 was asked for (use f16 or auto)", sp.Name)
			}
			wt = "f16"
		}
	default:
		return nil, fmt.Errorf("model %s: layout %q is not supported (want rows, cols or auto)", sp.Name, opts.Layout)
	}

	tok, tmpl, err := loadTokenizer(src)
	if err != nil {
		return nil, err
	}

	m := &Model{Spec: *sp, Tok: tok, ChatTemplate: tmpl, WeightType: wt, Layout: layout, Path: path, ctx: opts.Ctx}
	m.iota = siteIota(sp)
	switch {
	case pack:
		m.Format = "qsparse-pack"
	case gs != nil:
		m.Format = "gguf"
	default:
		m.Format = "safetensors"
	}
	if err := m.loadWeights(src, threads); err != nil {
		return nil, err
	}
	if pack {
		if m.DefaultProfile, err = gs.packProfile(); err != nil {
			return nil, err
		}
		m.src, owned = src, true
		// decode reads the pack's active columns all over its mapping: 2 MiB pages (one TLB
		// entry each) measured 7 % faster than 4 KiB ones (see gguf.File.HugePages)
		m.HugePages = gs.f.HugePages()
	}
	if m.invFreq, err = ropeInvFreq(&m.Spec, m.W.RopeFreqs); err != nil {
		return nil, err
	}
	m.pool = sparse.NewPool(threads)
	return m, nil
}

// siteIota returns 0, 1, 2, ... up to the widest site input of sp: the index set of a dense
// site on a column-major pack.
func siteIota(sp *Spec) []int32 {
	v := make([]int32, max(sp.Dim, sp.QDim(), sp.FFNDim))
	for i := range v {
		v[i] = int32(i)
	}
	return v
}

// loadTokenizer builds the source's tokenizer and returns it with the chat template.
func loadTokenizer(src source) (*tokenizer.Tokenizer, string, error) {
	sp := src.spec()
	voc, tmpl, err := src.vocab()
	if err != nil {
		return nil, "", err
	}
	tok, err := tokenizer.New(voc)
	if err != nil {
		return nil, "", fmt.Errorf("model %s: tokenizer: %w", sp.Name, err)
	}
	if tok.NVocab() > sp.Vocab {
		return nil, "", errorf(ErrVocabMismatch, "model %s: tokenizer has %d tokens but the embedding only %d rows", sp.Name, tok.NVocab(), sp.Vocab)
	}
	return tok, tmpl, nil
}

// convJob converts rows [r0, r0+n) of one tensor into its destination.
type convJob struct {
	name    string
	dst     *Matrix
	r0, n   int
	permute bool // map GGUF row r to HF row ggufRowToHF(r, HeadDim)
}

func (m *Model) loadWeights(src source, threads int) error {
	sp := &m.Spec
	f16 := m.WeightType == "f16"
	var jobs []convJob
	const chunkElems = 1 << 16
	// view returns rows [r0, r0+rows) of m as a Matrix sharing its storage.
	view := func(m *Matrix, r0, rows int) *Matrix {
		v := &Matrix{Rows: rows, Cols: m.Cols}
		if m.Pack != nil {
			v.Pack, v.PackRow = m.Pack, m.PackRow+r0
		} else if m.F16 != nil {
			v.F16 = m.F16[r0*m.Cols : (r0+rows)*m.Cols]
		} else {
			v.F32 = m.F32[r0*m.Cols : (r0+rows)*m.Cols]
		}
		return v
	}
	var ar arena
	packs := m.Layout == LoadCols
	// pack returns a rows×cols column-major fp16 matrix (zero padding rows included).
	pack := func(rows, cols int) *Matrix {
		stride := (rows + sparse.PadRows - 1) / sparse.PadRows * sparse.PadRows
		p := &sparse.F16Cols{Rows: rows, Cols: cols, Stride: stride, Data: ar.f16(cols * stride)}
		return &Matrix{Rows: rows, Cols: cols, Pack: p}
	}
	alloc := func(rows, cols int) *Matrix {
		w := &Matrix{Rows: rows, Cols: cols}
		if f16 {
			w.F16 = ar.f16(rows * cols)
		} else {
			w.F32 = ar.f32(rows * cols)
		}
		return w
	}
	// fill queues the conversion of tensor name into w.
	fill := func(name string, w *Matrix, permute bool) *Matrix {
		rows, cols := w.Rows, w.Cols
		step := max(1, chunkElems/cols)
		for r := 0; r < rows; r += step {
			jobs = append(jobs, convJob{name, w, r, min(step, rows-r), permute})
		}
		return w
	}
	// A pack file's row-major F16 tensors (embedding, LM head) are views of its mapping, as its
	// site packs are: no copy, so the process holds the file's pages once.
	gs, _ := src.(*ggufSource)
	inPlace := gs != nil && gs.pack != "" && f16
	// Every other source is read once: each converted chunk's mapped pages are released, so the
	// source's pages do not pile up in the resident set beside the converted copy (an F32
	// checkpoint is twice the size of its fp16 copy).
	release := gs == nil || gs.pack == ""
	mat := func(name string, rows, cols int, permute bool) *Matrix {
		if inPlace && !permute {
			if raw, ok := src.f16Rows(name, 0, rows); ok && len(raw) == 2*rows*cols &&
				uintptr(unsafe.Pointer(unsafe.SliceData(raw)))%2 == 0 {
				return &Matrix{Rows: rows, Cols: cols, F16: unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(raw))), rows*cols)}
			}
		}
		return fill(name, alloc(rows, cols), permute)
	}
	vec := func(name string, n int) ([]float32, error) {
		v := make([]float32, n)
		if err := src.rows(name, v, 0, 1); err != nil {
			return nil, fmt.Errorf("model %s: %w", sp.Name, err)
		}
		if release {
			src.release(name, 0, 1)
		}
		return v, nil
	}
	var err error
	W := &m.W
	W.TokEmbd = mat(NameTokEmbd, sp.Vocab, sp.Dim, false)
	if W.OutputNorm, err = vec(NameOutputNorm, sp.Dim); err != nil {
		return err
	}
	W.Output = W.TokEmbd
	if !sp.TiedEmbeddings {
		W.Output = mat(NameOutput, sp.Vocab, sp.Dim, false)
	}
	if sh, ok := src.shape(NameRopeFreqs); ok {
		if len(sh) != 1 || sh[0] != sp.HeadDim/2 {
			return errorf(ErrTensorShape, "model %s: tensor %s has shape %v, want [%d]", sp.Name, NameRopeFreqs, sh, sp.HeadDim/2)
		}
		if W.RopeFreqs, err = vec(NameRopeFreqs, sh[0]); err != nil {
			return err
		}
	}
	perm := src.permutedQK()
	W.Layers = make([]Layer, sp.NLayers)
	for l := range W.Layers {
		L := &W.Layers[l]
		n := func(s string) string { return LayerName(l, s) }
		// q, k, v are stacked in one allocation (L.QKV), gate and up in another (L.GateUp).
		// With layout cols they are column-major packs (one pack per stack).
		q, kv := sp.QDim(), sp.KVDim()
		if gs, ok := src.(*ggufSource); ok && gs.pack != "" {
			// pack file: the packs are mapped in place; layout f16-cols-stacked holds q/k/v and
			// gate/up stacked (L.QKV, L.GateUp), the others one pack per matrix
			if L.QKV = gs.siteStack(l, AttnIn); L.QKV != nil {
				L.Q, L.K, L.V = view(L.QKV, 0, q), view(L.QKV, q, kv), view(L.QKV, q+kv, kv)
			} else {
				L.Q, L.K, L.V = gs.packMatrix(n(AttnQ)), gs.packMatrix(n(AttnK)), gs.packMatrix(n(AttnV))
			}
			if L.GateUp = gs.siteStack(l, MLPIn); L.GateUp != nil {
				L.Gate, L.Up = view(L.GateUp, 0, sp.FFNDim), view(L.GateUp, sp.FFNDim, sp.FFNDim)
			} else {
				L.Gate, L.Up = gs.packMatrix(n(FFNGate)), gs.packMatrix(n(FFNUp))
			}
			L.O, L.Down = gs.packMatrix(n(AttnOutput)), gs.packMatrix(n(FFNDown))
		} else {
			salloc := alloc
			if packs {
				salloc = pack
			}
			L.QKV = salloc(q+2*kv, sp.Dim)
			L.Q = fill(n(AttnQ), view(L.QKV, 0, q), perm)
			L.K = fill(n(AttnK), view(L.QKV, q, kv), perm)
			L.V = fill(n(AttnV), view(L.QKV, q+kv, kv), false)
			L.O = fill(n(AttnOutput), salloc(sp.Dim, sp.QDim()), false)
			L.GateUp = salloc(2*sp.FFNDim, sp.Dim)
			L.Gate = fill(n(FFNGate), view(L.GateUp, 0, sp.FFNDim), false)
			L.Up = fill(n(FFNUp), view(L.GateUp, sp.FFNDim, sp.FFNDim), false)
			L.Down = fill(n(FFNDown), salloc(sp.Dim, sp.FFNDim), false)
		}
		if L.AttnNorm, err = vec(n(AttnNorm), sp.Dim); err != nil {
			return err
		}
		if L.FFNNorm, err = vec(n(FFNNorm), sp.Dim); err != nil {
			return err
		}
		if sp.QKVBias {
			if L.QBias, err = vec(n(AttnQBias), sp.QDim()); err != nil {
				return err
			}
			if L.KBias, err = vec(n(AttnKBias), sp.KVDim()); err != nil {
				return err
			}
			if L.VBias, err = vec(n(AttnVBias), sp.KVDim()); err != nil {
				return err
			}
			if perm {
				L.QBias = unpermuteRows(L.QBias, 1, sp.HeadDim)
				L.KBias = unpermuteRows(L.KBias, 1, sp.HeadDim)
			}
		}
	}

	// Convert all matrices in row chunks on `threads` workers, each with one scratch chunk.
	var next atomic.Int64
	var g errgroup.Group
	for range threads {
		g.Go(func() error {
			buf := make([]float32, chunkElems+sp.Dim+sp.FFNDim)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(jobs) {
					return nil
				}
				j := &jobs[i]
				if err := convert(src, j, buf, sp.HeadDim); err != nil {
					next.Store(int64(len(jobs))) // stop the other workers
					return err
				}
				if release {
					src.release(j.name, j.r0, j.n)
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("model %s: %w", sp.Name, err)
	}
	return nil
}

// convert runs one conversion job with scratch buf.
func convert(src source, j *convJob, buf []float32, headDim int) error {
	cols := j.dst.Cols
	if p := j.dst.Pack; p != nil {
		return convertPack(src, j, p, buf, headDim)
	}
	if j.dst.F16 != nil {
		// F16 source to F16 weights: copy the bits, no conversion.
		if raw, ok := src.f16Rows(j.name, j.r0, j.n); ok {
			for i := range j.n {
				r := j.r0 + i
				if j.permute {
					r = ggufRowToHF(r, headDim)
				}
				dst := j.dst.F16[r*cols : (r+1)*cols]
				b := raw[i*cols*2 : (i+1)*cols*2]
				for c := range dst {
					dst[c] = binary.LittleEndian.Uint16(b[2*c:])
				}
			}
			return nil
		}
	}
	tmp := buf[:j.n*cols]
	if err := src.rows(j.name, tmp, j.r0, j.n); err != nil {
		return err
	}
	for i := range j.n {
		r := j.r0 + i
		if j.permute {
			r = ggufRowToHF(r, headDim)
		}
		in := tmp[i*cols : (i+1)*cols]
		if j.dst.F16 != nil {
			sparse.F32ToF16Slice(j.dst.F16[r*cols:(r+1)*cols], in)
		} else {
			copy(j.dst.F32[r*cols:(r+1)*cols], in)
		}
	}
	return nil
}

// convertPack is convert into a column-major pack: row r of the tensor goes to pack row
// PackRow+r, i.e. element (r, c) to Data[c*Stride+PackRow+r].
func convertPack(src source, j *convJob, p *sparse.F16Cols, buf []float32, headDim int) error {
	cols := j.dst.Cols
	dstRow := func(i int) int {
		r := j.r0 + i
		if j.permute {
			r = ggufRowToHF(r, headDim)
		}
		return j.dst.PackRow + r
	}
	if raw, ok := src.f16Rows(j.name, j.r0, j.n); ok {
		for i := range j.n {
			r := dstRow(i)
			b := raw[i*cols*2 : (i+1)*cols*2]
			for c := range cols {
				p.Data[c*p.Stride+r] = binary.LittleEndian.Uint16(b[2*c:])
			}
		}
		return nil
	}
	tmp := buf[:j.n*cols]
	if err := src.rows(j.name, tmp, j.r0, j.n); err != nil {
		return err
	}
	for i := range j.n {
		r := dstRow(i)
		for c, v := range tmp[i*cols : (i+1)*cols] {
			p.Data[c*p.Stride+r] = sparse.F32ToF16(v)
		}
	}
	return nil
}
