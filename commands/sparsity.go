package commands

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/qsparse/qsparse/model"
)

// sparsityFlags are the activation-sparsity flags of run (one setting) and bench (list: a
// comma-separated --sparsity, one result row each).
func sparsityFlags(list bool) []cli.Flag {
	su := "uniform top-K activation sparsity in [0, 1) at every site (k = floor((1-s)*width) channels kept per token)"
	if list {
		su = "comma-separated uniform activation sparsities in [0, 1), benchmarked in alternating rounds (0: dense), e.g. 0,0.5"
	}
	return []cli.Flag{
		&cli.StringFlag{Name: "sparsity", Value: "0", Usage: su},
		&cli.StringFlag{Name: "profile", Usage: "per-site sparsity profile (JSON from qsparse calibrate) made for this model"},
		&cli.StringFlag{Name: "scoring", Usage: "rank channels by magnitude (|x|) or weighted (|x|·‖W[:,i]‖₂) (default: magnitude, or the profile's)"},
		&cli.StringFlag{Name: "block", Usage: "N:M block sparsity instead of per-token top-K: every M consecutive channels keep their N largest (M must divide every site's width)"},
		&cli.BoolFlag{Name: "rescale", Usage: "scale the kept values of a token by ‖x‖₂/‖x_kept‖₂"},
		&cli.StringFlag{Name: "layout", Value: "auto", Usage: "site weight layout: rows (row-major), cols (column-major packs: sparse decode kernels) or auto (cols when sparsity is asked for)"},
	}
}

// sparseConfig is one sparsity setting of a run: a label and the profile (nil: dense).
type sparseConfig struct {
	label string
	prof  *model.Profile
}

// sparsityRequest is the parsed sparsity flags, before the model is loaded.
type sparsityRequest struct {
	ratios   []float64
	profile  *model.Profile // --profile, read
	scoring  model.Scoring
	block    *model.Block
	layout   string
	scoreSet bool
}

// parseSparsityFlags checks the sparsity flags (usage errors: exit 2) and reads --profile.
func parseSparsityFlags(c *cli.Context, list bool) (*sparsityRequest, error) {
	name := c.Command.Name
	req := &sparsityRequest{}
	fields := []string{c.String("sparsity")}
	if list {
		fields = strings.Split(c.String("sparsity"), ",")
	}
	for _, f := range fields {
		f = strings.TrimSpace(f)
		r, err := strconv.ParseFloat(f, 64)
		if err != nil || !(r >= 0 && r < 1) {
			if list {
				return nil, usagef("%s: --sparsity wants comma-separated fractions in [0, 1) such as 0,0.5, got %q", name, f)
			}
			return nil, usagef("%s: --sparsity wants a fraction in [0, 1) such as 0.5, got %q", name, f)
		}
		req.ratios = append(req.ratios, r)
	}
	if s := c.String("scoring"); c.IsSet("scoring") {
		sc, err := model.ParseScoring(s)
		if err != nil {
			return nil, usagef("%s: --scoring: %v", name, err)
		}
		req.scoring, req.scoreSet = sc, true
	}
	if b := c.String("block"); b != "" {
		n, m, ok := strings.Cut(b, ":")
		bn, err1 := strconv.Atoi(strings.TrimSpace(n))
		bm, err2 := strconv.Atoi(strings.TrimSpace(m))
		if !ok || err1 != nil || err2 != nil || bm <= 0 || bn <= 0 || bn > bm {
			return nil, usagef("%s: --block wants N:M with 0 < N <= M, such as 2:4, got %q", name, b)
		}
		req.block = &model.Block{N: bn, M: bm}
	}
	switch l := strings.ToLower(c.String("layout")); l {
	case "auto", "rows", "cols":
		req.layout = l
	default:
		return nil, usagef("%s: --layout must be auto, rows or cols, got %q", name, c.String("layout"))
	}
	if p := c.String("profile"); p != "" {
		prof, err := model.ReadProfile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: --profile: %w", name, err)
		}
		req.profile = prof
	}
	return req, nil
}

// sparse reports whether any setting is sparse (before the model's shape is known).
func (r *sparsityRequest) sparse() bool {
	if r.profile != nil || r.block != nil {
		return true
	}
	for _, v := range r.ratios {
		if v > 0 {
			return true
		}
	}
	return false
}

// loadLayout returns the model.LoadOptions.Layout for the request.
func (r *sparsityRequest) loadLayout() string {
	switch {
	case r.layout == "rows":
		return model.LoadRows
	case r.layout == "cols" || r.sparse():
		return model.LoadCols
	}
	return "auto" // rows, or cols for a pack file
}

// configs builds the request's settings for a loaded model: one per --sparsity value (0:
// dense; with --block, every nonzero value is the N:M pattern), then the --profile one (alone
// when --sparsity was not given). Without any sparsity flag, the model's default profile def
// (a pack file's) is used: alone for run, beside dense for bench (list). Errors (a profile or block that does not fit) wrap
// model.ErrBadProfile.
func (r *sparsityRequest) configs(c *cli.Context, sp *model.Spec, def *model.Profile, list bool) ([]sparseConfig, error) {
	var out []sparseConfig
	finish := func(p *model.Profile) *model.Profile {
		if r.scoreSet {
			p.Scoring = r.scoring
		}
		if c.Bool("rescale") {
			p.Rescale = true
		}
		return p
	}
	if !(r.profile != nil && !c.IsSet("sparsity")) {
		for _, v := range r.ratios {
			switch {
			case v == 0 && r.block == nil || v == 0 && len(r.ratios) > 1:
				out = append(out, sparseConfig{"dense", nil})
			case r.block != nil:
				p, err := model.BlockProfile(sp, r.block.N, r.block.M)
				if err != nil {
					return nil, fmt.Errorf("%s: --block: %w", c.Command.Name, err)
				}
				out = append(out, sparseConfig{fmt.Sprintf("%d:%d", r.block.N, r.block.M), finish(p)})
			default:
				p, err := model.UniformProfile(sp, v)
				if err != nil {
					return nil, fmt.Errorf("%s: --sparsity: %w", c.Command.Name, err)
				}
				out = append(out, sparseConfig{strconv.FormatFloat(v, 'g', -1, 64), finish(p)})
			}
		}
	}
	if sp != nil && usePackProfile(c, def, r.profile != nil) {
		// bench: beside dense
		if !list {
			out = out[:0]
		}
		p := finish(def.Clone())
		out = append(out, sparseConfig{fmt.Sprintf("pack profile %.2f", p.ByteSparsity(sp)), p})
	}
	if r.profile != nil {
		p := finish(r.profile.Clone())
		if err := p.Validate(sp); err != nil {
			return nil, fmt.Errorf("%s: --profile %s: %w", c.Command.Name, c.String("profile"), err)
		}
		out = append(out, sparseConfig{fmt.Sprintf("profile %.2f", p.ByteSparsity(sp)), p})
	}
	return out, nil
}

// usePackProfile reports whether a pack file's own profile (def, qsparse.profile) is a
// command's sparsity setting: the file carries one and neither --profile (haveProfile),
// --sparsity nor --block chose another. run and bench then run it (bench beside dense), eval
// evaluates it beside dense; --sparsity 0 asks for dense only.
func usePackProfile(c *cli.Context, def *model.Profile, haveProfile bool) bool {
	return def != nil && !haveProfile && !c.IsSet("sparsity") && !c.IsSet("block")
}

// newSparseState returns a State of m with the setting's profile applied.
func newSparseState(c *cli.Context, m *model.Model, nctx int, cfg sparseConfig) (*model.State, error) {
	st := m.NewState(nctx)
	if cfg.prof != nil {
		if err := st.SetProfile(cfg.prof); err != nil {
			return nil, fmt.Errorf("%s: sparsity %s: %w", c.Command.Name, cfg.label, err)
		}
	}
	return st, nil
}

// cpuName returns the CPU's model name from /proc/cpuinfo ("" when unknown).
func cpuName() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
