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
		ArgsUsage:    "PATH (GGUF file or Hugging Face model folder)",
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
	info, err := model.Inspect(path)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", path, err)
	}
	w := stdout(c)
	if c.Bool("json") {
		return writeJSON(w, info)
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
