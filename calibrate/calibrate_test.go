package calibrate

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"

	"github.com/qsparse/qsparse/eval"
	"github.com/qsparse/qsparse/internal/testenv"
	"github.com/qsparse/qsparse/model"
)

func loadStories(t *testing.T) (*model.Model, []int) {
	t.Helper()
	m, err := model.Load(testenv.Path(t, "stories260K.gguf"), model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	text, err := os.ReadFile(testenv.Path(t, "tinystories_valid_first1000.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return m, eval.Tokenize(m, string(text[:60000]))
}

func encode(t *testing.T, sp *model.Spec, p *model.Profile) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := model.EncodeProfile(&b, sp, p); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestCalibrateStories(t *testing.T) {
	m, toks := loadStories(t)
	sp := &m.Spec
	ctx := context.Background()
	base := Options{Tokens: 4096, KLTokens: 512, Ctx: 256, Target: 0.5}
	ms, err := Measure(ctx, m, toks, base)
	if err != nil {
		t.Fatal(err)
	}
	kls := map[string]float64{}
	for _, meth := range Methods {
		o := base
		o.Method = meth
		p, err := ms.Allocate(ctx, o)
		if err != nil {
			t.Fatalf("%s: %v", meth, err)
		}
		if s := p.ByteSparsity(sp); s < 0.5-1e-9 || s > 0.52 {
			t.Errorf("%s: sparsity %.4f, want 0.5", meth, s)
		}
		c := p.Calibration
		if c.Method != meth || c.Tokens != 4096 || c.Target != 0.5 || !(c.KL > 0) || !(c.PPL > c.DensePPL) {
			t.Errorf("%s: calibration record %+v", meth, c)
		}
		kls[meth] = c.KL
		if meth == MethodTEAL {
			for l, ks := range p.Keep {
				var sk, tot float64
				for s, k := range ks {
					w := float64(sp.SiteParams(model.Site(s)))
					sk += w * (1 - float64(k)/float64(sp.SiteDim(model.Site(s))))
					tot += w
				}
				if sk/tot < 0.5-1e-9 || sk/tot > 0.56 {
					t.Errorf("teal: layer %d sparsity %.3f, want the target in every layer", l, sk/tot)
				}
			}
		}
	}
	if !(kls[MethodKL] < kls[MethodUniform]) {
		t.Errorf("held-out KL: kl %g is not below uniform %g", kls[MethodKL], kls[MethodUniform])
	}

	// The same inputs give the same profile, byte for byte, from a fresh run.
	o := base
	p1, err := Calibrate(ctx, m, toks, o)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := Calibrate(ctx, m, toks, o)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encode(t, sp, p1), encode(t, sp, p2)) {
		t.Error("two runs gave different profiles")
	}

	// A perplexity budget: the highest sparsity within it.
	o = base
	o.Target, o.MaxPPL = 0, 0.1
	pb, err := ms.Allocate(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if c := pb.Calibration; c.PPL > c.DensePPL*1.1 || c.Sparsity <= 0.05 || c.MaxPPL != 0.1 {
		t.Errorf("budget 10%%: %+v", c)
	}
}

func TestCalibrateBadInput(t *testing.T) {
	m, toks := loadStories(t)
	ctx := context.Background()
	for _, o := range []Options{
		{Target: 1.5, Tokens: 2048},
		{Target: -0.1, Tokens: 2048},
		{Target: 0.5, Tokens: len(toks) + 1},
		{Target: 0.5, MaxKL: 0.1, Tokens: 2048},
		{Tokens: 2048},
		{Target: 0.5, Tokens: 2048, Method: "nope"},
	} {
		if _, err := Calibrate(ctx, m, toks, o); !errors.Is(err, ErrOptions) {
			t.Errorf("%+v: error %v, want ErrOptions", o, err)
		}
	}
	// A profile made for stories260K does not fit another model.
	p, err := model.UniformProfile(&m.Spec, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	p.Model = model.NewModelID(&m.Spec)
	other := m.Spec
	other.NLayers++
	if err := p.Validate(&other); !errors.Is(err, model.ErrBadProfile) {
		t.Errorf("profile for another model: %v", err)
	}
}

// TestRestoreSplit checks that measurements split over runs (statistics; probes of some layers;
// the others) and merged by Restore give the same profile as one Measure.
func TestRestoreSplit(t *testing.T) {
	m, toks := loadStories(t)
	ctx := context.Background()
	o := Options{Tokens: 2048, KLTokens: 256, Ctx: 256, Target: 0.5}
	whole, err := Calibrate(ctx, m, toks, o)
	if err != nil {
		t.Fatal(err)
	}
	var parts []*Saved
	for _, po := range []Options{
		{Method: MethodTEAL},
		{SkipStats: true, ProbeLayers: []int{0, 1}},
		{SkipStats: true, ProbeLayers: []int{2, 3, 4}},
	} {
		po.Tokens, po.KLTokens, po.Ctx, po.Target = o.Tokens, o.KLTokens, o.Ctx, o.Target
		ms, err := Measure(ctx, m, toks, po)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, ms.Export())
	}
	ms, err := Restore(ctx, m, toks, o, parts)
	if err != nil {
		t.Fatal(err)
	}
	merged, err := ms.Allocate(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encode(t, &m.Spec, whole), encode(t, &m.Spec, merged)) {
		t.Error("merged measurements gave another profile")
	}
	if _, err := Restore(ctx, m, toks, o, parts[:2]); !errors.Is(err, ErrOptions) {
		t.Errorf("missing probes: %v", err)
	}
}
