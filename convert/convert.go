// Package convert writes a loaded model as a qsparse pack file (GGUF v3 container,
// general.architecture "qsparse-llama", site matrices as column-major packs; see FORMAT.md) or
// as a plain llama.cpp GGUF (row-major, llama.cpp's q/k row order).
//
// Writing plans every offset first, then fills the tensors in parallel at their offsets into a
// temporary file beside the output, which is synced and renamed into place: an error, a full
// disk or a cancelled context leaves no partial file, and the input is never modified.
//
// The source is read tensor by tensor while the output is written (model.Stream): no converted
// copy of the whole model is held, and the source's mapped pages are released as they are
// read, so the peak memory is the tensors in flight, not the input plus a converted model.
package convert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/qsparse/qsparse/gguf"
	"github.com/qsparse/qsparse/model"
)

// Output formats.
const (
	FormatFP16     = "fp16"      // pack: site matrices as F16 column-major packs
	FormatTernary  = "ternary"   // pack: site matrices as ternary 2-bit codes (BitNet b1.58 absmean)
	FormatGGUFF16  = "gguf-f16"  // plain llama.cpp GGUF, F16 matrices
	FormatGGUFF32  = "gguf-f32"  // plain llama.cpp GGUF, F32 matrices
	FormatGGUFQ8_0 = "gguf-q8_0" // plain llama.cpp GGUF, Q8_0 matrices
)

// Formats lists the supported output formats.
var Formats = []string{FormatFP16, FormatTernary, FormatGGUFF16, FormatGGUFF32, FormatGGUFQ8_0}

// Sentinel errors.
var (
	ErrFormat    = errors.New("unknown output format")
	ErrSameFile  = errors.New("the output would overwrite the input")
	ErrBadOutput = errors.New("bad output path")
)

// Options configures Run.
type Options struct {
	Model   string // GGUF file or Hugging Face folder
	Profile string // optional sparsity profile JSON stored in the pack (qsparse.profile)
	Format  string // one of Formats
	Out     string // output file
	Threads int    // load and write threads; <= 0: runtime.NumCPU()

	// Ternary options.
	PerColumn bool   // one absmean scale per input column instead of per tensor
	CheckText string // text for the perplexity check; "" uses the built-in sample

	// Progress, if set, is called with the bytes written so far and the total (never
	// concurrently).
	Progress func(done, total int64)
	// Log receives notes and warnings (nil: discarded).
	Log io.Writer
	// WrapWriter wraps the output's WriterAt (tests inject failing writers).
	WrapWriter func(io.WriterAt) io.WriterAt
}

// Result describes a written file.
type Result struct {
	Out, Format string
	Bytes       int64 // file size
	Tensors     int
	// Load is opening the source and planning the output (ternary: with the perplexity check);
	// Write is producing and writing the tensors.
	Load, Write time.Duration
	// SourceBytes is the source tensor data read: each byte once (ternary reads the embedding
	// and LM head again, and every layer once more for its perplexity check).
	SourceBytes int64

	// Ternary only: perplexity on the check text before and after ternarization, the number of
	// site matrices that were already ternary (packed exactly), and the warning printed.
	SourcePPL, TernaryPPL float64
	Exact, Matrices       int
	Warning               string
}

// CheckFormat returns an error wrapping ErrFormat unless f is one of Formats.
func CheckFormat(f string) error {
	for _, g := range Formats {
		if f == g {
			return nil
		}
	}
	return fmt.Errorf("%w %q (want one of %s)", ErrFormat, f, strings.Join(Formats, ", "))
}

// checkPaths refuses an output that is the input, one of its files, or a directory.
func checkPaths(in, out string) error {
	if out == "" {
		return fmt.Errorf("%w: no output file given", ErrBadOutput)
	}
	ost, oerr := os.Stat(out)
	if oerr == nil && ost.IsDir() {
		return fmt.Errorf("%w: %s is a directory; give a file name", ErrBadOutput, out)
	}
	ist, err := os.Stat(in)
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	if oerr != nil {
		if !errors.Is(oerr, os.ErrNotExist) {
			return fmt.Errorf("%w: %w", ErrBadOutput, oerr)
		}
		if dst, err := os.Stat(filepath.Dir(out)); err != nil || !dst.IsDir() {
			return fmt.Errorf("%w: the directory of %s does not exist", ErrBadOutput, out)
		}
		return nil
	}
	if !ist.IsDir() {
		if os.SameFile(ist, ost) {
			return fmt.Errorf("%w: %s is the input file %s", ErrSameFile, out, in)
		}
		// a split GGUF: any shard
		if f, err := gguf.Open(in); err == nil {
			shards := f.Shards
			f.Close()
			for _, s := range shards {
				if sst, err := os.Stat(s); err == nil && os.SameFile(sst, ost) {
					return fmt.Errorf("%w: %s is a shard of the input %s", ErrSameFile, out, in)
				}
			}
		}
		return nil
	}
	// An HF folder: refuse to replace any file inside it.
	if od, err := os.Stat(filepath.Dir(out)); err == nil && os.SameFile(od, ist) {
		return fmt.Errorf("%w: %s would replace a file of the input folder %s", ErrSameFile, out, in)
	}
	return nil
}

// Run loads opts.Model and writes opts.Out in opts.Format. Errors start with
// "convert <model>:".
func Run(ctx context.Context, opts Options) (*Result, error) {
	res, err := convertModel(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("convert %s: %w", opts.Model, err)
	}
	return res, nil
}

func convertModel(ctx context.Context, opts Options) (*Result, error) {
	if err := CheckFormat(opts.Format); err != nil {
		return nil, err
	}
	if err := checkPaths(opts.Model, opts.Out); err != nil {
		return nil, err
	}
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	threads := opts.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	var prof *model.Profile
	if opts.Profile != "" {
		if opts.Format != FormatFP16 && opts.Format != FormatTernary {
			return nil, fmt.Errorf("--profile is stored in qsparse packs only (--format fp16 or ternary), not in %s", opts.Format)
		}
		var err error
		if prof, err = model.ReadProfile(opts.Profile); err != nil {
			return nil, err
		}
	}
	t0 := time.Now()
	s, err := model.OpenStream(opts.Model)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	sp := &s.Spec
	res := &Result{Out: opts.Out, Format: opts.Format}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	general, tok, err := sourceMeta(opts.Model, sp, s.ChatTemplate)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if prof != nil {
		if err := prof.Validate(sp); err != nil {
			return nil, fmt.Errorf("profile %s: %w", opts.Profile, err)
		}
	}

	var kv []gguf.KV
	var tensors []gguf.StreamTensor
	var align uint64
	switch opts.Format {
	case FormatFP16, FormatTernary:
		var tern *ternaryResult
		if opts.Format == FormatTernary {
			text := opts.CheckText
			if text == "" {
				text = sampleText
			}
			if tern, err = ternarizeStream(ctx, s, opts.PerColumn, text, threads); err != nil {
				return nil, err
			}
			res.SourcePPL, res.TernaryPPL, res.Exact, res.Matrices = tern.sourcePPL, tern.ternaryPPL, tern.exact, len(tern.packs)
			res.Warning = tern.warning(sp.Name)
			fmt.Fprintf(logw, "ternary: perplexity on the check text %.4g (source) -> %.4g (ternary); %d of %d site matrices were already ternary\n",
				tern.sourcePPL, tern.ternaryPPL, tern.exact, len(tern.packs))
			if res.Warning != "" {
				fmt.Fprintln(logw, res.Warning)
			}
		}
		if kv, err = packKV(sp, general, tok, prof, opts, tern); err != nil {
			return nil, err
		}
		if tensors, err = packTensors(s, sp, tern); err != nil {
			return nil, err
		}
		align = PackAlignment
	default:
		if kv, tensors, err = exportFile(s, sp, general, tok, opts.Format); err != nil {
			return nil, err
		}
	}
	res.Load = time.Since(t0)
	res.Tensors = len(tensors)

	t1 := time.Now()
	l, err := gguf.PlanLayout(kv, tensors, align)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var done int64
	popts := gguf.ParallelOptions{Workers: threads, WrapWriter: opts.WrapWriter}
	if opts.Progress != nil {
		opts.Progress(0, int64(l.Size))
		popts.Progress = func(n int64) {
			mu.Lock()
			done += n
			opts.Progress(done, int64(l.Size))
			mu.Unlock()
		}
	}
	if err := gguf.WriteFileParallel(ctx, opts.Out, kv, tensors, align, popts); err != nil {
		return nil, err
	}
	res.Write = time.Since(t1)
	res.Bytes = int64(l.Size)
	res.SourceBytes = s.BytesRead()
	return res, nil
}

// tensorSource is where convert reads the model's tensors under canonical names, in Load's
// canonical layout (q/k rows rotate-half): a model.Stream in Run; tests also write from a
// loaded model, the reference path.
type tensorSource interface {
	Rows(name string, dst []float32, r0, n int) error   // matrix rows as float32
	RowsF16(name string, dst []uint16, r0, n int) error // matrix rows as fp16 bits
	Vector(name string) ([]float32, error)              // 1-D tensor; nil when absent
}

// packKV is the metadata of a pack file (FORMAT.md).
func packKV(sp *model.Spec, general, tok []gguf.KV, prof *model.Profile, opts Options, tern *ternaryResult) ([]gguf.KV, error) {
	kv := []gguf.KV{gguf.String("general.architecture", PackArch)}
	kv = append(kv, general...)
	kv = append(kv, gguf.Uint32("general.alignment", PackAlignment),
		gguf.Uint32(KeyVersion, FormatVersion),
		gguf.String(KeySourceArch, sp.Arch))
	if tern == nil {
		kv = append(kv, gguf.String(KeyLayout, LayoutF16ColsStacked))
	} else {
		mode := "tensor"
		if opts.PerColumn {
			mode = "column"
		}
		kv = append(kv, gguf.String(KeyLayout, LayoutTernary), gguf.String(KeyTernaryMode, mode),
			gguf.Float32(KeySourcePPL, float32(tern.sourcePPL)), gguf.Float32(KeyTernaryPPL, float32(tern.ternaryPPL)),
			gguf.Bool(KeyExact, tern.exact == len(tern.packs)))
	}
	if prof != nil {
		var b bytes.Buffer
		if err := model.EncodeProfile(&b, sp, prof); err != nil {
			return nil, fmt.Errorf("profile %s: %w", opts.Profile, err)
		}
		kv = append(kv, gguf.String(KeyProfile, b.String()))
	}
	kv = append(kv, hyperKV(PackArch, sp)...)
	return append(kv, tok...), nil
}

// packTensors lists a pack's tensors in canonical order: site matrices as packs (tern nil:
// F16 columns, q/k/v and gate/up stacked in one pack each), everything else row-major as in
// GGUF (embedding and LM head F16, norms, biases and rope_freqs F32, q/k biases in the HF
// rotate-half order of the q/k rows). 1-D tensors are read now (they are small); matrices
// while the file is written.
func packTensors(src tensorSource, sp *model.Spec, tern *ternaryResult) ([]gguf.StreamTensor, error) {
	var out []gguf.StreamTensor
	own, err := src.Vector(model.NameRopeFreqs)
	if err != nil {
		return nil, err
	}
	if f := ropeFreqs(sp, own); f != nil {
		out = append(out, vecTensor(model.NameRopeFreqs, f))
	}
	shapes := map[string][]int{}
	for _, ts := range sp.Tensors() {
		shapes[ts.Name] = ts.Shape
	}
	for _, ts := range sp.Tensors() {
		pn, stack, stacked := sp.PackStack(ts.Name)
		switch {
		case tern == nil && stacked: // written once, at the stack's first matrix
			if ts.Name == stack[0] {
				rows := make([]int, len(stack))
				for i, name := range stack {
					rows[i] = shapes[name][0]
				}
				out = append(out, f16ColsStackTensor(src, pn, stack, rows, ts.Shape[1]))
			}
		case !ts.Matrix:
			v, err := src.Vector(ts.Name)
			if err != nil {
				return nil, err
			}
			out = append(out, vecTensor(ts.Name, v))
		case !isSiteMatrix(ts.Name):
			out = append(out, rowTensor(src, ts.Name, ts.Shape[0], ts.Shape[1], gguf.F16, 0))
		case tern != nil:
			out = append(out, ternaryTensors(ts.Name, tern.packs[ts.Name])...)
		default:
			out = append(out, f16ColsTensor(src, ts.Name, ts.Shape[0], ts.Shape[1]))
		}
	}
	return out, nil
}

// exportFile is a plain llama.cpp GGUF: row-major, q/k rows (and biases) in llama.cpp's
// permuted order for arch llama, matrices in the format's type (Q8_0 falls back to F16 for
// rows that are not a multiple of 32), 1-D tensors F32.
func exportFile(src tensorSource, sp *model.Spec, general, tok []gguf.KV, format string) ([]gguf.KV, []gguf.StreamTensor, error) {
	arch, permuted := ggufArch(sp)
	t, ftype := gguf.F16, uint32(1)
	switch format {
	case FormatGGUFF32:
		t, ftype = gguf.F32, 0
	case FormatGGUFQ8_0:
		t, ftype = gguf.Q8_0, 7
	}
	kv := []gguf.KV{gguf.String("general.architecture", arch)}
	kv = append(kv, general...)
	kv = append(kv, gguf.Uint32("general.file_type", ftype), gguf.Uint32("general.quantization_version", 2))
	kv = append(kv, hyperKV(arch, sp)...)
	kv = append(kv, tok...)
	var out []gguf.StreamTensor
	own, err := src.Vector(model.NameRopeFreqs)
	if err != nil {
		return nil, nil, err
	}
	if f := ropeFreqs(sp, own); f != nil {
		out = append(out, vecTensor(model.NameRopeFreqs, f))
	}
	for _, ts := range sp.Tensors() {
		hd := 0
		if permuted && isQK(ts.Name) {
			hd = sp.HeadDim
		}
		if !ts.Matrix {
			v, err := src.Vector(ts.Name)
			if err != nil {
				return nil, nil, err
			}
			if hd > 0 {
				v = permuteVec(v, hd)
			}
			out = append(out, vecTensor(ts.Name, v))
			continue
		}
		rows, cols := ts.Shape[0], ts.Shape[1]
		tt := t
		if tt == gguf.Q8_0 && cols%32 != 0 {
			tt = gguf.F16
		}
		out = append(out, rowTensor(src, ts.Name, rows, cols, tt, hd))
	}
	return kv, out, nil
}
