package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"

	"github.com/qsparse/qsparse/internal/atomicfile"
)

// ProfileVersion is the version of the profile JSON format that WriteProfile writes and
// ReadProfile reads.
const ProfileVersion = 1

// ProfileFormat is the value of a profile file's "format" field.
const ProfileFormat = "qsparse-profile"

// ModelID identifies the model a profile was made for: its architecture, dimensions and a
// fingerprint of its tensor names and shapes (see Fingerprint).
type ModelID struct {
	Arch        string `json:"architecture"`
	Name        string `json:"name,omitempty"`
	Layers      int    `json:"layers"`
	Dim         int    `json:"dim"`
	QDim        int    `json:"q_dim"`
	FFNDim      int    `json:"ffn_dim"`
	Vocab       int    `json:"vocab"`
	Fingerprint string `json:"fingerprint"`
}

// NewModelID returns the identity of the model described by sp.
func NewModelID(sp *Spec) *ModelID {
	return &ModelID{Arch: sp.Arch, Name: sp.Name, Layers: sp.NLayers, Dim: sp.Dim, QDim: sp.QDim(),
		FFNDim: sp.FFNDim, Vocab: sp.Vocab, Fingerprint: Fingerprint(sp)}
}

// Fingerprint is a short hash (16 hex digits of SHA-256) of the canonical names and shapes of
// every tensor the model has (Spec.Tensors): two models with the same fingerprint have the same
// sites of the same widths.
func Fingerprint(sp *Spec) string {
	h := sha256.New()
	for _, t := range sp.Tensors() {
		fmt.Fprintf(h, "%s%v\n", t.Name, t.Shape)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Check reports (wrapping ErrBadProfile) how id differs from the model described by sp.
func (id *ModelID) Check(sp *Spec) error {
	want := NewModelID(sp)
	switch {
	case id.Arch != "" && id.Arch != want.Arch:
		return fmt.Errorf("%w: it was made for architecture %q, the model %s is %q", ErrBadProfile, id.Arch, sp.Name, want.Arch)
	case id.Layers != want.Layers || id.Dim != want.Dim || id.QDim != want.QDim || id.FFNDim != want.FFNDim:
		return fmt.Errorf("%w: it was made for a model with %d layers, dim %d, q dim %d, ffn %d; %s has %d, %d, %d, %d",
			ErrBadProfile, id.Layers, id.Dim, id.QDim, id.FFNDim, sp.Name, want.Layers, want.Dim, want.QDim, want.FFNDim)
	case id.Fingerprint != "" && id.Fingerprint != want.Fingerprint:
		return fmt.Errorf("%w: it was made for a model with fingerprint %s (%s), %s has %s: a different model of the same shape?",
			ErrBadProfile, id.Fingerprint, id.Name, sp.Name, want.Fingerprint)
	}
	return nil
}

// profileFile is the JSON form of a Profile.
type profileFile struct {
	Format      string          `json:"format"`
	Version     int             `json:"version"`
	Model       *ModelID        `json:"model,omitempty"`
	Scoring     Scoring         `json:"scoring"`
	Block       *Block          `json:"block,omitempty"`
	Rescale     bool            `json:"rescale"`
	Sparsity    float64         `json:"sparsity"` // byte-weighted (informative; recomputed on read)
	Calibration *Calibration    `json:"calibration,omitempty"`
	Layers      []profileLayer  `json:"layers"`
	Extra       json.RawMessage `json:"extra,omitempty"` // reserved for tools; kept on read
}

// profileLayer is one layer: site name -> setting, in site order.
type profileLayer map[string]siteSetting

// siteSetting is one site's K; Ratio (1 - K/width) is informative.
type siteSetting struct {
	K     int     `json:"k"`
	Ratio float64 `json:"ratio"`
}

// EncodeProfile writes p, made for the model described by sp, as JSON (format version
// ProfileVersion). p is validated first; p.Model defaults to sp's identity.
func EncodeProfile(w io.Writer, sp *Spec, p *Profile) error {
	if err := p.Validate(sp); err != nil {
		return err
	}
	f := profileFile{Format: ProfileFormat, Version: ProfileVersion, Model: p.Model, Scoring: p.Scoring,
		Block: p.Block, Rescale: p.Rescale, Sparsity: round6(p.ByteSparsity(sp)), Calibration: p.Calibration}
	if f.Model == nil {
		f.Model = NewModelID(sp)
	}
	if f.Scoring == "" {
		f.Scoring = ScoreMagnitude
	}
	for _, ks := range p.Keep {
		l := profileLayer{}
		for site, k := range ks {
			d := sp.SiteDim(Site(site))
			l[Site(site).String()] = siteSetting{K: k, Ratio: round6(1 - float64(k)/float64(d))}
		}
		f.Layers = append(f.Layers, l)
	}
	b, err := json.MarshalIndent(&f, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteProfile writes p for the model sp to path atomically (see EncodeProfile).
func WriteProfile(path string, sp *Spec, p *Profile) error {
	var buf bytes.Buffer
	if err := EncodeProfile(&buf, sp, p); err != nil {
		return err
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(buf.Bytes())
		return err
	})
}

// DecodeProfile reads a profile from JSON. It checks the format, version and site names, not the
// model: Validate(sp) (or State.SetProfile) does that.
func DecodeProfile(r io.Reader) (*Profile, error) {
	dec := json.NewDecoder(io.LimitReader(r, 64<<20))
	dec.DisallowUnknownFields()
	var f profileFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: not a qsparse profile JSON: %v", ErrBadProfile, err)
	}
	if f.Format != ProfileFormat {
		return nil, fmt.Errorf("%w: format is %q, want %q", ErrBadProfile, f.Format, ProfileFormat)
	}
	if f.Version != ProfileVersion {
		return nil, fmt.Errorf("%w: format version %d is not supported (this qsparse reads version %d)", ErrBadProfile, f.Version, ProfileVersion)
	}
	sc, err := ParseScoring(string(f.Scoring))
	if err != nil {
		return nil, err
	}
	p := &Profile{Scoring: sc, Block: f.Block, Rescale: f.Rescale, Model: f.Model, Calibration: f.Calibration,
		Keep: make([][NumSites]int, len(f.Layers))}
	for l, layer := range f.Layers {
		seen := 0
		for name, set := range layer {
			site, err := ParseSite(name)
			if err != nil {
				return nil, fmt.Errorf("%w: layer %d: %v", ErrBadProfile, l, err)
			}
			p.Keep[l][site] = set.K
			seen++
		}
		if seen != int(NumSites) {
			return nil, fmt.Errorf("%w: layer %d has %d sites, want all %d (attn_in, attn_out, mlp_in, mlp_down)", ErrBadProfile, l, seen, NumSites)
		}
	}
	return p, nil
}

// ReadProfile reads a profile file (see DecodeProfile); errors name the file.
func ReadProfile(path string) (*Profile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	defer f.Close()
	p, err := DecodeProfile(f)
	if err != nil {
		return nil, fmt.Errorf("profile %s: %w", path, err)
	}
	return p, nil
}

func round6(v float64) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', 6, 64), 64)
	if math.IsNaN(r) {
		return 0
	}
	return r
}
