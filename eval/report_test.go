package eval

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
)

func testReport() *Report {
	return &Report{Model: "models/m.gguf", Data: "d.txt", Ctx: 256, DenseBytes: 2_000_000, Rows: []Row{
		{Label: "dense", PPL: 10, Err: 0.1, SameTop: 1, Reference: true, Bytes: 2_000_000, BytesFrac: 1, Chunks: 4},
		{Label: "top-K |x|", Family: "top-K |x|", Scoring: "magnitude", Sparsity: 0.5, ByteSparsity: 0.498, PPL: 12, Err: 0.2,
			DeltaPPL: 0.2, KLD: 0.0123, KLDErr: 0.0004, SameTop: 0.91, Bytes: 1_200_000, BytesFrac: 0.6, Chunks: 4},
		{Label: "top-K |x|·‖W‖₂", Family: "top-K |x|·‖W‖₂", Scoring: "weighted", Sparsity: 0.5, ByteSparsity: 0.498, PPL: 11,
			DeltaPPL: 0.1, KLD: 0.01, SameTop: 0.93, Bytes: 1_200_000, BytesFrac: 0.6, Chunks: 4},
	}}
}

func TestReportFormats(t *testing.T) {
	r := testReport()
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	for _, want := range []string{"same top-1", "91.00%", "50.0%", "49.8%", "0.01230 ± 0.00040", "+20.00%", "12.0000 ± 0.2000", "1.2 MB", "0.600", "2 MB"} {
		if !strings.Contains(s, want) {
			t.Errorf("table lacks %q:\n%s", want, s)
		}
	}
	b.Reset()
	if err := r.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2+len(r.Rows) || !strings.HasPrefix(lines[1], "| --- | ---: |") {
		t.Fatalf("markdown:\n%s", b.String())
	}
	for _, l := range lines {
		if strings.Count(l, " | ")+2 != strings.Count(l, "|")-strings.Count(l, `\|`) || !strings.Contains(l, "|") {
			t.Errorf("markdown line %q: cells do not line up", l)
		}
	}
	// |x| in a label must not split the markdown cell.
	if !strings.Contains(lines[3], `top-K \|x\|`) {
		t.Errorf("markdown row %q", lines[3])
	}
	b.Reset()
	if err := r.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil || len(recs) != 1+len(r.Rows) || recs[2][3] != "0.5" || recs[2][5] != "12" || recs[0][5] != "ppl" {
		t.Fatalf("csv %v %q", err, recs)
	}
	b.Reset()
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Rows []map[string]any `json:"rows"`
	}
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || len(back.Rows) != 3 {
		t.Fatalf("json %v\n%s", err, b.String())
	}
	for i, row := range back.Rows {
		if _, ok := row["sparsity"]; !ok {
			t.Errorf("json row %d lacks sparsity: %v", i, row)
		}
		if row["ppl"] != r.Rows[i].PPL {
			t.Errorf("json row %d ppl %v", i, row["ppl"])
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1 kB", 269_123_456: "269.1 MB", 1_500_000_000: "1.5 GB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
