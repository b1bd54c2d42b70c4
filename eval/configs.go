package eval

import (
	"fmt"
	"strconv"

	"github.com/qsparse/qsparse/model"
)

// Grid describes the generated configurations of a sweep: every uniform sparsity and every N:M
// block pattern, each under every scoring.
type Grid struct {
	Sparsities []float64       // uniform top-K ratios in [0, 1); 0 is the dense row
	Blocks     []model.Block   // N:M patterns
	Scorings   []model.Scoring // nil: magnitude only
	Rescale    bool            // L2-rescale the kept values
}

// ScoringLabel is the short name of a scoring in labels: |x| or |x|·‖W‖₂.
func ScoringLabel(s model.Scoring) string {
	if s == model.ScoreWeighted {
		return "|x|·‖W‖₂"
	}
	return "|x|"
}

// Configs returns the grid's configurations for the model sp, sparsity by sparsity (and block
// by block), the scorings side by side: label and family "top-K |x|", "top-K |x|·‖W‖₂",
// "2:4 |x|", ... (" +rescale" appended when Rescale). Sparsity 0 gives the dense configuration
// (once). Errors wrap model.ErrBadProfile (a ratio outside [0, 1), a block M that does not divide
// a site's width).
func (g Grid) Configs(sp *model.Spec) ([]Config, error) {
	scorings := g.Scorings
	if len(scorings) == 0 {
		scorings = []model.Scoring{model.ScoreMagnitude}
	}
	suffix := ""
	if g.Rescale {
		suffix = " +rescale"
	}
	var out []Config
	for _, r := range g.Sparsities {
		if r == 0 {
			out = append(out, Config{Label: "dense"})
			continue
		}
		for _, s := range scorings {
			p, err := model.UniformProfile(sp, r)
			if err != nil {
				return nil, err
			}
			p.Scoring, p.Rescale = s, g.Rescale
			name := "top-K " + ScoringLabel(s) + suffix
			out = append(out, Config{Label: name, Family: name, Profile: p, Requested: r})
		}
	}
	for _, b := range g.Blocks {
		for _, s := range scorings {
			p, err := model.BlockProfile(sp, b.N, b.M)
			if err != nil {
				return nil, err
			}
			p.Scoring, p.Rescale = s, g.Rescale
			name := strconv.Itoa(b.N) + ":" + strconv.Itoa(b.M) + " " + ScoringLabel(s) + suffix
			out = append(out, Config{Label: name, Family: name, Profile: p, Requested: 1 - float64(b.N)/float64(b.M)})
		}
	}
	return out, nil
}

// ProfileConfig returns the configuration of a profile read from a file named name: requested
// sparsity the calibration target when the profile records one, else its byte sparsity.
func ProfileConfig(sp *model.Spec, name string, p *model.Profile) (Config, error) {
	if err := p.Validate(sp); err != nil {
		return Config{}, fmt.Errorf("profile %s: %w", name, err)
	}
	req := p.ByteSparsity(sp)
	if p.Calibration != nil && p.Calibration.Target > 0 {
		req = p.Calibration.Target
	}
	return Config{Label: name, Family: name, Profile: p, Requested: req}, nil
}
