package eval

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/olekukonko/tablewriter"
)

// Row is one evaluated configuration of a model: the dense model, or one sparsity setting
// (uniform, calibrated profile, ...). Sparsity is the fraction of activations dropped (0 = dense).
type Row struct {
	Label    string  `json:"label"`
	Sparsity float64 `json:"sparsity"`
	PPL      float64 `json:"ppl"`
	Err      float64 `json:"ppl_err"`
	MeanNLL  float64 `json:"mean_nll"`
	Tokens   int     `json:"tokens"` // tokens scored
	Chunks   int     `json:"chunks"`
	Seconds  float64 `json:"seconds"`
	// Against a base model (KLDivergenceWith); zero when not compared.
	KLD     float64 `json:"kld,omitempty"`      // mean KL(base || this), nats
	KLDErr  float64 `json:"kld_err,omitempty"`  // standard error
	SameTop float64 `json:"same_top,omitempty"` // fraction of positions with the base's top token
	// Running is the running perplexity after each chunk (omitted from tables).
	Running []float64 `json:"running_ppl,omitempty"`
}

// RowFromPPL makes a Row from a perplexity result.
func RowFromPPL(label string, sparsity float64, r *PPLResult) Row {
	return Row{Label: label, Sparsity: sparsity, PPL: r.PPL, Err: r.Err, MeanNLL: r.MeanNLL,
		Tokens: r.Tokens, Chunks: r.Chunks, Seconds: r.Seconds, Running: r.Running}
}

// RowFromKL makes a Row from a comparison with a base model (the row describes the test model).
func RowFromKL(label string, sparsity float64, r *KLResult) Row {
	return Row{Label: label, Sparsity: sparsity, PPL: r.PPL, Err: r.Err, MeanNLL: r.MeanNLL,
		Tokens: r.Tokens, Chunks: r.Chunks, Seconds: r.Seconds, KLD: r.KLD, KLDErr: r.KLDErr, SameTop: r.SameTop}
}

// Report is a perplexity evaluation of one model on one text: one row per configuration.
// Tables and JSON are both built from it.
type Report struct {
	Model   string `json:"model"`
	Base    string `json:"base,omitempty"` // base model of the KLD columns
	Data    string `json:"data"`
	Ctx     int    `json:"ctx"`
	Batch   int    `json:"batch"`
	Threads int    `json:"threads"`
	// DataTokens is the number of tokens the whole text tokenizes to.
	DataTokens int   `json:"data_tokens"`
	Rows       []Row `json:"rows"`
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the report as a text table, one line per row.
func (r *Report) WriteTable(w io.Writer) error {
	kl := false
	for _, row := range r.Rows {
		kl = kl || row.SameTop > 0
	}
	t := tablewriter.NewWriter(w)
	header := []any{"config", "sparsity", "ppl", "+/-", "mean nll", "tokens", "chunks", "seconds"}
	if kl {
		header = append(header, "kld", "same top")
	}
	t.Header(header...)
	for _, row := range r.Rows {
		cells := []any{row.Label,
			strconv.FormatFloat(row.Sparsity*100, 'f', 1, 64) + "%",
			fmt.Sprintf("%.4f", row.PPL),
			fmt.Sprintf("%.5f", row.Err),
			fmt.Sprintf("%.6f", row.MeanNLL),
			strconv.Itoa(row.Tokens),
			strconv.Itoa(row.Chunks),
			fmt.Sprintf("%.2f", row.Seconds),
		}
		if kl {
			cells = append(cells, fmt.Sprintf("%.6f ± %.6f", row.KLD, row.KLDErr), fmt.Sprintf("%.3f%%", row.SameTop*100))
		}
		if err := t.Append(cells...); err != nil {
			return fmt.Errorf("eval: table: %w", err)
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("eval: table: %w", err)
	}
	return nil
}
