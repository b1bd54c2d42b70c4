package eval

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qsparse/qsparse/internal/testenv"
	"github.com/qsparse/qsparse/model"
)

func loadStoriesEval(t *testing.T) (*model.Model, []int) {
	t.Helper()
	text, err := os.ReadFile(testenv.Path(t, "tinystories_valid_first1000.txt"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(testenv.Path(t, "stories260K.gguf"), model.LoadOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, Tokenize(m, string(text)[:40000])
}

// The sweep's rows equal independent perplexity and KL runs of each profile, bit for bit,
// whether the dense logits are cached in memory, in a file, or recomputed.
func TestSweepMatchesSeparateRuns(t *testing.T) {
	m, tokens := loadStoriesEval(t)
	grid := Grid{Sparsities: []float64{0, 0.5}, Scorings: []model.Scoring{model.ScoreMagnitude, model.ScoreWeighted},
		Blocks: []model.Block{{N: 2, M: 4}}}
	configs, err := grid.Configs(&m.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(configs) != 5 || configs[0].Profile != nil || configs[1].Label != "top-K |x|" || configs[2].Label != "top-K |x|·‖W‖₂" ||
		configs[3].Label != "2:4 |x|" || configs[3].Requested != 0.5 {
		t.Fatalf("configs %+v", configs)
	}
	opts := PPLOptions{Ctx: 128, Chunks: 3}
	dense, err := Perplexity(context.Background(), m, tokens, opts)
	if err != nil {
		t.Fatal(err)
	}
	var want []*KLResult
	for _, c := range configs[1:] {
		kl, err := KLDivergenceProfile(context.Background(), m, m, c.Profile, tokens, opts)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, kl)
	}
	for _, mode := range []struct {
		name   string
		mem    int64
		dir    string
		warned bool
	}{{"memory", 0, "", false}, {"file", 1, t.TempDir(), false}, {"recompute", 1, filepath.Join(t.TempDir(), "missing"), true}} {
		t.Run(mode.name, func(t *testing.T) {
			var warns []string
			rep, err := Sweep(context.Background(), m, tokens, configs, SweepOptions{PPLOptions: opts,
				CacheMemory: mode.mem, CacheDir: mode.dir, Warn: func(s string) { warns = append(warns, s) }})
			if err != nil {
				t.Fatal(err)
			}
			if (len(warns) > 0) != mode.warned {
				t.Errorf("warnings %q", warns)
			}
			if len(rep.Rows) != 5 || rep.Incomplete {
				t.Fatalf("%d rows, incomplete %v", len(rep.Rows), rep.Incomplete)
			}
			d := rep.Rows[0]
			if d.Label != "dense" || !d.Reference || d.PPL != dense.PPL || d.SameTop != 1 || d.Bytes != m.DenseBytesPerToken() || len(d.Running) != 3 {
				t.Errorf("dense row %+v, want PPL %v", d, dense.PPL)
			}
			for i, row := range rep.Rows[1:] {
				w, c := want[i], configs[i+1]
				if row.PPL != w.PPL || row.KLD != w.KLD || row.SameTop != w.SameTop || row.KLDErr != w.KLDErr {
					t.Errorf("row %s: PPL %v KLD %v same %v; separate run PPL %v KLD %v same %v", row.Label, row.PPL, row.KLD, row.SameTop, w.PPL, w.KLD, w.SameTop)
				}
				if row.Bytes != m.BytesPerToken(c.Profile) || row.ByteSparsity != c.Profile.ByteSparsity(&m.Spec) ||
					row.Sparsity != 0.5 || row.Family != c.Label || len(row.Running) != 3 || row.Scoring != string(c.Profile.Scoring) {
					t.Errorf("row %+v", row)
				}
				if d := row.DeltaPPL - (row.PPL/dense.PPL - 1); d > 1e-12 || d < -1e-12 {
					t.Errorf("row %s: ΔPPL %v", row.Label, row.DeltaPPL)
				}
			}
			if rep.Rows[1].PPL == rep.Rows[2].PPL {
				t.Error("magnitude and weighted rows are equal")
			}
		})
	}
}

// Cancelling after the first row returns the finished rows and context.Canceled.
func TestSweepCancel(t *testing.T) {
	m, tokens := loadStoriesEval(t)
	configs, err := Grid{Sparsities: []float64{0, 0.25, 0.5}}.Configs(&m.Spec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var starts []string
	rep, err := Sweep(ctx, m, tokens, configs, SweepOptions{PPLOptions: PPLOptions{Ctx: 128, Chunks: 2},
		RowStart: func(i, n int, label string) { starts = append(starts, label) },
		RowDone:  func(*Row, *PPLResult, *KLResult) { cancel() }})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "top-K |x|") {
		t.Fatalf("err = %v", err)
	}
	if rep == nil || len(rep.Rows) != 1 || !rep.Incomplete || rep.Rows[0].Label != "dense" || len(starts) != 2 {
		t.Fatalf("report %+v, starts %q", rep, starts)
	}
}

func TestSweepWithBase(t *testing.T) {
	m, tokens := loadStoriesEval(t)
	configs, _ := Grid{Sparsities: []float64{0.5}}.Configs(&m.Spec)
	rep, err := Sweep(context.Background(), m, tokens, configs, SweepOptions{PPLOptions: PPLOptions{Ctx: 128, Chunks: 2},
		Base: m, DenseLabel: "model"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 3 || rep.Rows[0].Label != "base" || !rep.Rows[0].Reference || rep.Rows[1].Label != "model" ||
		rep.Rows[1].KLD != 0 || rep.Rows[1].SameTop != 1 || rep.Rows[1].PPL != rep.Rows[0].PPL || !(rep.Rows[2].KLD > 0) {
		t.Fatalf("rows %+v", rep.Rows)
	}
}

func TestSweepBadInput(t *testing.T) {
	m, tokens := loadStoriesEval(t)
	if _, err := Sweep(context.Background(), m, tokens[:100], nil, SweepOptions{PPLOptions: PPLOptions{Ctx: 128}}); !errors.Is(err, ErrTooFewTokens) {
		t.Errorf("short text: %v", err)
	}
	bad := []Config{{Label: "broken", Profile: &model.Profile{}}}
	if _, err := Sweep(context.Background(), m, tokens, bad, SweepOptions{PPLOptions: PPLOptions{Ctx: 128}}); !errors.Is(err, model.ErrBadProfile) {
		t.Errorf("bad profile: %v", err)
	}
	if _, err := (Grid{Blocks: []model.Block{{N: 3, M: 7}}}).Configs(&m.Spec); !errors.Is(err, model.ErrBadProfile) {
		t.Errorf("block 3:7: %v", err)
	}
}
