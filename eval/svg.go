package eval

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// PlotSeries is one line of a plot: points (X[i], Y[i]); non-finite points are skipped.
type PlotSeries struct {
	Name string
	X, Y []float64
	Tips []string // optional hover text per point
}

// PlotPanel is one chart: axes, titles and series.
type PlotPanel struct {
	Title, XLabel, YLabel string
	// XPercent formats the x ticks as percentages of 1; LogY uses a log scale on y when the
	// finite values are all positive and span more than a factor of 4.
	XPercent, LogY bool
	// YFromZero starts the y axis at 0 (linear scale only).
	YFromZero bool
	Series    []PlotSeries
}

// Plot geometry, in SVG user units (pixels).
const (
	plotPanelW = 460
	plotPanelH = 340
	plotLeft   = 64
	plotRight  = 16
	plotTop    = 36
	plotBottom = 48
	plotHeadH  = 56 // title and legend above the panels
)

var plotColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// WritePlot writes the report as an SVG image: perplexity and mean KL divergence against the
// byte-weighted sparsity, one series per configuration family, every series starting from the
// dense row.
func (r *Report) WritePlot(w io.Writer) error {
	var families []string
	byFamily := map[string][]Row{}
	var start *Row
	for i := range r.Rows {
		row := &r.Rows[i]
		if row.Family == "" {
			if !row.Reference || start == nil {
				start = row
			}
			continue
		}
		if _, ok := byFamily[row.Family]; !ok {
			families = append(families, row.Family)
		}
		byFamily[row.Family] = append(byFamily[row.Family], *row)
	}
	if len(families) == 0 && start != nil {
		families = []string{start.Label}
	}
	ppl := PlotPanel{Title: "Perplexity", XLabel: "byte-weighted activation sparsity", YLabel: "PPL", XPercent: true, LogY: true}
	kl := PlotPanel{Title: "Mean KL divergence from dense", XLabel: "byte-weighted activation sparsity", YLabel: "KL (nats)",
		XPercent: true, YFromZero: true}
	if r.Base != "" {
		kl.Title = "Mean KL divergence from the base model"
	}
	for _, f := range families {
		rows := append([]Row(nil), byFamily[f]...)
		sort.SliceStable(rows, func(i, j int) bool { return rows[i].ByteSparsity < rows[j].ByteSparsity })
		if start != nil {
			rows = append([]Row{*start}, rows...)
		}
		var ps, ks PlotSeries
		ps.Name, ks.Name = f, f
		for _, row := range rows {
			ps.X, ps.Y = append(ps.X, row.ByteSparsity), append(ps.Y, row.PPL)
			ps.Tips = append(ps.Tips, fmt.Sprintf("%s: %.1f%% sparse, PPL %.4f", row.Label, 100*row.ByteSparsity, row.PPL))
			ks.X, ks.Y = append(ks.X, row.ByteSparsity), append(ks.Y, row.KLD)
			ks.Tips = append(ks.Tips, fmt.Sprintf("%s: %.1f%% sparse, KL %.5f", row.Label, 100*row.ByteSparsity, row.KLD))
		}
		ppl.Series, kl.Series = append(ppl.Series, ps), append(kl.Series, ks)
	}
	title := "qsparse eval"
	if r.Model != "" {
		title = baseName(r.Model) + " on " + baseName(r.Data) + fmt.Sprintf(" (ctx %d", r.Ctx)
		if len(r.Rows) > 0 {
			title += fmt.Sprintf(", %d chunks", r.Rows[0].Chunks)
		}
		title += ")"
	}
	return WriteSVG(w, title, []PlotPanel{ppl, kl})
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// WriteSVG writes panels side by side as one SVG image under a title, with a shared legend
// (series are matched across panels by index).
func WriteSVG(w io.Writer, title string, panels []PlotPanel) error {
	width := max(1, len(panels)) * plotPanelW
	height := plotHeadH + plotPanelH
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="20" text-anchor="middle" font-size="15" font-weight="bold">%s</text>`+"\n", width/2, esc(title))
	// Legend: one entry per series of the first panel.
	if len(panels) > 0 {
		x := 16.0
		for i, s := range panels[0].Series {
			c := plotColors[i%len(plotColors)]
			fmt.Fprintf(&b, `<line x1="%.1f" y1="40" x2="%.1f" y2="40" stroke="%s" stroke-width="2"%s/><circle cx="%.1f" cy="40" r="3" fill="%s"/>`,
				x, x+24, c, plotDash(i), x+12, c)
			fmt.Fprintf(&b, `<text x="%.1f" y="44">%s</text>`+"\n", x+30, esc(s.Name))
			x += 40 + 7*float64(len([]rune(s.Name)))
		}
	}
	for i := range panels {
		writePanel(&b, &panels[i], float64(i*plotPanelW), plotHeadH)
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// plotDash returns the stroke pattern of series i: solid, dashed, solid, ... so that series
// drawn on top of each other stay visible.
func plotDash(i int) string {
	if i%2 == 1 {
		return ` stroke-dasharray="7 4"`
	}
	return ""
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// axis maps data values to pixels, linearly or on a log10 scale.
type axis struct {
	lo, hi  float64 // data range (log10 of it when log)
	log     bool
	p0, p1  float64 // pixel range
	ticks   []float64
	percent bool
}

func (a *axis) px(v float64) float64 {
	if a.log {
		v = math.Log10(v)
	}
	return a.p0 + (v-a.lo)/(a.hi-a.lo)*(a.p1-a.p0)
}

func (a *axis) label(v float64) string {
	if a.percent {
		return strconv.FormatFloat(math.Round(100*v*1e6)/1e6, 'f', -1, 64) + "%"
	}
	return strconv.FormatFloat(math.Round(v*1e9)/1e9, 'g', 4, 64)
}

// niceStep returns 1, 2 or 5 times a power of ten near span/n.
func niceStep(span float64, n int) float64 {
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// newAxis builds an axis over the finite values vals.
func newAxis(vals []float64, fromZero, logOK, percent bool, p0, p1 float64) *axis {
	a := &axis{p0: p0, p1: p1, percent: percent}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		if finite(v) {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if lo > hi { // no finite value
		lo, hi = 0, 1
	}
	if logOK && lo > 0 && hi/lo > 4 {
		a.log = true
		a.lo, a.hi = math.Log10(lo)-0.03, math.Log10(hi)+0.03
		for e := math.Floor(a.lo); e <= math.Ceil(a.hi); e++ {
			for _, m := range []float64{1, 2, 3, 5} {
				t := m * math.Pow(10, e)
				if l := math.Log10(t); l >= a.lo && l <= a.hi {
					a.ticks = append(a.ticks, t)
				}
			}
		}
		if len(a.ticks) >= 2 {
			return a
		}
		a.log, a.ticks = false, nil // too few ticks: linear
	}
	if fromZero {
		lo = min(lo, 0)
	}
	if hi == lo {
		d := math.Abs(lo) * 0.1
		if d == 0 {
			d = 1
		}
		lo, hi = lo-d, hi+d
		if fromZero && lo < 0 && hi > 0 {
			lo = 0
		}
	}
	step := niceStep(hi-lo, 5)
	a.lo, a.hi = math.Floor(lo/step)*step, math.Ceil(hi/step)*step
	for t := a.lo; t <= a.hi+step/1e6; t += step {
		a.ticks = append(a.ticks, math.Round(t/step)*step)
	}
	return a
}

func writePanel(b *bytes.Buffer, p *PlotPanel, ox, oy float64) {
	x0, x1 := ox+plotLeft, ox+plotPanelW-plotRight
	y0, y1 := oy+plotPanelH-plotBottom, oy+plotTop // y0 is the bottom
	var xs, ys []float64
	for _, s := range p.Series {
		for i := range s.X {
			if i < len(s.Y) && finite(s.X[i]) && finite(s.Y[i]) && (!p.LogY || s.Y[i] > 0) {
				xs, ys = append(xs, s.X[i]), append(ys, s.Y[i])
			}
		}
	}
	ax := newAxis(xs, true, false, p.XPercent, x0, x1)
	ay := newAxis(ys, p.YFromZero, p.LogY, false, y0, y1)
	fmt.Fprintf(b, `<g>`+"\n")
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="13" font-weight="bold">%s</text>`+"\n", (x0+x1)/2, oy+plotTop-12, esc(p.Title))
	// Grid and ticks.
	for _, t := range ax.ticks {
		x := ax.px(t)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e0e0e0"/>`, x, y0, x, y1)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, y0+16, esc(ax.label(t)))
	}
	for _, t := range ay.ticks {
		y := ay.px(t)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e0e0e0"/>`, x0, y, x1, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-6, y+4, esc(ay.label(t)))
	}
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", x0, y1, x1-x0, y0-y1)
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", (x0+x1)/2, y0+36, esc(p.XLabel))
	ylab := p.YLabel
	if ay.log {
		ylab += " (log scale)"
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n",
		ox+16, (y0+y1)/2, ox+16, (y0+y1)/2, esc(ylab))
	// Series.
	for i, s := range p.Series {
		c := plotColors[i%len(plotColors)]
		var pts []string
		var dots strings.Builder
		for j := range s.X {
			if j >= len(s.Y) || !finite(s.X[j]) || !finite(s.Y[j]) || (ay.log && s.Y[j] <= 0) {
				continue
			}
			x, y := ax.px(s.X[j]), ay.px(s.Y[j])
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
			tip := ""
			if j < len(s.Tips) {
				tip = "<title>" + esc(s.Tips[j]) + "</title>"
			}
			fmt.Fprintf(&dots, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s">%s</circle>`+"\n", x, y, c, tip)
		}
		if len(pts) > 1 {
			fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", c, plotDash(i), strings.Join(pts, " "))
		}
		b.WriteString(dots.String())
	}
	b.WriteString("</g>\n")
}
