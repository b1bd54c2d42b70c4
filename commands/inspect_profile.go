package commands

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/olekukonko/tablewriter"

	"github.com/qsparse/qsparse/model"
)

// isProfileFile reports whether path is a file whose first non-blank byte is '{' (a profile
// JSON; GGUF files start with "GGUF", model folders are folders).
func isProfileFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || st.IsDir() {
		return false
	}
	r := bufio.NewReader(f)
	for {
		b, err := r.ReadByte()
		if err != nil {
			return false
		}
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return b == '{'
	}
}

// inspectProfile prints a profile file: its header and one row per layer with each site's K
// and ratio (--json: the file itself).
func inspectProfile(w io.Writer, path string, asJSON bool) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	p, err := model.DecodeProfile(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("inspect %s: %w", path, err)
	}
	if asJSON {
		_, err := w.Write(raw)
		return err
	}
	var head struct {
		Sparsity float64 `json:"sparsity"`
	}
	_ = json.Unmarshal(raw, &head)
	return writeProfile(w, path, p, head.Sparsity)
}

// writeProfile prints p; sparsity is the file's byte-weighted sparsity.
func writeProfile(w io.Writer, path string, p *model.Profile, sparsity float64) error {
	var lines [][2]string
	add := func(k, v string) { lines = append(lines, [2]string{k, v}) }
	add("path", path)
	if id := p.Model; id != nil {
		add("model", fmt.Sprintf("%s (%s, %d layers, dim %d, fingerprint %s)", id.Name, id.Arch, id.Layers, id.Dim, id.Fingerprint))
	}
	add("scoring", string(p.Scoring))
	if p.Block != nil {
		add("block", fmt.Sprintf("%d:%d", p.Block.N, p.Block.M))
	}
	add("rescale", strconv.FormatBool(p.Rescale))
	add("sparsity", fmt.Sprintf("%.2f%% (byte-weighted)", 100*sparsity))
	if c := p.Calibration; c != nil {
		add("method", c.Method)
		switch {
		case c.Target != 0:
			add("target", fmt.Sprintf("%.2f%% sparsity", 100*c.Target))
		case c.MaxKL != 0:
			add("budget", fmt.Sprintf("KL <= %g nats", c.MaxKL))
		case c.MaxPPL != 0:
			add("budget", fmt.Sprintf("perplexity increase <= %g%%", 100*c.MaxPPL))
		}
		if c.Data != "" {
			add("data", c.Data)
		}
		if c.DataSHA != "" {
			add("data sha256", c.DataSHA)
		}
		add("tokens", strconv.Itoa(c.Tokens))
		add("held-out KL", fmt.Sprintf("%.5f nats", c.KL))
		if c.DensePPL > 0 {
			add("held-out PPL", fmt.Sprintf("%.4f (dense %.4f, %+.2f%%)", c.PPL, c.DensePPL, 100*(c.PPL/c.DensePPL-1)))
		}
	}
	for _, l := range lines {
		if _, err := fmt.Fprintf(w, "%-14s %s\n", l[0]+":", l[1]); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	widths := [model.NumSites]int{}
	if id := p.Model; id != nil {
		widths = [model.NumSites]int{id.Dim, id.QDim, id.Dim, id.FFNDim}
	}
	t := tablewriter.NewWriter(w)
	hdr := []any{"layer"}
	for s := model.AttnIn; s < model.NumSites; s++ {
		hdr = append(hdr, s.String()+" K", "ratio")
	}
	t.Header(hdr...)
	for l, ks := range p.Keep {
		row := []any{strconv.Itoa(l)}
		for s, k := range ks {
			r := "-"
			if widths[s] > 0 {
				r = fmt.Sprintf("%.1f%%", 100*(1-float64(k)/float64(widths[s])))
			}
			row = append(row, strconv.Itoa(k), r)
		}
		if err := t.Append(row...); err != nil {
			return fmt.Errorf("inspect: table: %w", err)
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("inspect: table: %w", err)
	}
	return nil
}

// writeSiteRatios prints, for each site, the mean, lowest and highest ratio over the layers.
func writeSiteRatios(w io.Writer, sp *model.Spec, p *model.Profile) error {
	t := tablewriter.NewWriter(w)
	t.Header("site", "mean ratio", "min", "max")
	for s := model.AttnIn; s < model.NumSites; s++ {
		d := float64(sp.SiteDim(s))
		var sum float64
		lo, hi := 1.0, 0.0
		for _, ks := range p.Keep {
			r := 1 - float64(ks[s])/d
			sum += r
			lo, hi = min(lo, r), max(hi, r)
		}
		if err := t.Append(s.String(), fmt.Sprintf("%.1f%%", 100*sum/float64(len(p.Keep))),
			fmt.Sprintf("%.1f%%", 100*lo), fmt.Sprintf("%.1f%%", 100*hi)); err != nil {
			return err
		}
	}
	return t.Render()
}
