package model

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/qsparse/qsparse/gguf"
	"github.com/qsparse/qsparse/tokenizer"
)

// Inspect describes a GGUF file or a Hugging Face folder without reading tensor data: the Spec,
// the tensor table, parameter count, tokenizer kind and size, chat template presence and
// DenseBytesPerToken.
func Inspect(path string) (*Info, error) {
	src, err := openSource(path)
	if err != nil {
		return nil, err
	}
	defer src.close()
	sp := src.spec()
	info := &Info{Path: path, Spec: *sp}
	switch s := src.(type) {
	case *ggufSource:
		info.Format = "gguf"
		s.describe(info)
	case *hfSource:
		info.Format = "safetensors"
		if err := s.describe(info); err != nil {
			return nil, err
		}
	}
	// Dense bytes per token in the default ("auto") compute dtype.
	elem := int64(4)
	for _, t := range sp.Tensors() {
		if t.Matrix && !src.isF32(t.Name) {
			elem = 2
		}
	}
	gs, _ := src.(*ggufSource)
	if gs != nil {
		info.Layout = gs.pack
	}
	for _, t := range sp.Tensors() {
		if t.Name == NameTokEmbd && !sp.TiedEmbeddings {
			continue // only a row lookup
		}
		n := int64(1)
		for _, d := range t.Shape {
			n *= int64(d)
		}
		if _, _, site := sp.siteMatrixRows(t.Name); site && gs != nil && gs.pack == PackTernQ8 {
			info.DenseBytesPerToken += gs.ternaryBytes(t.Name) // codes and scales as stored
			continue
		}
		if t.Matrix {
			info.DenseBytesPerToken += n * elem
		} else {
			info.DenseBytesPerToken += n * 4
		}
	}
	if gs == nil || gs.pack == "" {
		info.Problems = sp.problems(src.shape, info.Tensors, info.VocabSize)
	}
	return info, nil
}

// ggufSource is an opened GGUF file.
type ggufSource struct {
	f    *gguf.File
	sp   Spec
	perm bool
	pack string // pack files (PackArch): the site matrices' layout (PackF16Cols); "" otherwise
}

func openGGUF(path string) (*ggufSource, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	s := &ggufSource{f: f}
	if err := s.readSpec(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func (s *ggufSource) readSpec() error {
	f := s.f
	arch, ok := f.String("general.architecture")
	if !ok {
		return errorf(ErrUnsupportedArch, "model %s: no general.architecture key: not a model GGUF", f.Path)
	}
	keyArch := arch // prefix of the hyper-parameter keys
	if arch == PackArch {
		var err error
		if arch, s.pack, err = packArch(f); err != nil {
			return err
		}
	}
	a, err := ggufArch(arch)
	if err != nil {
		return fmt.Errorf("model %s: %w", f.Path, err)
	}
	s.perm = a.permuted && s.pack == "" // pack files hold q/k rows in the HF order
	sp := &s.sp
	sp.Arch = arch
	sp.Name, _ = f.String("general.name")
	if sp.Name == "" {
		sp.Name = f.Path
	}
	var errs []error
	geti := func(key string, def int, required bool) int {
		v, ok := f.Lookup(keyArch + "." + key)
		if !ok {
			if required {
				errs = append(errs, errorf(ErrBadSpec, "model %s: key %s.%s missing", sp.Name, keyArch, key))
			}
			return def
		}
		u, ok := v.Uint()
		if !ok || u > math.MaxInt32 {
			errs = append(errs, errorf(ErrBadSpec, "model %s: key %s.%s = %v is not a usable integer (per-layer arrays are not supported)", sp.Name, keyArch, key, v))
			return def
		}
		return int(u)
	}
	getf := func(key string, def float64) float64 {
		v, ok := f.Lookup(keyArch + "." + key)
		if !ok {
			return def
		}
		x, ok := v.Float()
		if !ok {
			errs = append(errs, errorf(ErrBadSpec, "model %s: key %s.%s = %v is not a number", sp.Name, keyArch, key, v))
			return def
		}
		if v.Type() == gguf.ValueFloat32 {
			// The shortest decimal of the float32 (1e-05, not 9.999999747e-06), as the HF config says.
			x, _ = strconv.ParseFloat(strconv.FormatFloat(x, 'g', -1, 32), 64)
		}
		return x
	}
	sp.Dim = geti("embedding_length", 0, true)
	sp.NLayers = geti("block_count", 0, true)
	sp.NHeads = geti("attention.head_count", 0, true)
	sp.NKVHeads = geti("attention.head_count_kv", sp.NHeads, false)
	sp.FFNDim = geti("feed_forward_length", 0, true)
	sp.CtxLen = geti("context_length", 0, false)
	if sp.NHeads > 0 {
		sp.HeadDim = geti("attention.key_length", sp.Dim/sp.NHeads, false)
		if vl := geti("attention.value_length", sp.HeadDim, false); vl != sp.HeadDim {
			errs = append(errs, errorf(ErrUnsupported, "model %s: value length %d differs from key length %d (not supported)", sp.Name, vl, sp.HeadDim))
		}
		if rd := geti("rope.dimension_count", sp.HeadDim, false); rd != sp.HeadDim {
			errs = append(errs, errorf(ErrUnsupported, "model %s: partial RoPE (%d of %d dims) is not supported", sp.Name, rd, sp.HeadDim))
		}
	}
	sp.RopeTheta = getf("rope.freq_base", 10000)
	sp.NormEps = getf("attention.layer_norm_rms_epsilon", 1e-5)
	if t, ok := f.String(keyArch + ".rope.scaling.type"); ok && t != "none" {
		sp.RopeScaling.Type = t
		sp.RopeScaling.Factor = getf("rope.scaling.factor", 0)
		sp.RopeScaling.OrigCtxLen = geti("rope.scaling.original_context_length", 0, false)
	} else if lin := getf("rope.scale_linear", 0); lin != 0 && lin != 1 {
		sp.RopeScaling = RopeScaling{Type: "linear", Factor: lin}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	// Vocab: tokenizer.ggml.tokens length, else <arch>.vocab_size, else the embedding rows.
	if v, ok := f.Lookup("tokenizer.ggml.tokens"); ok && v.Len() > 0 {
		sp.Vocab = v.Len()
	} else if n := geti("vocab_size", 0, false); n > 0 {
		sp.Vocab = n
	} else if sh, ok := s.shape(NameTokEmbd); ok && len(sh) == 2 {
		sp.Vocab = sh[0]
	}
	_, hasOut := f.Tensor(NameOutput)
	sp.TiedEmbeddings = !hasOut
	_, hasBias := f.Tensor(LayerName(0, AttnQBias))
	sp.QKVBias = a.qkvBias || hasBias
	if err := sp.Validate(); err != nil {
		return err
	}
	if s.pack != "" {
		return s.checkPack()
	}
	return nil
}

func (s *ggufSource) spec() *Spec      { return &s.sp }
func (s *ggufSource) permutedQK() bool { return s.perm }
func (s *ggufSource) close() error     { return s.f.Close() }

func (s *ggufSource) shape(name string) ([]int, bool) {
	if s.pack != "" {
		if sh, ok := s.packShape(name); ok {
			return sh, true
		}
	}
	t, ok := s.f.Tensor(name)
	if !ok {
		return nil, false
	}
	return ggufShape(t), true
}

// ggufShape returns a tensor's shape outermost first (GGUF lists ne innermost first).
func ggufShape(t *gguf.TensorInfo) []int {
	sh := make([]int, len(t.Shape))
	for i, d := range t.Shape {
		sh[len(sh)-1-i] = int(min(d, math.MaxInt32))
	}
	return sh
}

func (s *ggufSource) isF32(name string) bool {
	t, ok := s.f.Tensor(name)
	return ok && t.Type == gguf.F32
}

func (s *ggufSource) f16Rows(name string, r0, n int) ([]byte, bool) {
	t, ok := s.f.Tensor(name)
	if !ok || t.Type != gguf.F16 || len(t.Shape) == 0 {
		return nil, false
	}
	rb := int(t.Shape[0]) * 2
	if r0 < 0 || n < 0 || (r0+n)*rb > len(t.Data) {
		return nil, false
	}
	return t.Data[r0*rb : (r0+n)*rb], true
}

func (s *ggufSource) release(name string, r0, n int) int {
	if t, ok := s.f.Tensor(name); ok {
		b := rowRange(t.Data, int(min(t.Rows(), math.MaxInt32)), r0, n)
		s.f.Release(b)
		return len(b)
	}
	if s.pack == "" {
		return 0
	}
	if loc, ok := s.locate(name); ok {
		if t, ok := s.f.Tensor(loc.Tensor); ok {
			s.f.Release(t.Data)
			return 2 * n * loc.Cols
		}
	}
	return 0
}

func (s *ggufSource) rows(name string, dst []float32, r0, n int) error {
	t, ok := s.f.Tensor(name)
	if !ok {
		return errorf(ErrMissingTensor, "tensor %s missing", name)
	}
	if err := t.DequantizeRows(dst, r0, n); err != nil {
		return fmt.Errorf("tensor %s (%s) rows %d..%d: %w", name, t.Type, r0, r0+n-1, err)
	}
	return nil
}

func (s *ggufSource) describe(info *Info) {
	f := s.f
	for _, t := range f.Tensors {
		info.Tensors = append(info.Tensors, TensorDesc{Name: t.Name, Shape: ggufShape(t), Type: t.Type.String(), Bytes: int64(len(t.Data))})
		info.Params += s.params(t)
	}
	info.Tokenizer, _ = f.String("tokenizer.ggml.model")
	if v, ok := f.Lookup("tokenizer.ggml.tokens"); ok {
		info.VocabSize = v.Len()
	}
	if t, ok := f.String("tokenizer.chat_template"); ok && t != "" {
		info.HasChatTemplate = true
	}
	if ft, ok := f.Uint("general.file_type"); ok {
		info.FileType = fileTypeName(ft)
	} else {
		info.FileType = dominantType(info.Tensors)
	}
}

// params returns the weights tensor t holds: its elements, except in a pack file, where a site
// matrix's pack counts its rows × cols (not the padding rows of an fp16 pack nor the bytes of a
// ternary pack's 2-bit codes) and a ternary pack's scales count nothing (as block scales).
func (s *ggufSource) params(t *gguf.TensorInfo) int64 {
	if s.pack == "" {
		return int64(t.NumElements())
	}
	for _, suf := range []string{suffixF16Cols, suffixTQ8, suffixTScale} {
		base, ok := strings.CutSuffix(t.Name, suf)
		if !ok {
			continue
		}
		if suf == suffixTScale {
			return 0
		}
		if rows, cols, ok := s.sp.siteMatrixRows(base + ".weight"); ok {
			return int64(rows) * int64(cols)
		}
		if rows, cols, ok := s.stackDims(base); ok {
			return int64(rows) * int64(cols)
		}
		return 0
	}
	return int64(t.NumElements())
}

// fileTypeName names llama.cpp's general.file_type values (enum llama_ftype).
func fileTypeName(ft uint64) string {
	names := map[uint64]string{0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
		10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
		17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS",
		24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS",
		31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0"}
	if n, ok := names[ft]; ok {
		return n
	}
	return fmt.Sprintf("file_type %d", ft)
}

// dominantType returns the tensor type holding the most bytes.
func dominantType(ts []TensorDesc) string {
	by := map[string]int64{}
	for _, t := range ts {
		by[t.Type] += t.Bytes
	}
	best, bestN := "", int64(-1)
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if by[k] > bestN {
			best, bestN = k, by[k]
		}
	}
	return best
}

// vocab builds the tokenizer vocabulary from the GGUF tokenizer.ggml.* keys.
func (s *ggufSource) vocab() (*tokenizer.Vocab, string, error) {
	return ggufVocab(s.f, s.sp.Name)
}
