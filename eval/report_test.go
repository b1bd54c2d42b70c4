package eval

import (
	"bytes"
	"strings"
	"testing"
)

func TestReportKLColumns(t *testing.T) {
	r := &Report{Rows: []Row{
		{Label: "dense", PPL: 10, SameTop: 1},
		{Label: "uniform", Sparsity: 0.5, PPL: 12, KLD: 0.0123, KLDErr: 0.0004, SameTop: 0.91},
	}}
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	if !strings.Contains(s, "SAME TOP") || !strings.Contains(s, "91.000%") || !strings.Contains(s, "50.0%") || !strings.Contains(s, "0.012300") {
		t.Fatalf("table:\n%s", s)
	}
	t.Logf("\n%s", s)
}
