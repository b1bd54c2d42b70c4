package commands

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/urfave/cli/v2"

	"github.com/qsparse/qsparse/eval"
	"github.com/qsparse/qsparse/model"
)

func init() {
	register(&cli.Command{
		Name:         "inspect",
		Usage:        "describe a checkpoint: architecture, hyper-parameters, tokenizer, tensors",
		ArgsUsage:    "PATH (GGUF file, Hugging Face model folder, or profile JSON)",
		Flags:        []cli.Flag{jsonFlag()},
		OnUsageError: commandUsageError,
		Action:       runInspect,
	})
}

func runInspect(c *cli.Context) error {
	if c.NArg() != 1 {
		return usagef("inspect: want exactly one PATH (a GGUF file or a Hugging Face model folder), got %d arguments", c.NArg())
	}
	path := c.Args().First()
	if isProfileFile(path) {
		return inspectProfile(stdout(c), path, c.Bool("json"))
	}
	info, err := model.Inspect(path)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", path, err)
	}
	w := stdout(c)
	if c.Bool("json") {
		return writeJSON(w, newInspectJSON(info))
	}
	return writeInfo(w, info)
}

func writeInfo(w io.Writer, info *model.Info) error {
	s := &info.Spec
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	rope := fmt.Sprintf("theta %g", s.RopeTheta)
	if s.RopeScaling.Type != "" && s.RopeScaling.Type != "none" {
		rope += fmt.Sprintf(", %s scaling x%g", s.RopeScaling.Type, s.RopeScaling.Factor)
	}
	var fileBytes int64
	for _, t := range info.Tensors {
		fileBytes += t.Bytes
	}
	lines := [][2]string{
		{"path", info.Path},
		{"format", info.Format},
		{"arch", s.Arch},
		{"name", s.Name},
		{"file type", info.FileType},
		{"params", fmt.Sprintf("%s (%d)", eval.FormatParams(info.Params), info.Params)},
		{"tensor bytes", fmt.Sprintf("%s (%d)", humanBytes(fileBytes), fileBytes)},
		{"dim", strconv.Itoa(s.Dim)},
		{"layers", strconv.Itoa(s.NLayers)},
		{"heads", fmt.Sprintf("%d (kv %d, head dim %d)", s.NHeads, s.NKVHeads, s.HeadDim)},
		{"ffn dim", strconv.Itoa(s.FFNDim)},
		{"vocab", strconv.Itoa(s.Vocab)},
		{"context", strconv.Itoa(s.CtxLen)},
		{"rope", rope},
		{"norm eps", fmt.Sprintf("%g", s.NormEps)},
		{"tied embeddings", yes(s.TiedEmbeddings)},
		{"qkv bias", yes(s.QKVBias)},
		{"tokenizer", fmt.Sprintf("%s, %d tokens", info.Tokenizer, info.VocabSize)},
		{"chat template", yes(info.HasChatTemplate)},
		{"dense bytes/token", fmt.Sprintf("%s (%d)", humanBytes(info.DenseBytesPerToken), info.DenseBytesPerToken)},
	}
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%-18s %s\n", l[0]+":", l[1])
	}
	b.WriteString("\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	t := tablewriter.NewWriter(w)
	t.Header("tensor", "shape", "type", "bytes")
	for _, td := range info.Tensors {
		dims := make([]string, len(td.Shape))
		for i, d := range td.Shape {
			dims[i] = strconv.Itoa(d)
		}
		if err := t.Append(td.Name, "["+strings.Join(dims, ", ")+"]", td.Type, strconv.FormatInt(td.Bytes, 10)); err != nil {
			return fmt.Errorf("inspect: table: %w", err)
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("inspect: table: %w", err)
	}
	return nil
}

// humanBytes formats a byte count with a binary unit.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// inspectJSON is the --json schema of inspect (snake_case, stable).
type inspectJSON struct {
	Path               string       `json:"path"`
	Format             string       `json:"format"`
	Arch               string       `json:"arch"`
	Name               string       `json:"name"`
	FileType           string       `json:"file_type"`
	Params             int64        `json:"params"`
	TensorBytes        int64        `json:"tensor_bytes"`
	Dim                int          `json:"dim"`
	Layers             int          `json:"layers"`
	Heads              int          `json:"heads"`
	KVHeads            int          `json:"kv_heads"`
	HeadDim            int          `json:"head_dim"`
	FFNDim             int          `json:"ffn_dim"`
	Vocab              int          `json:"vocab"`
	Context            int          `json:"context"`
	RopeTheta          float64      `json:"rope_theta"`
	RopeScaling        string       `json:"rope_scaling,omitempty"`
	RopeScalingFactor  float64      `json:"rope_scaling_factor,omitempty"`
	NormEps            float64      `json:"norm_eps"`
	TiedEmbeddings     bool         `json:"tied_embeddings"`
	QKVBias            bool         `json:"qkv_bias"`
	Tokenizer          string       `json:"tokenizer"`
	TokenizerVocab     int          `json:"tokenizer_vocab"`
	ChatTemplate       bool         `json:"chat_template"`
	DenseBytesPerToken int64        `json:"dense_bytes_per_token"`
	Tensors            []tensorJSON `json:"tensors"`
}

type tensorJSON struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"` // outermost first
	Type  string `json:"type"`
	Bytes int64  `json:"bytes"`
}

func newInspectJSON(info *model.Info) *inspectJSON {
	s := &info.Spec
	j := &inspectJSON{
		Path: info.Path, Format: info.Format, Arch: s.Arch, Name: s.Name, FileType: info.FileType,
		Params: info.Params, Dim: s.Dim, Layers: s.NLayers, Heads: s.NHeads, KVHeads: s.NKVHeads,
		HeadDim: s.HeadDim, FFNDim: s.FFNDim, Vocab: s.Vocab, Context: s.CtxLen, RopeTheta: s.RopeTheta,
		NormEps: s.NormEps, TiedEmbeddings: s.TiedEmbeddings, QKVBias: s.QKVBias,
		Tokenizer: info.Tokenizer, TokenizerVocab: info.VocabSize, ChatTemplate: info.HasChatTemplate,
		DenseBytesPerToken: info.DenseBytesPerToken, Tensors: make([]tensorJSON, 0, len(info.Tensors)),
	}
	if s.RopeScaling.Type != "" && s.RopeScaling.Type != "none" {
		j.RopeScaling, j.RopeScalingFactor = s.RopeScaling.Type, s.RopeScaling.Factor
	}
	for _, t := range info.Tensors {
		j.TensorBytes += t.Bytes
		j.Tensors = append(j.Tensors, tensorJSON{Name: t.Name, Shape: t.Shape, Type: t.Type, Bytes: t.Bytes})
	}
	return j
}
