package commands

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/urfave/cli/v2"

	"github.com/qsparse/qsparse/chat"
	"github.com/qsparse/qsparse/eval"
	"github.com/qsparse/qsparse/model"
)

// inspectCommand builds the inspect subcommand.
func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "describe a checkpoint: architecture, hyper-parameters, tokenizer, tensors",
		ArgsUsage: "PATH (GGUF file, Hugging Face model folder, or profile JSON)",
		UsageText: "qsparse inspect ~/.cache/qsparse/models/SmolLM2-135M-Instruct.Q4_1.gguf\n" +
			"qsparse inspect ./SmolLM2-135M-Instruct --json   # a Hugging Face folder\n" +
			"qsparse inspect profile.json                     # a calibrated profile: K and ratio per layer and site",
		Description: "Reads no tensor data: architecture, hyper-parameters, parameter count, tokenizer (kind, size,\n" +
			"BOS/EOS ids), chat template kind, the bytes one dense decoded token reads, and the tensors.\n" +
			"A Hugging Face folder missing its weights or tokenizer.json is reported file by file.",
		Flags:  []cli.Flag{modelFlag(), jsonFlag(), quietFlag()},
		Action: runInspect,
	}
}

func runInspect(c *cli.Context) error {
	args := cmdArgs(c)
	if m := c.String("model"); m != "" {
		args = append([]string{m}, args...) // -m PATH, as the other commands take it
	}
	if len(args) != 1 {
		return usagef("want exactly one PATH (a GGUF file or a Hugging Face model folder, or -m PATH), got %d", len(args))
	}
	if isProfileFile(args[0]) {
		return inspectProfile(stdout(c), args[0], c.Bool("json"))
	}
	path, err := resolveModel(args[0])
	if err != nil {
		return err
	}
	if err := checkHFFolder(path); err != nil {
		return err
	}
	info, err := model.Inspect(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	tok, err := model.InspectTokenizer(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	w := stdout(c)
	if c.Bool("json") {
		err = writeJSON(w, newInspectJSON(info, tok))
	} else {
		err = writeInfo(w, info, tok)
	}
	if err != nil || len(info.Problems) == 0 {
		return err
	}
	if !c.Bool("json") {
		fmt.Fprintf(w, "\nproblems (qsparse would refuse to load this checkpoint):\n")
		for _, p := range info.Problems {
			fmt.Fprintf(w, "  - %s\n", p)
		}
	}
	return fmt.Errorf("%s: %d problem(s), first: %s", path, len(info.Problems), info.Problems[0])
}

// checkHFFolder names every file a Hugging Face folder lacks (nil for a complete folder or a
// file path).
func checkHFFolder(dir string) error {
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return nil // model.Inspect says what is wrong with it
	}
	has := func(n string) bool { _, err := os.Stat(filepath.Join(dir, n)); return err == nil }
	var missing []string
	if !has("config.json") {
		missing = append(missing, "config.json (the architecture and hyper-parameters)")
	}
	if !has("tokenizer.json") {
		missing = append(missing, "tokenizer.json (the tokenizer)")
	}
	if !has("model.safetensors") && !has("model.safetensors.index.json") {
		w := "model.safetensors or model.safetensors.index.json with its shards (the weights)"
		if m, _ := filepath.Glob(filepath.Join(dir, "*.gguf")); len(m) > 0 {
			w += fmt.Sprintf("; the folder holds %s: inspect that file instead", filepath.Base(m[0]))
		}
		missing = append(missing, w)
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%s is not a complete Hugging Face model folder: missing %s (download the checkpoint with qsparse pull ORG/REPO)",
		dir, strings.Join(missing, ", "))
}

// templateKind names the chat template family of tmpl: chatml, llama2, llama3, "none" or
// "unrecognised".
func templateKind(tmpl string) string {
	t, err := chat.Detect(tmpl)
	switch {
	case errors.Is(err, chat.ErrNoTemplate):
		return "none"
	case err != nil:
		return "unrecognised"
	}
	return string(t.Kind)
}

// tokenName is a special token's id and text, "none" when absent.
func tokenName(id int, text string) string {
	if id < 0 {
		return "none"
	}
	if text == "" {
		return strconv.Itoa(id)
	}
	return fmt.Sprintf("%d %q", id, text)
}

func writeInfo(w io.Writer, info *model.Info, tok *model.TokenizerInfo) error {
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
		{"special tokens", fmt.Sprintf("BOS %s, EOS %s, EOT %s (BOS added: %s)", tokenName(tok.BOS, tok.BOSText), tokenName(tok.EOS, tok.EOSText), tokenName(tok.EOT, tok.EOTText), yes(tok.AddBOS))},
		{"chat template", templateKind(tok.ChatTemplate)},
		{"dense bytes/token", fmt.Sprintf("%s (%d)", humanBytes(info.DenseBytesPerToken), info.DenseBytesPerToken)},
	}
	if info.Layout != "" { // a qsparse pack: its site matrices' layout, after the file type
		lines = append(lines[:5], append([][2]string{{"pack layout", info.Layout}}, lines[5:]...)...)
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
	Problems           []string     `json:"problems,omitempty"`
	Path               string       `json:"path"`
	Format             string       `json:"format"`
	Arch               string       `json:"arch"`
	Name               string       `json:"name"`
	FileType           string       `json:"file_type"`
	Layout             string       `json:"pack_layout,omitempty"` // qsparse packs: f16-cols or ternary-q8
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
	ChatTemplateKind   string       `json:"chat_template_kind"` // chatml, llama2, llama3, none, unrecognised
	BOS                int          `json:"bos_id"`             // -1: none
	EOS                int          `json:"eos_id"`
	EOT                int          `json:"eot_id"`
	AddBOS             bool         `json:"add_bos"`
	BOSText            string       `json:"bos_text,omitempty"`
	EOSText            string       `json:"eos_text,omitempty"`
	EOTText            string       `json:"eot_text,omitempty"`
	DenseBytesPerToken int64        `json:"dense_bytes_per_token"`
	Tensors            []tensorJSON `json:"tensors"`
}

type tensorJSON struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"` // outermost first
	Type  string `json:"type"`
	Bytes int64  `json:"bytes"`
}

func newInspectJSON(info *model.Info, tok *model.TokenizerInfo) *inspectJSON {
	s := &info.Spec
	j := &inspectJSON{
		Problems: info.Problems,
		Path:     info.Path, Format: info.Format, Arch: s.Arch, Name: s.Name, FileType: info.FileType,
		Layout: info.Layout,
		Params: info.Params, Dim: s.Dim, Layers: s.NLayers, Heads: s.NHeads, KVHeads: s.NKVHeads,
		HeadDim: s.HeadDim, FFNDim: s.FFNDim, Vocab: s.Vocab, Context: s.CtxLen, RopeTheta: s.RopeTheta,
		NormEps: s.NormEps, TiedEmbeddings: s.TiedEmbeddings, QKVBias: s.QKVBias,
		Tokenizer: info.Tokenizer, TokenizerVocab: info.VocabSize, ChatTemplate: info.HasChatTemplate,
		DenseBytesPerToken: info.DenseBytesPerToken, Tensors: make([]tensorJSON, 0, len(info.Tensors)),
		ChatTemplateKind: templateKind(tok.ChatTemplate), BOS: tok.BOS, EOS: tok.EOS, EOT: tok.EOT, AddBOS: tok.AddBOS,
		BOSText: tok.BOSText, EOSText: tok.EOSText, EOTText: tok.EOTText,
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
