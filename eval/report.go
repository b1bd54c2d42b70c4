package eval

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// Row is one evaluated configuration of a model: the dense model, or one sparsity setting
// (uniform, N:M blocks, calibrated profile, ...), compared with the reference row (the dense
// model, or the --base model). Fractions are in [0, 1].
type Row struct {
	Label string `json:"label"`
	// Family groups the rows of one kind (one plot series: "magnitude", "weighted",
	// "block 2:4", a profile name); "" for the dense and base rows.
	Family  string `json:"family,omitempty"`
	Scoring string `json:"scoring,omitempty"`
	// Sparsity is the requested sparsity (0 = dense); ByteSparsity the byte-weighted sparsity
	// the profile reaches after K is floored (model.Profile.ByteSparsity).
	Sparsity     float64 `json:"sparsity"`
	ByteSparsity float64 `json:"byte_sparsity"`
	PPL          float64 `json:"ppl"`
	Err          float64 `json:"ppl_err"`
	MeanNLL      float64 `json:"mean_nll"`
	// DeltaPPL is PPL / reference PPL - 1.
	DeltaPPL float64 `json:"delta_ppl"`
	// Against the reference: mean KL(reference || this) in nats, its standard error, and the
	// fraction of scored positions whose top-1 token is the reference's.
	KLD        float64 `json:"kld"`
	KLDErr     float64 `json:"kld_err"`
	SameTop    float64 `json:"same_top"`
	SameTopErr float64 `json:"same_top_err"`
	// Bytes is the weight bytes one decoded token reads (model.Model.BytesPerToken); BytesFrac
	// is Bytes over the dense model's.
	Bytes     int64   `json:"bytes_per_token,omitempty"`
	BytesFrac float64 `json:"bytes_fraction,omitempty"`
	// Reference marks the row the others are compared with.
	Reference bool    `json:"reference,omitempty"`
	Tokens    int     `json:"tokens"` // tokens scored
	Chunks    int     `json:"chunks"`
	Seconds   float64 `json:"seconds"`
	// Running is the running perplexity after each chunk (omitted from tables).
	Running []float64 `json:"running_ppl,omitempty"`
	// Sums are the raw sums of each evaluated chunk (written to shard partials only, see Partial).
	Sums []ChunkSums `json:"chunk_sums,omitempty"`
}

// RowFromPPL makes a Row from a perplexity result.
func RowFromPPL(label string, sparsity float64, r *PPLResult) Row {
	return Row{Label: label, Sparsity: sparsity, PPL: r.PPL, Err: r.Err, MeanNLL: r.MeanNLL,
		Tokens: r.Tokens, Chunks: r.Chunks, Seconds: r.Seconds, Running: r.Running}
}

// RowFromKL makes a Row from a comparison with a base model (the row describes the test model).
func RowFromKL(label string, sparsity float64, r *KLResult) Row {
	return Row{Label: label, Sparsity: sparsity, PPL: r.PPL, Err: r.Err, MeanNLL: r.MeanNLL,
		Tokens: r.Tokens, Chunks: r.Chunks, Seconds: r.Seconds, KLD: r.KLD, KLDErr: r.KLDErr,
		SameTop: r.SameTop, SameTopErr: r.SameTopErr, DeltaPPL: r.PPL/r.BasePPL - 1}
}

// Report is a perplexity evaluation (a sweep) of one model on one text: one row per
// configuration, the reference row first. The table, markdown, CSV, JSON and SVG outputs are
// all built from it.
type Report struct {
	Model   string `json:"model"`
	Base    string `json:"base,omitempty"` // base model of the KLD columns ("": the dense model)
	Data    string `json:"data"`
	Ctx     int    `json:"ctx"`
	Batch   int    `json:"batch"`
	Threads int    `json:"threads"`
	// DataTokens is the number of tokens the whole text tokenizes to.
	DataTokens int `json:"data_tokens"`
	// DenseBytes is the weight bytes one dense decoded token reads.
	DenseBytes int64 `json:"dense_bytes_per_token,omitempty"`
	// Incomplete is set when the sweep was stopped before every configuration was evaluated.
	Incomplete bool  `json:"incomplete,omitempty"`
	Rows       []Row `json:"rows"`
}

// WriteJSON writes the report as indented JSON (one object per row in "rows").
func (r *Report) WriteJSON(w io.Writer) error {
	c := *r
	c.Rows = make([]Row, len(r.Rows))
	for i, row := range r.Rows {
		row.Sums = nil
		c.Rows[i] = row
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(&c)
}

// columns are the table and markdown columns.
var columns = []string{"config", "requested", "byte sparsity", "PPL ± err", "ΔPPL", "KL ± err", "same top-1", "bytes/token", "of dense"}

// cells formats one row for the table and markdown outputs.
func (r *Report) cells(row *Row) []string {
	c := []string{row.Label, pct(row.Sparsity, 1), pct(row.ByteSparsity, 1),
		fmt.Sprintf("%.4f ± %.4f", row.PPL, row.Err), "—", "—", "—", "—", "—"}
	if !row.Reference {
		c[4] = fmt.Sprintf("%+.2f%%", 100*row.DeltaPPL)
		c[5] = fmt.Sprintf("%.5f ± %.5f", row.KLD, row.KLDErr)
		c[6] = pct(row.SameTop, 2)
	}
	if row.Bytes > 0 {
		c[7] = FormatBytes(row.Bytes)
		c[8] = fmt.Sprintf("%.3f", row.BytesFrac)
	}
	return c
}

func pct(f float64, prec int) string { return strconv.FormatFloat(100*f, 'f', prec, 64) + "%" }

// FormatBytes formats a byte count in decimal units (B, kB, MB, GB), 4 significant digits.
func FormatBytes(n int64) string {
	v := float64(n)
	for _, u := range []string{"B", "kB", "MB"} {
		if math.Abs(v) < 1000 {
			if u == "B" {
				return fmt.Sprintf("%d B", n)
			}
			return strconv.FormatFloat(v, 'g', 4, 64) + " " + u
		}
		v /= 1000
	}
	return strconv.FormatFloat(v, 'g', 4, 64) + " GB"
}

// WriteTable writes the report as a text table, one line per row.
func (r *Report) WriteTable(w io.Writer) error {
	t := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off))
	h := make([]any, len(columns))
	for i, c := range columns {
		h[i] = c
	}
	t.Header(h...)
	for i := range r.Rows {
		cells := r.cells(&r.Rows[i])
		row := make([]any, len(cells))
		for j, c := range cells {
			row[j] = c
		}
		if err := t.Append(row...); err != nil {
			return fmt.Errorf("eval: table: %w", err)
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("eval: table: %w", err)
	}
	return nil
}

// WriteMarkdown writes the report as a GitHub markdown table (numbers right-aligned).
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| " + strings.Join(columns, " | ") + " |\n|")
	for i := range columns {
		if i == 0 {
			b.WriteString(" --- |")
		} else {
			b.WriteString(" ---: |")
		}
	}
	b.WriteString("\n")
	for i := range r.Rows {
		cells := r.cells(&r.Rows[i])
		for j, c := range cells {
			cells[j] = strings.ReplaceAll(c, "|", `\|`)
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// csvHeader are the CSV columns (raw numbers, fractions not percentages).
var csvHeader = []string{"label", "family", "scoring", "sparsity", "byte_sparsity", "ppl", "ppl_err", "delta_ppl",
	"kld", "kld_err", "same_top", "same_top_err", "bytes_per_token", "bytes_fraction", "reference", "tokens", "chunks", "seconds"}

// WriteCSV writes the report as CSV with a header line.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	for _, row := range r.Rows {
		rec := []string{row.Label, row.Family, row.Scoring, g(row.Sparsity), g(row.ByteSparsity), g(row.PPL), g(row.Err),
			g(row.DeltaPPL), g(row.KLD), g(row.KLDErr), g(row.SameTop), g(row.SameTopErr),
			strconv.FormatInt(row.Bytes, 10), g(row.BytesFrac), strconv.FormatBool(row.Reference),
			strconv.Itoa(row.Tokens), strconv.Itoa(row.Chunks), g(row.Seconds)}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
