package eval

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"
)

// svgElements decodes an SVG document and counts its elements by name; it fails on malformed XML.
func svgElements(t *testing.T, doc []byte) map[string]int {
	t.Helper()
	counts := map[string]int{}
	dec := xml.NewDecoder(bytes.NewReader(doc))
	depth := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, doc)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if depth == 0 && (e.Name.Local != "svg" || e.Name.Space != "http://www.w3.org/2000/svg") {
				t.Fatalf("root element %v", e.Name)
			}
			depth++
			counts[e.Name.Local]++
		case xml.EndElement:
			depth--
		}
	}
	if counts["svg"] != 1 || depth != 0 {
		t.Fatalf("svg elements %v", counts)
	}
	s := string(doc)
	for _, bad := range []string{"NaN", "Inf"} {
		if strings.Contains(s, bad) {
			t.Fatalf("SVG contains %s:\n%s", bad, s)
		}
	}
	return counts
}

func TestWritePlot(t *testing.T) {
	r := testReport()
	var b bytes.Buffer
	if err := r.WritePlot(&b); err != nil {
		t.Fatal(err)
	}
	n := svgElements(t, b.Bytes())
	// Two families, each the dense point and one row, in two panels.
	if n["circle"] != 2*2*2+2 || n["polyline"] != 2*2 {
		t.Errorf("elements %v", n)
	}
	s := b.String()
	for _, want := range []string{"top-K |x|·‖W‖₂", "Perplexity", "Mean KL divergence from dense", "m.gguf on d.txt (ctx 256, 4 chunks)",
		"top-K |x|: 49.8% sparse, PPL 12.0000", "KL 0.01230", ">20%<", ">0<"} {
		if !strings.Contains(s, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if strings.Contains(s, "log scale") {
		t.Error("PPL 10..12 drawn on a log scale")
	}
}

func TestWriteSVGEdgeCases(t *testing.T) {
	// Only the dense row: one point per panel, no line.
	r := &Report{Rows: []Row{{Label: "dense", PPL: 7, SameTop: 1, Reference: true}}}
	var b bytes.Buffer
	if err := r.WritePlot(&b); err != nil {
		t.Fatal(err)
	}
	if n := svgElements(t, b.Bytes()); n["circle"] != 2+1 || n["polyline"] != 0 {
		t.Errorf("one point: %v", n)
	}
	// Non-finite values are skipped; a panel with none left still draws its axes.
	nan, inf := math.NaN(), math.Inf(1)
	panels := []PlotPanel{
		{Title: "a & b", LogY: true, Series: []PlotSeries{{Name: "s<1>", X: []float64{0, 0.25, 0.5, nan}, Y: []float64{4, inf, 130, 5}}}},
		{Title: "empty", Series: []PlotSeries{{Name: "s<1>", X: []float64{0}, Y: []float64{nan}}}},
		{Title: "one", YFromZero: true, Series: []PlotSeries{{Name: "s<1>", X: []float64{0.5}, Y: []float64{0}}}},
	}
	b.Reset()
	if err := WriteSVG(&b, "edge <cases>", panels); err != nil {
		t.Fatal(err)
	}
	n := svgElements(t, b.Bytes())
	if n["circle"] != 2+0+1+1 || n["polyline"] != 1 {
		t.Errorf("elements %v", n)
	}
	if s := b.String(); !strings.Contains(s, "(log scale)") || !strings.Contains(s, "edge &lt;cases&gt;") {
		t.Errorf("SVG:\n%s", s)
	}
	// No panels at all.
	b.Reset()
	if err := WriteSVG(&b, "", nil); err != nil {
		t.Fatal(err)
	}
	svgElements(t, b.Bytes())
}

func TestNiceAxis(t *testing.T) {
	a := newAxis([]float64{0, 0.7}, true, false, true, 0, 100)
	if a.lo != 0 || a.hi < 0.7 || len(a.ticks) < 3 || a.label(0.6000000000000001) != "60%" {
		t.Errorf("axis %+v", a)
	}
	l := newAxis([]float64{3.9, 130}, false, true, false, 100, 0)
	if !l.log || l.ticks[0] != 5 || l.px(3.9) > 100 || l.px(130) < 0 {
		t.Errorf("log axis %+v", l)
	}
}
